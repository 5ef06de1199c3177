//! Where the weights go on the machine, as `init` proposes to sweep it:
//! everything on the GPUs when the model and its KV cache fit; an MoE
//! model's experts of the first layers in host memory (`n_cpu_moe`) when
//! only the rest fits; otherwise `n_gpu_layers` around the last layer
//! that fits. Each proposes values around the point it computes, since
//! compute buffers and llama.cpp's rounding move that point (the sweep
//! also measures llama.cpp's own `--fit` as a reference).

use super::{Hardware, ModelShape, Setting, gib};

/// What each GPU keeps for itself and llama.cpp's compute buffers.
const RESERVED_PER_GPU: u64 = 512 << 20;
/// The share of a GPU's free memory a plan may fill.
const USABLE_SHARE: f64 = 0.9;

/// A placement and what it comes to.
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    /// The `[space]` settings of the placement.
    pub settings: Vec<Setting>,
    /// What the machine and the model come to, in a sentence.
    pub finding: String,
    /// Everything on the GPUs.
    pub all_on_gpu: bool,
    /// The GPUs are (nearly) full: a smaller KV cache is worth trying.
    pub tight: bool,
    /// Bytes of weights and KV cache on the GPUs and in host memory.
    pub gpu_bytes: u64,
    pub cpu_bytes: u64,
}

/// Bytes the GPUs of `hw` can hold.
pub fn usable(hw: &Hardware) -> u64 {
    hw.gpus
        .iter()
        .map(|g| ((g.free_bytes as f64 * USABLE_SHARE) as u64).saturating_sub(RESERVED_PER_GPU))
        .sum()
}

/// Where `model`'s weights and a KV cache of `kv_bytes` go on `hw`.
pub fn place(model: &ModelShape, hw: &Hardware, kv_bytes: u64) -> Placed {
    let weights = model.weight_bytes();
    let need = weights + kv_bytes;
    if hw.gpus.is_empty() {
        return Placed {
            settings: vec![Setting::new(
                "n_gpu_layers",
                "0",
                "no GPU in this llama.cpp build: everything runs on the CPU (a GPU build: \
                 docs/gpus-and-clusters.md)",
            )],
            finding: format!(
                "CPU only: the model ({}) and its KV cache ({}) in host memory; threads and \
                 batch sizes are what a sweep can change",
                gib(weights),
                gib(kv_bytes)
            ),
            all_on_gpu: false,
            tight: false,
            gpu_bytes: 0,
            cpu_bytes: need,
        };
    }
    let room = usable(hw);
    let cards = describe_gpus(hw);
    if need <= room {
        let mut settings = vec![Setting::new(
            "n_gpu_layers",
            "-1",
            format!(
                "the model and its KV cache ({}) fit in {cards} ({} usable): every layer on the GPU",
                gib(need),
                gib(room)
            ),
        )];
        if hw.gpus.len() > 1 {
            settings.push(Setting::new(
                "split_mode",
                "[\"layer\", \"row\"]",
                format!(
                    "{} GPUs: whole layers on each (\"layer\"), or each matrix split across them \
                     (\"row\"); the share of each follows its free memory",
                    hw.gpus.len()
                ),
            ));
        }
        return Placed {
            settings,
            finding: format!(
                "the model ({}) and its KV cache ({}) fit in {cards}",
                gib(weights),
                gib(kv_bytes)
            ),
            all_on_gpu: true,
            tight: need as f64 > 0.8 * room as f64,
            gpu_bytes: need,
            cpu_bytes: 0,
        };
    }
    let n_layer = u64::from(model.n_layer.max(1));
    if model.is_moe() && need - model.expert_bytes <= room {
        // The experts of the first k layers stay in host memory.
        let per_layer = (model.expert_bytes / n_layer).max(1);
        let k = (need - room).div_ceil(per_layer).clamp(1, n_layer) as i64;
        let values = around(k, step(n_layer), n_layer as i64, true);
        return Placed {
            settings: vec![
                Setting::new(
                    "n_gpu_layers",
                    "-1",
                    "every layer on the GPU, but for the experts n_cpu_moe keeps in host memory",
                ),
                Setting::new(
                    "n_cpu_moe",
                    super::list(&values),
                    format!(
                        "the model ({}, {} of it experts) and its KV cache ({}) do not fit in \
                         {cards} ({} usable): the experts of about the first {k} of {n_layer} \
                         layers must stay in host memory; fewer is faster while it fits",
                        gib(weights),
                        gib(model.expert_bytes),
                        gib(kv_bytes),
                        gib(room)
                    ),
                ),
            ],
            finding: format!(
                "an MoE model of {} that {cards} cannot hold with its KV cache: its experts of \
                 the first ~{k} of {n_layer} layers go to host memory",
                gib(weights),
            ),
            all_on_gpu: false,
            tight: true,
            gpu_bytes: need - (k as u64 * per_layer).min(model.expert_bytes),
            cpu_bytes: (k as u64 * per_layer).min(model.expert_bytes),
        };
    }
    // Whole layers with their KV cache, the output layer counting as one.
    let per_layer = ((model.layer_bytes + kv_bytes) / n_layer).max(1);
    let fits = (room / per_layer).min(n_layer) as i64;
    let values = around(fits, step(n_layer), n_layer as i64, false);
    let on_gpu = (fits as u64 * per_layer).min(need);
    Placed {
        settings: vec![Setting::new(
            "n_gpu_layers",
            super::list(&values),
            format!(
                "the model ({}) and its KV cache ({}) do not fit in {cards} ({} usable): about \
                 {fits} of its {n_layer} layers do, and each layer more on the GPU is faster \
                 while it fits",
                gib(weights),
                gib(kv_bytes),
                gib(room)
            ),
        )],
        finding: format!(
            "a model of {} that {cards} cannot hold: about {fits} of {n_layer} layers on the GPU",
            gib(weights)
        ),
        all_on_gpu: false,
        tight: true,
        gpu_bytes: on_gpu,
        cpu_bytes: need - on_gpu,
    }
}

/// A step of about a twelfth of the layers.
fn step(n_layer: u64) -> i64 {
    (n_layer / 12).max(1) as i64
}

/// `at` and two steps beyond it (more experts kept back: `up`) or below it
/// (fewer layers offloaded), within 0..=`most`.
fn around(at: i64, step: i64, most: i64, up: bool) -> Vec<i64> {
    let sign = if up { 1 } else { -1 };
    let mut values: Vec<i64> = (0..3)
        .map(|i| (at + sign * i * step).clamp(0, most))
        .collect();
    values.sort_unstable();
    values.dedup();
    values
}

fn describe_gpus(hw: &Hardware) -> String {
    match hw.gpus.as_slice() {
        [one] => format!("the GPU's {} free ({})", gib(one.free_bytes), one.name),
        gpus => format!(
            "the {} GPUs' {} free ({})",
            gpus.len(),
            gib(gpus.iter().map(|g| g.free_bytes).sum()),
            gpus.iter()
                .map(|g| format!("{} {}", g.name, gib(g.free_bytes)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
