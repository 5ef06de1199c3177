//! Where llama.cpp receives each knob of the parameter table: one arm per
//! knob that writes its value into llama.cpp's model or context parameters,
//! and one that reads the knob's default back from llama.cpp's default
//! parameter structs (what a trial runs with when the sweep leaves the knob
//! unset).

use super::llama::{ModelParams, Threadpool};
use crate::knobs::{
    self, EffectiveParams, FlashAttn, KnobId, KvType, LoadMode, Params, SplitMode, Value, lists,
};
use llama_cpp_sys_2 as sys;

/// llama.cpp's parameters for one model load and context, and for the
/// threadpools attached to it.
pub struct Settings {
    pub model: ModelParams,
    pub context: sys::llama_context_params,
    pub threads: ThreadSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ModelParams::default(),
            // SAFETY: a plain struct of defaults.
            context: unsafe { sys::llama_context_default_params() },
            threads: ThreadSettings::default(),
        }
    }
}

/// The threadpool knobs (llama-bench's `--poll`, `--prio`, `-C`,
/// `--cpu-strict`), applied to each pool the context gets.
#[derive(Debug, Clone)]
pub struct ThreadSettings {
    pub poll: u32,
    pub prio: sys::ggml_sched_priority,
    pub cpus: Vec<usize>,
    pub strict_cpu: bool,
}

impl Default for ThreadSettings {
    fn default() -> Self {
        let p = Threadpool::params(1);
        ThreadSettings {
            poll: p.poll,
            prio: p.prio,
            cpus: Vec::new(),
            strict_cpu: p.strict_cpu,
        }
    }
}

impl ThreadSettings {
    /// ggml's threadpool parameters for `n_threads` threads with these
    /// settings.
    pub fn pool_params(&self, n_threads: i32) -> sys::ggml_threadpool_params {
        let mut p = Threadpool::params(n_threads);
        p.poll = self.poll;
        p.prio = self.prio;
        p.strict_cpu = self.strict_cpu;
        for &cpu in &self.cpus {
            if let Some(bit) = p.cpumask.get_mut(cpu) {
                *bit = true;
            }
        }
        p
    }
}

/// llama.cpp's parameters for the knobs `params` sets; a knob that follows
/// another (n_threads_batch) takes that one's value when only that one is
/// set, as `Params::resolve` records it.
pub fn settings(params: &Params) -> Settings {
    let mut settings = Settings::default();
    for knob in knobs::TABLE {
        let value = params
            .get(knob.id)
            .or_else(|| knob.follows.and_then(|f| params.get(f)));
        if let Some(value) = value {
            receive(&mut settings, knob.id, value);
        }
    }
    settings
}

fn flash_attn_type(f: FlashAttn) -> sys::llama_flash_attn_type {
    match f {
        FlashAttn::On => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        FlashAttn::Off => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        FlashAttn::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
    }
}

fn load_mode(m: LoadMode) -> sys::llama_load_mode {
    match m {
        LoadMode::Auto => sys::LLAMA_LOAD_MODE_AUTO,
        LoadMode::None => sys::LLAMA_LOAD_MODE_NONE,
        LoadMode::Mmap => sys::LLAMA_LOAD_MODE_MMAP,
        LoadMode::Mlock => sys::LLAMA_LOAD_MODE_MLOCK,
        LoadMode::MmapMlock => sys::LLAMA_LOAD_MODE_MMAP_MLOCK,
        LoadMode::DirectIo => sys::LLAMA_LOAD_MODE_DIRECT_IO,
    }
}

fn split_mode(m: SplitMode) -> sys::llama_split_mode {
    match m {
        SplitMode::None => sys::LLAMA_SPLIT_MODE_NONE,
        SplitMode::Layer => sys::LLAMA_SPLIT_MODE_LAYER,
        SplitMode::Row => sys::LLAMA_SPLIT_MODE_ROW,
        SplitMode::Tensor => sys::LLAMA_SPLIT_MODE_TENSOR,
    }
}

fn kv_type(value: &Value) -> sys::ggml_type {
    let t = value
        .as_str()
        .and_then(KvType::from_name)
        .unwrap_or(KvType::F16);
    t.ggml_type_id() as sys::ggml_type
}

/// Writes one knob's value into llama.cpp's parameters. Returns whether
/// the knob is one llama.cpp receives here (every knob of the table is;
/// a test holds the table to that).
fn receive(s: &mut Settings, knob: KnobId, value: &Value) -> bool {
    let int = value.as_int().unwrap_or_default();
    let flag = value.as_bool().unwrap_or_default();
    let text = value.as_str().unwrap_or_default();
    let (mp, cp) = (&mut s.model.raw, &mut s.context);
    match knob {
        // A negative value means all layers.
        knobs::N_GPU_LAYERS => mp.n_gpu_layers = int.clamp(-1, i64::from(i32::MAX)) as i32,
        knobs::LOAD_MODE => {
            mp.load_mode = load_mode(LoadMode::from_name(text).unwrap_or(LoadMode::Auto))
        }
        knobs::SPLIT_MODE => {
            mp.split_mode = split_mode(SplitMode::from_name(text).unwrap_or(SplitMode::Layer))
        }
        knobs::MAIN_GPU => mp.main_gpu = int.clamp(0, i64::from(i32::MAX)) as i32,
        // llama.cpp's -ot rules first, then --n-cpu-moe's, as llama-bench
        // merges them (the first matching rule places a tensor).
        knobs::OVERRIDE_TENSOR => {
            for rule in lists::override_rules(text) {
                s.model.override_tensors(&rule.pattern, &rule.buffer_type);
            }
        }
        knobs::N_CPU_MOE => {
            for layer in 0..int.clamp(0, i64::from(u32::MAX)) as u32 {
                s.model
                    .override_tensors(&lists::expert_pattern(layer), CPU_BUFFER_TYPE);
            }
        }
        knobs::TENSOR_SPLIT => s.model.split_tensors(lists::tensor_split_numbers(text)),
        knobs::DEVICES => {
            if let Some(names) = lists::device_names(text) {
                s.model.use_devices(names);
            }
        }
        knobs::OP_OFFLOAD => cp.op_offload = flag,
        knobs::POLL => s.threads.poll = int.clamp(0, 100) as u32,
        knobs::PRIO => s.threads.prio = int.clamp(-1, 3) as sys::ggml_sched_priority,
        knobs::CPU_MASK => s.threads.cpus = lists::cpu_mask_cpus(text),
        knobs::CPU_STRICT => s.threads.strict_cpu = flag,
        knobs::N_CTX => cp.n_ctx = int as u32,
        knobs::N_BATCH => cp.n_batch = int as u32,
        knobs::N_UBATCH => cp.n_ubatch = int as u32,
        knobs::N_THREADS => cp.n_threads = int as i32,
        knobs::N_THREADS_BATCH => cp.n_threads_batch = int as i32,
        knobs::FLASH_ATTN => {
            let f = value.as_str().and_then(FlashAttn::from_name);
            cp.flash_attn_type = flash_attn_type(f.unwrap_or(FlashAttn::Auto));
        }
        knobs::TYPE_K => cp.type_k = kv_type(value),
        knobs::TYPE_V => cp.type_v = kv_type(value),
        knobs::OFFLOAD_KQV => cp.offload_kqv = flag,
        knobs::REPACK => mp.use_extra_bufts = flag,
        knobs::NO_HOST => mp.no_host = flag,
        knobs::N_PARALLEL => cp.n_seq_max = int.clamp(1, 256) as u32,
        knobs::KV_UNIFIED => cp.kv_unified = flag,
        // llama-server's own knobs: its trials pass them on its command
        // line, and the config refuses them for the in-process child.
        _ if knob.knob().server_only() => {}
        _ => return false,
    }
    true
}

/// The CPU's own buffer type, where `--n-cpu-moe` keeps expert tensors.
pub const CPU_BUFFER_TYPE: &str = "CPU";

/// llama.cpp's default of one knob, from its default parameters.
fn default_of(
    knob: KnobId,
    mp: &sys::llama_model_params,
    cp: &sys::llama_context_params,
    tp: &ThreadSettings,
) -> Option<Value> {
    let kv = |t: sys::ggml_type| {
        KvType::ALL
            .into_iter()
            .find(|k| k.ggml_type_id() as sys::ggml_type == t)
            .unwrap_or(KvType::F16)
            .into()
    };
    Some(match knob {
        knobs::N_GPU_LAYERS => mp.n_gpu_layers.into(),
        knobs::LOAD_MODE => LoadMode::ALL
            .into_iter()
            .find(|m| load_mode(*m) == mp.load_mode)
            .unwrap_or(LoadMode::Auto)
            .into(),
        knobs::SPLIT_MODE => SplitMode::ALL
            .into_iter()
            .find(|m| split_mode(*m) == mp.split_mode)
            .unwrap_or(SplitMode::Layer)
            .into(),
        knobs::MAIN_GPU => mp.main_gpu.into(),
        // Null pointers: no overrides, all devices, split by free memory.
        knobs::OVERRIDE_TENSOR if mp.tensor_buft_overrides.is_null() => {
            Value::Text(lists::NO_OVERRIDES.into())
        }
        knobs::DEVICES if mp.devices.is_null() => Value::Text(lists::ALL_DEVICES.into()),
        knobs::TENSOR_SPLIT if mp.tensor_split.is_null() => Value::Text(lists::AUTO_SPLIT.into()),
        knobs::N_CPU_MOE => 0.into(),
        knobs::OP_OFFLOAD => cp.op_offload.into(),
        knobs::POLL => tp.poll.into(),
        knobs::PRIO => (tp.prio as i64).into(),
        knobs::CPU_MASK if tp.cpus.is_empty() => Value::Text(lists::NO_CPU_MASK.into()),
        knobs::CPU_STRICT => tp.strict_cpu.into(),
        knobs::N_CTX => cp.n_ctx.into(),
        knobs::N_BATCH => cp.n_batch.into(),
        knobs::N_UBATCH => cp.n_ubatch.into(),
        knobs::N_THREADS => cp.n_threads.into(),
        knobs::N_THREADS_BATCH => cp.n_threads_batch.into(),
        knobs::FLASH_ATTN => match cp.flash_attn_type {
            sys::LLAMA_FLASH_ATTN_TYPE_ENABLED => FlashAttn::On,
            sys::LLAMA_FLASH_ATTN_TYPE_DISABLED => FlashAttn::Off,
            _ => FlashAttn::Auto,
        }
        .into(),
        knobs::TYPE_K => kv(cp.type_k),
        knobs::TYPE_V => kv(cp.type_v),
        knobs::OFFLOAD_KQV => cp.offload_kqv.into(),
        knobs::REPACK => mp.use_extra_bufts.into(),
        knobs::NO_HOST => mp.no_host.into(),
        knobs::N_PARALLEL => cp.n_seq_max.into(),
        knobs::KV_UNIFIED => cp.kv_unified.into(),
        // llama-server's defaults, as its --help gives them.
        _ if knob.knob().server_only() => Value::from_cell(knob.knob(), knob.knob().before?)?,
        _ => return None,
    })
}

/// llama.cpp's default for every knob.
pub fn defaults() -> EffectiveParams {
    let s = Settings::default();
    let values: Params = knobs::TABLE
        .iter()
        .filter_map(|k| default_of(k.id, &s.model.raw, &s.context, &s.threads).map(|v| (k.id, v)))
        .collect();
    EffectiveParams::complete(values)
        .unwrap_or_else(|missing| panic!("no llama.cpp default is read for knob {missing}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_is_received_and_has_a_default() {
        let defaults = defaults();
        for knob in knobs::TABLE {
            let mut s = Settings::default();
            assert!(
                receive(&mut s, knob.id, defaults.get(knob.id)),
                "{} is not received by llama.cpp",
                knob.name
            );
        }
    }

    #[test]
    fn set_knobs_reach_the_parameters_and_threads_batch_follows() {
        let params = Params::default()
            .with(knobs::N_CTX, Value::Int(2048))
            .with(knobs::N_THREADS, Value::Int(3))
            .with(knobs::TYPE_V, KvType::Q8_0.into())
            .with(knobs::LOAD_MODE, LoadMode::None.into())
            .with(knobs::N_CPU_MOE, Value::Int(2))
            .with(knobs::OVERRIDE_TENSOR, Value::Text("token_embd=CPU".into()))
            .with(knobs::CPU_MASK, Value::Text("0x5".into()))
            .with(knobs::PRIO, Value::Int(2));
        let s = settings(&params);
        assert_eq!(s.context.n_ctx, 2048);
        assert_eq!((s.context.n_threads, s.context.n_threads_batch), (3, 3));
        assert_eq!(
            s.context.type_v,
            KvType::Q8_0.ggml_type_id() as sys::ggml_type
        );
        assert_eq!(s.model.raw.load_mode, sys::LLAMA_LOAD_MODE_NONE);
        let overrides: Vec<(&str, &str)> = s
            .model
            .overrides()
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            overrides,
            [
                ("token_embd", "CPU"),
                ("blk\\.0\\.ffn_(up|down|gate|gate_up)_(ch|)exps", "CPU"),
                ("blk\\.1\\.ffn_(up|down|gate|gate_up)_(ch|)exps", "CPU"),
            ],
            "the -ot rules first, then one per n_cpu_moe layer"
        );
        let pool = s.threads.pool_params(4);
        assert_eq!(
            (
                pool.cpumask[0],
                pool.cpumask[1],
                pool.cpumask[2],
                pool.n_threads
            ),
            (true, false, true, 4)
        );
        assert_eq!(pool.prio, 2 as sys::ggml_sched_priority);
        let defaults = defaults();
        assert_eq!(defaults.int(knobs::N_GPU_LAYERS), -1);
        assert_eq!(defaults.text(knobs::LOAD_MODE), "auto");
        assert_eq!(defaults.text(knobs::TENSOR_SPLIT), "auto");
        assert_eq!(defaults.int(knobs::POLL), 50);
        assert!(defaults.flag(knobs::OP_OFFLOAD));
    }
}
