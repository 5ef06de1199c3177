//! Writes the two synthetic recorded grids under tests/fixtures/ that the
//! search strategies are replayed against (with the real demo-model grid):
//!
//! - `synthetic-gpu-offload`: a 7B model on a 6 GB GPU: four quantizations ×
//!   GPU layers × n_ctx × flash attention × K-cache type (288 trials). Speed
//!   follows the bytes read per token from VRAM and from host memory; flash
//!   attention only pays off with every layer on the GPU; big models, many
//!   layers and long contexts run out of device memory (an infeasible
//!   corner right next to the best configurations).
//! - `synthetic-cpu-threads`: the same model on a 16-core CPU, minimizing
//!   end-to-end latency with time to first token at most 5 s: threads ×
//!   n_batch × n_ubatch × flash attention × use_mmap (288 trials). Generation
//!   is bandwidth-bound and suffers beyond the physical cores; prompt
//!   processing scales with threads; a large n_ubatch only helps with flash
//!   attention; use_mmap does nothing; 32 threads with a large ubatch and
//!   no flash attention crash.
//!
//! Each row carries three noisy samples (a few % of spread), as a real one
//! would. The models are invented but shaped like what llama.cpp does; they
//! exist to test search, not to predict hardware.
//!
//! Run: `cargo run --release --example synthetic_grids` (deterministic: the
//! files only change when this program does).

use llama_sweep::knobs::{self, FlashAttn, KvType};
use llama_sweep::objective::{Bound, Constraint, Direction, Measured, Metric, Objective};
use llama_sweep::protocol::Workload;
use llama_sweep::rng::SplitMix64;
use llama_sweep::runner::TrialStatus;
use llama_sweep::store::manifest::{self, Manifest};
use llama_sweep::store::{csv_file, row::TrialRow};
use std::path::Path;

/// Parameters of one synthetic configuration.
#[derive(Clone)]
struct Config {
    variant: &'static str,
    n_gpu_layers: i32,
    n_ctx: u32,
    n_batch: u32,
    n_ubatch: u32,
    n_threads: i32,
    flash_attn: FlashAttn,
    type_k: KvType,
    use_mmap: bool,
}

/// What the invented machine does with it.
enum Outcome {
    Measured {
        pp_tps: f64,
        tg_tps: f64,
        cv: f64,
        device_mib: f64,
    },
    Failed {
        status: TrialStatus,
        error: &'static str,
    },
}

const PARAMS: f64 = 7.24e9;
const LAYERS: i32 = 33;

fn bits_per_weight(variant: &str) -> f64 {
    match variant {
        "Q4_K_M" => 4.85,
        "Q5_K_M" => 5.69,
        "Q6_K" => 6.56,
        _ => 8.5,
    }
}

fn model_bytes(variant: &str) -> f64 {
    PARAMS * bits_per_weight(variant) / 8.0
}

/// A laptop GPU: 6 GB of VRAM at ~250 GB/s, host memory at ~50 GB/s.
fn gpu_offload(c: &Config) -> Outcome {
    let size = model_bytes(c.variant);
    let on_gpu = c.n_gpu_layers as f64 / LAYERS as f64;
    let k_bytes = if c.type_k == KvType::Q8_0 {
        1.0625
    } else {
        2.0
    };
    let kv_per_token = 32.0 * 4096.0 * (k_bytes + 2.0);
    let compute_buffer = 0.3e9
        + if c.flash_attn == FlashAttn::Off {
            c.n_ctx as f64 * c.n_ctx as f64 * 16.0
        } else {
            0.0
        };
    let device = on_gpu * (size + kv_per_token * c.n_ctx as f64)
        + if on_gpu > 0.0 { compute_buffer } else { 0.0 };
    if device > 6.0e9 {
        return Outcome::Failed {
            status: TrialStatus::Oom,
            error: "cudaMalloc failed: out of memory (failed to allocate CUDA0 buffer)",
        };
    }
    let full = c.n_gpu_layers == LAYERS;
    let mut seconds = (1.0 - on_gpu) * size / 50e9 + on_gpu * size / 250e9;
    seconds += if full { 0.5e-3 } else { 2.0e-3 };
    // Attention over the context: flash attention shortens it on the GPU
    // but is a slower path on the CPU.
    seconds += c.n_ctx as f64
        * match (c.flash_attn, full) {
            (FlashAttn::On, true) => 0.5e-7,
            (FlashAttn::On, false) => 3.0e-7,
            _ => 2.0e-7,
        };
    if c.type_k == KvType::Q8_0 && c.flash_attn == FlashAttn::Off && on_gpu > 0.0 {
        seconds *= 1.03;
    }
    let tg = 1.0 / seconds;
    let pp = tg * if full { 40.0 } else { 12.0 };
    Outcome::Measured {
        pp_tps: pp,
        tg_tps: tg,
        cv: if full { 0.015 } else { 0.03 },
        device_mib: device / 1048576.0,
    }
}

/// A 16-core (32-thread) CPU with ~60 GB/s of memory bandwidth.
fn cpu_threads(c: &Config) -> Outcome {
    let t = c.n_threads as f64;
    if c.n_threads == 32 && c.n_ubatch == 512 && c.flash_attn == FlashAttn::Off {
        return Outcome::Failed {
            status: TrialStatus::Crashed,
            error: "GGML_ASSERT(ne00 % QK == 0) failed",
        };
    }
    let size = model_bytes(c.variant);
    let hyperthreads = if c.n_threads > 16 { 0.75 } else { 1.0 };
    let tg = 60e9 * (t / 6.0).min(1.0) * hyperthreads / size;
    let ubatch = match (c.n_ubatch, c.flash_attn) {
        (512, FlashAttn::On) => 1.0,
        (512, _) => 0.85,
        (256, _) => 0.93,
        _ => 0.8,
    };
    let batch = if c.n_batch >= 1024 { 1.0 } else { 0.97 };
    let pp = (9.0 * t.min(16.0) + 1.35 * (t - 16.0).max(0.0)) * ubatch * batch;
    Outcome::Measured {
        pp_tps: pp,
        tg_tps: tg,
        cv: 0.02,
        device_mib: 0.0,
    }
}

fn workload(request_prompt_tokens: u32) -> Workload {
    Workload {
        prompt_tokens: 512,
        gen_tokens: 128,
        repetitions: 3,
        warmup: 1,
        request_prompt_tokens,
        request_max_tokens: 128,
        n_depth: Vec::new(),
        request_history_tokens: 0,
        prompts: Default::default(),
    }
}

/// Mean and sample standard deviation.
fn mean_sd(v: &[f64]) -> (f64, f64) {
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (m, var.sqrt())
}

fn samples(value: f64, cv: f64, rng: &mut SplitMix64) -> Vec<f64> {
    (0..3).map(|_| value * (1.0 + cv * rng.normal())).collect()
}

fn joined(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.3}"))
        .collect::<Vec<_>>()
        .join(";")
}

// Fields are filled one by one from the synthetic configuration.
#[allow(clippy::field_reassign_with_default)]
fn make_row(
    sweep: &str,
    seq: u32,
    c: &Config,
    outcome: &Outcome,
    w: &Workload,
    objective: &Objective,
    rng: &mut SplitMix64,
) -> TrialRow {
    let mut r = TrialRow::default();
    r.trial_id = format!(
        "{:012x}",
        SplitMix64::new(name_seed(sweep) ^ seq as u64).next_u64() >> 16
    );
    r.sweep = sweep.into();
    r.seq = seq;
    r.attempts = 1;
    r.model_name = "synthetic-7b".into();
    r.model_variant = c.variant.into();
    r.model_path = format!("models/synthetic-7b.{}.gguf", c.variant);
    r.model_identity = format!("synthetic:{}", c.variant);
    r.model_description = Some(format!("llama 7B {}", c.variant));
    r.model_size_bytes = Some(model_bytes(c.variant) as u64);
    r.model_params = Some(PARAMS as u64);
    r.params.set(knobs::N_GPU_LAYERS, (c.n_gpu_layers).into());
    r.params.set(knobs::N_CTX, (c.n_ctx).into());
    r.params.set(knobs::N_BATCH, (c.n_batch).into());
    r.params.set(knobs::N_UBATCH, (c.n_ubatch).into());
    r.params.set(knobs::N_THREADS, (c.n_threads).into());
    r.params.set(knobs::N_THREADS_BATCH, (c.n_threads).into());
    r.params.set(knobs::FLASH_ATTN, (c.flash_attn).into());
    r.params.set(knobs::TYPE_K, (c.type_k).into());
    r.params.set(knobs::TYPE_V, (KvType::F16).into());
    let load_mode = if c.use_mmap { "mmap" } else { "none" };
    r.params
        .set(knobs::LOAD_MODE, knobs::Value::Text(load_mode.into()));
    r.params.set(knobs::OFFLOAD_KQV, (true).into());
    r.defaulted = String::new();
    r.prompt_tokens = w.prompt_tokens;
    r.gen_tokens = w.gen_tokens;
    r.repetitions = w.repetitions;
    r.warmup = w.warmup;
    r.request_prompt_tokens = w.request_prompt_tokens;
    r.request_max_tokens = w.request_max_tokens;
    r.build = "synthetic (examples/synthetic_grids.rs)".into();
    r.started_at = "2026-11-26T00:00:00Z".into();
    r.finished_at = "2026-11-26T00:00:00Z".into();
    match outcome {
        Outcome::Failed { status, error } => {
            r.status = *status;
            r.error = Some((*error).into());
            r.exit = Some("exit code 3".into());
            r.pp_tps_mean = None;
            r.pp_tps_sd = None;
            r.tg_tps_mean = None;
            r.tg_tps_sd = None;
            r.ttft_ms_mean = None;
            r.ttft_ms_sd = None;
            r.e2e_ms_mean = None;
            r.e2e_ms_sd = None;
            r.n_samples = None;
            r.load_ms = None;
            r.peak_rss_mib = None;
            r.device_memory_mib = None;
            r.layers_offloaded = None;
            r.layers_total = None;
            r.n_ctx_actual = None;
            r.flash_attn_resolved = None;
            r.cv = None;
            r.log_tail = (*error).into();
            r.wall_s = 2.0;
        }
        Outcome::Measured {
            pp_tps,
            tg_tps,
            cv,
            device_mib,
        } => {
            let pp = samples(*pp_tps, *cv, rng);
            let tg = samples(*tg_tps, *cv, rng);
            let ttft: Vec<f64> = pp
                .iter()
                .zip(&tg)
                .map(|(p, g)| 1000.0 * (w.request_prompt_tokens as f64 / p + 1.0 / g))
                .collect();
            let e2e: Vec<f64> = ttft
                .iter()
                .zip(&tg)
                .map(|(f, g)| f + 1000.0 * (w.request_max_tokens - 1) as f64 / g)
                .collect();
            r.status = TrialStatus::Ok;
            r.error = None;
            r.exit = Some("exit code 0".into());
            (r.pp_tps_mean, r.pp_tps_sd) = split(mean_sd(&pp));
            (r.tg_tps_mean, r.tg_tps_sd) = split(mean_sd(&tg));
            (r.ttft_ms_mean, r.ttft_ms_sd) = split(mean_sd(&ttft));
            (r.e2e_ms_mean, r.e2e_ms_sd) = split(mean_sd(&e2e));
            r.pp_tps_samples = joined(&pp);
            r.tg_tps_samples = joined(&tg);
            r.ttft_ms_samples = joined(&ttft);
            r.e2e_ms_samples = joined(&e2e);
            r.n_samples = Some(3);
            r.load_ms = Some(if c.use_mmap { 900.0 } else { 2600.0 });
            r.peak_rss_mib = Some(
                model_bytes(c.variant) * (1.0 - c.n_gpu_layers as f64 / LAYERS as f64) / 1048576.0
                    + 300.0,
            );
            r.device_memory_mib = Some(*device_mib);
            r.layers_offloaded = Some(c.n_gpu_layers as u32);
            r.layers_total = Some(LAYERS as u32);
            r.n_ctx_actual = Some(c.n_ctx);
            r.flash_attn_resolved = Some(c.flash_attn == FlashAttn::On);
            r.wall_s = 3.0 * (w.prompt_tokens as f64 / pp_tps + w.gen_tokens as f64 / tg_tps);
            r.log_tail = String::new();
        }
    }
    let violations = objective.violations(&r);
    r.feasible = r.status == TrialStatus::Ok && violations.is_empty();
    r.violations = (!violations.is_empty()).then(|| violations.join("; "));
    r.cv = r
        .mean_of(objective.metric)
        .zip(r.sd_of(objective.metric))
        .map(|(m, sd)| sd / m);
    r.log_file = format!("logs/{}.log", r.trial_id);
    r
}

/// A seed that differs per grid.
fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn split((m, sd): (f64, f64)) -> (Option<f64>, Option<f64>) {
    (Some(m), Some(sd))
}

/// The manifest of a synthetic sweep: an invented machine, no llama.cpp.
fn manifest(
    name: &str,
    objective: &Objective,
    w: &Workload,
    machine: &str,
    trials: usize,
) -> Manifest {
    let value = serde_json::json!({
        "tool": { "name": "llama-sweep", "version": env!("CARGO_PKG_VERSION"), "features": [],
                  "command_line": ["cargo", "run", "--release", "--example", "synthetic_grids"] },
        "sweep": { "name": name, "file": "examples/synthetic_grids.rs", "sha256": "", "strategy": "grid",
                   "objective": objective, "workload": w, "temperature": 0.7 },
        "machine": { "hostname": "synthetic", "os": "synthetic", "kernel": "", "arch": "x86_64",
                     "cpu_model": machine, "logical_cores": 32, "physical_cores": 16,
                     "memory_total_bytes": 68719476736u64 },
        "llama_cpp": { "llama_cpp_build": "synthetic", "system_info": "", "supports_gpu_offload": true,
                       "supports_mmap": true, "backends": ["CPU"], "devices": [],
                       "defaults": { "n_gpu_layers": -1, "n_ctx": 4096, "n_batch": 2048, "n_ubatch": 512,
                                     "n_threads": 16, "n_threads_batch": 16, "flash_attn": "auto",
                                     "type_k": "f16", "type_v": "f16", "use_mmap": true, "offload_kqv": true } },
        "started_at": "2026-11-26T00:00:00Z", "updated_at": "2026-11-26T00:00:00Z",
        "trials_planned": trials, "trials_recorded": trials
    });
    serde_json::from_value(value).expect("the synthetic manifest matches Manifest")
}

fn write_grid(
    name: &str,
    configs: &[Config],
    machine: fn(&Config) -> Outcome,
    objective: Objective,
    w: Workload,
    about: &str,
) -> anyhow::Result<()> {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::create_dir_all(&folder)?;
    let mut rng = SplitMix64::new(name_seed(name));
    let rows: Vec<TrialRow> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| make_row(name, i as u32, c, &machine(c), &w, &objective, &mut rng))
        .collect();
    csv_file::write_all(&folder.join("results.csv"), &rows)?;
    manifest::write(
        &folder.join("manifest.json"),
        &manifest(name, &objective, &w, about, rows.len()),
    )?;
    let failed = rows.iter().filter(|r| r.status != TrialStatus::Ok).count();
    println!(
        "{}: {} trials, {failed} failed",
        folder.display(),
        rows.len()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let mut gpu = Vec::new();
    for variant in ["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"] {
        for n_gpu_layers in [0, 8, 16, 24, 28, 33] {
            for n_ctx in [1024, 2048, 4096] {
                for flash_attn in [FlashAttn::On, FlashAttn::Off] {
                    for type_k in [KvType::F16, KvType::Q8_0] {
                        gpu.push(Config {
                            variant,
                            n_gpu_layers,
                            n_ctx,
                            n_batch: 2048,
                            n_ubatch: 512,
                            n_threads: 8,
                            flash_attn,
                            type_k,
                            use_mmap: true,
                        });
                    }
                }
            }
        }
    }
    write_grid(
        "synthetic-gpu-offload",
        &gpu,
        gpu_offload,
        Objective::default(),
        workload(512),
        "synthetic: 6 GB laptop GPU, 250 GB/s VRAM, 50 GB/s host",
    )?;

    let mut cpu = Vec::new();
    for n_threads in [2, 4, 6, 8, 12, 16, 24, 32] {
        for n_batch in [512, 1024, 2048] {
            for n_ubatch in [128, 256, 512] {
                for flash_attn in [FlashAttn::On, FlashAttn::Off] {
                    for use_mmap in [true, false] {
                        cpu.push(Config {
                            variant: "Q4_K_M",
                            n_gpu_layers: 0,
                            n_ctx: 4096,
                            n_batch,
                            n_ubatch,
                            n_threads,
                            flash_attn,
                            type_k: KvType::F16,
                            use_mmap,
                        });
                    }
                }
            }
        }
    }
    let latency = Objective {
        metric: Metric::E2eMs,
        direction: Direction::Minimize,
        constraints: vec![Constraint {
            metric: Metric::TtftMs,
            bound: Bound::AtMost(5000.0),
        }],
    };
    write_grid(
        "synthetic-cpu-threads",
        &cpu,
        cpu_threads,
        latency,
        workload(512),
        "synthetic: 16-core/32-thread CPU, 60 GB/s",
    )?;
    Ok(())
}
