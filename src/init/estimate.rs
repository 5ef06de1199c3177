//! A first guess at how long a sweep takes, before anything was measured,
//! to choose between a grid and a budgeted search. Generation reads every
//! weight once a token, so its speed is bounded by memory bandwidth: the
//! host's as measured, the GPU's assumed; prompt processing is bound by
//! arithmetic, two operations per weight and token. Only the order of magnitude is meant: `plan`
//! gives the real time per trial once a few have run.

use super::ModelShape;
use super::placing::Placed;

/// The share of the host's bandwidth bound generation reaches, and what
/// each token costs besides reading the weights (graph, sampling, threads
/// meeting), as measured on the demo model on a 2-core VM.
const HOST_EFFICIENCY: f64 = 0.4;
const TOKEN_OVERHEAD_S: f64 = 0.002;
/// A GPU's memory bandwidth, 10⁹ bytes/s, and the share generation
/// reaches (a mid-range card's; unmeasured).
const GPU_GB_PER_S: f64 = 400.0;
const GPU_EFFICIENCY: f64 = 0.6;
/// Prompt processing is bound by arithmetic (two operations per active
/// weight and token): what one physical core and a GPU reach on quantized
/// matrix products.
const CPU_FLOPS_PER_CORE: f64 = 25e9;
const GPU_FLOPS: f64 = 20e12;
/// How fast weights in host memory reach the GPU, and the prompt tokens
/// of one batch.
const PCIE_BYTES_PER_S: f64 = 20e9;
const BATCH_TOKENS: f64 = 512.0;
/// Bytes per second of reading a model file, and of deriving a
/// quantization from one.
const LOAD_BYTES_PER_S: f64 = 2e9;
const QUANTIZE_BYTES_PER_S: f64 = 0.3e9;
/// Trials measured besides the space's (the baseline, llama.cpp's
/// defaults).
const REFERENCE_TRIALS: f64 = 2.0;
/// Tokens of text the quality of one variant is measured on.
const QUALITY_TOKENS: f64 = 8.0 * 512.0;

/// The tests of one trial.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sizes {
    pub prompt_tokens: u32,
    pub gen_tokens: u32,
    pub request_prompt_tokens: u32,
    pub request_max_tokens: u32,
    pub warmup: u32,
    pub repetitions: u32,
    /// The depth measured besides 0 (0: none).
    pub depth: u32,
    /// Sequences (users) decoded together: each test's prompts are all of
    /// theirs.
    pub users: u32,
    pub confirm: ConfirmShape,
}

/// How the confirmation runs, as far as its time goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConfirmShape {
    /// Finalists and references measured again (0: no confirmation).
    pub subjects: u32,
    /// Side by side in blocks of one request, each subject loaded once
    /// (else rounds of whole trials with twice the repetitions).
    pub resident: bool,
    /// Pairs of blocks (or rounds) before the first look, where a clear
    /// verdict stops.
    pub first_look: u32,
}

impl ConfirmShape {
    /// The confirmation `settings` describe, with `references` reference
    /// trials.
    pub fn of(settings: &crate::config::ConfirmSettings, references: u32) -> ConfirmShape {
        ConfirmShape {
            subjects: settings.subjects(references as usize) as u32,
            resident: settings.resident(),
            first_look: settings.first_look() as u32,
        }
    }
}

/// The guess, part by part.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SweepTime {
    pub per_trial_s: f64,
    /// The space's trials together.
    pub trials_s: f64,
    /// The reference trials (the baseline, llama.cpp's defaults).
    pub references_s: f64,
    /// The confirmation, up to its first look.
    pub confirmation_s: f64,
    /// Deriving the quantizations and measuring their quality.
    pub quality_s: f64,
    /// Everything besides the space's trials.
    pub fixed_s: f64,
    pub total_s: f64,
    /// Generation speed guessed, tokens/s.
    pub tg_tps: f64,
}

impl SweepTime {
    /// `trials 6 min, references 40 s, confirmation 2 min, quality 1 min`.
    pub fn split(&self) -> String {
        let parts = [
            ("trials", self.trials_s),
            ("references", self.references_s),
            ("confirmation", self.confirmation_s),
            ("quality", self.quality_s),
        ];
        parts
            .iter()
            .filter(|(_, s)| *s >= 0.5)
            .map(|(what, s)| format!("{what} {}", human(*s)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What the sweep does besides its trials.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Extras {
    /// Model variants.
    pub variants: u64,
    /// They are derived (quantized) first.
    pub derived: bool,
    /// Their quality is measured.
    pub quality: bool,
}

/// How long a sweep of `trials` trials of `model` placed as `place` takes.
pub fn sweep_time(
    model: &ModelShape,
    hw: &super::Hardware,
    place: &Placed,
    sizes: &Sizes,
    trials: u64,
    extras: Extras,
) -> SweepTime {
    let on_gpu = place.gpu_bytes as f64 / (place.gpu_bytes + place.cpu_bytes).max(1) as f64;
    let read = model.bytes_per_token as f64;
    let host = hw.host_gb_per_s.max(1.0) * 1e9 * HOST_EFFICIENCY;
    let gpu = GPU_GB_PER_S * 1e9 * GPU_EFFICIENCY;
    let tg_s = read * (1.0 - on_gpu) / host + read * on_gpu / gpu + TOKEN_OVERHEAD_S;
    // An MoE token multiplies only its experts' weights.
    let active = model.n_params as f64 * read / model.weight_bytes().max(1) as f64;
    let flops = 2.0 * active;
    let cores = hw.physical_cores.max(1) as f64;
    let pp_s = if place.gpu_bytes > 0 {
        // A GPU processes the whole prompt, the weights in host memory
        // shipped to it once a batch (llama.cpp's op_offload).
        flops / GPU_FLOPS + place.cpu_bytes as f64 / PCIE_BYTES_PER_S / BATCH_TOKENS
    } else {
        flops / (cores * CPU_FLOPS_PER_CORE)
    };
    let f = |n: u32| f64::from(n);
    // Every user's prompt is processed; their tokens are generated
    // together, a step each (a step reads the weights once).
    let users = f(sizes.users.max(1));
    let request_s =
        f(sizes.request_prompt_tokens) * users * pp_s + f(sizes.request_max_tokens) * tg_s;
    let run_s = f(sizes.prompt_tokens) * users * pp_s
        + f(sizes.gen_tokens) * tg_s
        + request_s
        + if sizes.depth > 0 {
            f(sizes.depth + sizes.prompt_tokens) * users * pp_s + f(sizes.gen_tokens) * tg_s
        } else {
            0.0
        };
    let load_s = load_s(model);
    let per_trial_s = load_s + f(sizes.warmup + sizes.repetitions) * run_s;
    let variants = extras.variants as f64;
    let quality_s = if extras.quality {
        variants * (load_s + QUALITY_TOKENS * pp_s)
    } else {
        0.0
    };
    let derive_s = if extras.derived {
        variants * model.weight_bytes() as f64 / QUANTIZE_BYTES_PER_S
    } else {
        0.0
    };
    let c = sizes.confirm;
    let confirmation_s = f(c.subjects)
        * if c.resident {
            // Loaded and warmed up once, then a request per pair.
            load_s + f(sizes.warmup) * run_s + f(c.first_look) * request_s
        } else {
            // A whole trial a round, with twice the repetitions.
            f(c.first_look) * (load_s + f(sizes.warmup + 2 * sizes.repetitions) * run_s)
        };
    let references_s = REFERENCE_TRIALS * per_trial_s;
    let trials_s = trials as f64 * per_trial_s;
    let fixed_s = quality_s + derive_s + references_s + confirmation_s;
    SweepTime {
        per_trial_s,
        trials_s,
        references_s,
        confirmation_s,
        quality_s: quality_s + derive_s,
        fixed_s,
        total_s: fixed_s + trials_s,
        tg_tps: 1.0 / tg_s.max(1e-9),
    }
}

/// A child process starts and loads `model`.
pub fn load_s(model: &ModelShape) -> f64 {
    1.5 + model.weight_bytes() as f64 / LOAD_BYTES_PER_S
}

/// `s` seconds for people: "40 s", "12 min", "3 h 20 min".
pub fn human(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..=89 => format!("{s} s"),
        90..=5399 => format!("{} min", (s + 30) / 60),
        _ => {
            let minutes = (s + 30) / 60;
            match minutes % 60 {
                0 => format!("{} h", minutes / 60),
                m => format!("{} h {m} min", minutes / 60),
            }
        }
    }
}

/// The first guess for a sweep file's `trials` trials still to run, from
/// the shape of its first model and this machine: what `plan` says
/// before any trial has run.
pub fn of_sweep(
    config: &crate::config::SweepConfig,
    model: &ModelShape,
    hw: &super::Hardware,
    trials: u64,
    variants: u64,
) -> SweepTime {
    use crate::knobs::{N_CTX, N_GPU_LAYERS, N_PARALLEL};
    let ints = |knob| -> Vec<i64> {
        config
            .space
            .get(knob)
            .map(|v| v.iter().filter_map(crate::knobs::Value::as_int).collect())
            .unwrap_or_default()
    };
    let users = ints(N_PARALLEL).into_iter().max().unwrap_or(1).max(1) as u32;
    let n_ctx = ints(N_CTX).into_iter().max().unwrap_or(4096).max(1) as u64;
    // llama.cpp's default offloads every layer.
    let offloads =
        config.space.get(N_GPU_LAYERS).is_none() || ints(N_GPU_LAYERS).iter().any(|&n| n != 0);
    let hw = if offloads {
        hw.clone()
    } else {
        super::Hardware {
            gpus: Vec::new(),
            ..hw.clone()
        }
    };
    let place = super::placing::place(model, &hw, model.kv_bytes_per_token * n_ctx);
    let w = &config.workload;
    let sizes = Sizes {
        prompt_tokens: w.prompt_tokens,
        gen_tokens: w.gen_tokens,
        request_prompt_tokens: w.request_prompt_tokens,
        request_max_tokens: w.request_max_tokens,
        warmup: w.warmup,
        repetitions: w.repetitions,
        depth: w.n_depth.iter().max().copied().unwrap_or(0),
        users,
        confirm: ConfirmShape::of(&config.confirm, 1 + u32::from(config.baseline.is_some())),
    };
    let extras = Extras {
        variants,
        derived: config.models.iter().any(|m| !m.quantize.is_empty()),
        quality: config.quality.measure,
    };
    sweep_time(model, &hw, &place, &sizes, trials, extras)
}
