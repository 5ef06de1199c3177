//! The contract between the parent (`llama-sweep run`) and its child processes
//! (`llama-sweep trial`).
//!
//! Every piece of llama.cpp work — probing the build, quantizing a model,
//! measuring a trial — happens in a child: the parent writes one [`ChildJob`]
//! as JSON on the child's stdin, the child answers with exactly one
//! [`ChildReply`] JSON line on stdout, and llama.cpp's log goes to stderr. These
//! types are plain data so that both sides, the store and the tests share them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;

/// Flash attention policy, as llama.cpp's `llama_flash_attn_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlashAttn {
    On,
    Off,
    Auto,
}

impl FlashAttn {
    pub const ALL: [FlashAttn; 3] = [FlashAttn::On, FlashAttn::Off, FlashAttn::Auto];

    pub fn name(self) -> &'static str {
        match self {
            FlashAttn::On => "on",
            FlashAttn::Off => "off",
            FlashAttn::Auto => "auto",
        }
    }
}

impl fmt::Display for FlashAttn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The KV-cache element types llama.cpp accepts for `type_k` / `type_v`
/// (the same list llama-bench offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvType {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4_1,
    #[serde(rename = "iq4_nl")]
    Iq4Nl,
    Q5_0,
    Q5_1,
}

impl KvType {
    pub const ALL: [KvType; 9] = [
        KvType::F32,
        KvType::F16,
        KvType::Bf16,
        KvType::Q8_0,
        KvType::Q4_0,
        KvType::Q4_1,
        KvType::Iq4Nl,
        KvType::Q5_0,
        KvType::Q5_1,
    ];

    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
            KvType::Bf16 => "bf16",
            KvType::Q8_0 => "q8_0",
            KvType::Q4_0 => "q4_0",
            KvType::Q4_1 => "q4_1",
            KvType::Iq4Nl => "iq4_nl",
            KvType::Q5_0 => "q5_0",
            KvType::Q5_1 => "q5_1",
        }
    }

    /// Block-quantized types (everything but f32, f16, bf16); a quantized V
    /// cache needs flash attention.
    pub fn is_quantized(self) -> bool {
        !matches!(self, KvType::F32 | KvType::F16 | KvType::Bf16)
    }

    pub fn from_name(name: &str) -> Option<KvType> {
        KvType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The `ggml_type` enum value, which is what llama-cpp-python's `type_k` /
    /// `type_v` keyword arguments take.
    pub fn ggml_type_id(self) -> u32 {
        match self {
            KvType::F32 => 0,
            KvType::F16 => 1,
            KvType::Q4_0 => 2,
            KvType::Q4_1 => 3,
            KvType::Q5_0 => 6,
            KvType::Q5_1 => 7,
            KvType::Q8_0 => 8,
            KvType::Iq4Nl => 20,
            KvType::Bf16 => 30,
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The tunable parameters of one trial. `None` means "leave llama.cpp's
/// default": it is omitted from the JSON, so adding a parameter later does not
/// change the trial ids of existing sweeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_gpu_layers: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_ctx: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_batch: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_ubatch: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_threads: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n_threads_batch: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash_attn: Option<FlashAttn>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_k: Option<KvType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_v: Option<KvType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_mmap: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offload_kqv: Option<bool>,
}

/// Every parameter with a value: what a trial really ran with, once
/// llama.cpp's defaults are filled in for the ones the sweep left unset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EffectiveParams {
    pub n_gpu_layers: i32,
    pub n_ctx: u32,
    pub n_batch: u32,
    pub n_ubatch: u32,
    pub n_threads: i32,
    pub n_threads_batch: i32,
    pub flash_attn: FlashAttn,
    pub type_k: KvType,
    pub type_v: KvType,
    pub use_mmap: bool,
    pub offload_kqv: bool,
}

impl Params {
    /// Fills unset parameters from llama.cpp's defaults. `n_threads_batch`
    /// follows `n_threads` when only the latter is set, as llama-bench does,
    /// and the batch sizes are clamped as llama.cpp clamps them (n_batch to
    /// n_ctx, n_ubatch to n_batch). Returns the effective values and the names
    /// of the parameters that were left at llama.cpp's default.
    pub fn resolve(&self, defaults: &EffectiveParams) -> (EffectiveParams, Vec<&'static str>) {
        let mut defaulted = Vec::new();
        macro_rules! pick {
            ($field:ident) => {
                match self.$field {
                    Some(v) => v,
                    None => {
                        defaulted.push(stringify!($field));
                        defaults.$field
                    }
                }
            };
        }
        let n_threads_batch = match (self.n_threads_batch, self.n_threads) {
            (Some(v), _) => v,
            (None, Some(t)) => t,
            (None, None) => {
                defaulted.push("n_threads_batch");
                defaults.n_threads_batch
            }
        };
        let n_ctx = pick!(n_ctx);
        let n_batch = pick!(n_batch).min(n_ctx.max(1));
        let n_ubatch = pick!(n_ubatch).min(n_batch);
        let effective = EffectiveParams {
            n_gpu_layers: pick!(n_gpu_layers),
            n_ctx,
            n_batch,
            n_ubatch,
            n_threads: pick!(n_threads),
            n_threads_batch,
            flash_attn: pick!(flash_attn),
            type_k: pick!(type_k),
            type_v: pick!(type_v),
            use_mmap: pick!(use_mmap),
            offload_kqv: pick!(offload_kqv),
        };
        defaulted.sort_unstable();
        (effective, defaulted)
    }
}

/// What is measured in each trial: the llama-bench style pp/tg tests and the
/// request shape the user's app serves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Tokens in the prompt-processing test (llama-bench `-p`).
    pub prompt_tokens: u32,
    /// Tokens in the generation test (llama-bench `-n`).
    pub gen_tokens: u32,
    /// Measured runs of each test (llama-bench `-r`).
    pub repetitions: u32,
    /// Unmeasured runs before the measured ones.
    pub warmup: u32,
    /// Prompt length of the app's typical request (for time to first token).
    pub request_prompt_tokens: u32,
    /// Tokens the app generates per request (for end-to-end latency).
    pub request_max_tokens: u32,
}

impl Workload {
    /// The context size one trial needs: the KV cache is cleared between the
    /// tests, so the largest single test decides.
    pub fn context_needed(&self) -> u32 {
        self.prompt_tokens
            .max(self.gen_tokens)
            .max(self.request_prompt_tokens + self.request_max_tokens)
    }
}

/// One model variant of the quantization axis: the source file or a derived
/// quantization of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModelVariant {
    /// Display name from sweep.toml's `[[model]] name`.
    pub name: String,
    /// The quantization label: the source's own type, or the derived type.
    pub variant: String,
    /// The GGUF file the child loads.
    pub path: PathBuf,
    /// Stable identity of the weights (see `models::fingerprint`).
    pub identity: String,
}

/// Everything a child needs to measure one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialSpec {
    pub trial_id: String,
    pub model: ModelVariant,
    pub params: Params,
    pub workload: Workload,
    /// Seed of the random prompt tokens.
    pub seed: u64,
}

/// Quantize `source` into `output` with llama.cpp's quantizer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizeJob {
    pub source: PathBuf,
    pub output: PathBuf,
    /// A quantization name, e.g. `Q4_K_M` (see `models::quant_types`).
    pub quant_type: String,
    pub threads: u32,
}

/// A request to a child process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum ChildJob {
    /// Report the llama.cpp build, its devices and its default parameters.
    Probe,
    Measure(TrialSpec),
    Quantize(QuantizeJob),
    /// Measure the quality of one model variant on an evaluation text.
    Quality(QualityJob),
}

/// A child's one answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ChildReply {
    Probe(ProbeReport),
    Measured(TrialMetrics),
    Quantized(QuantizeReport),
    Quality(QualityMetrics),
    /// The child ran but could not do the job (e.g. a context it could not
    /// allocate). `reason` includes llama.cpp's own error lines.
    Failed {
        reason: String,
    },
}

/// A ggml backend device as llama.cpp reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub name: String,
    pub description: String,
    pub backend: String,
    /// `cpu`, `gpu`, `igpu`, `accel` or `unknown`.
    pub kind: String,
    pub memory_total_bytes: u64,
    pub memory_free_bytes: u64,
}

/// What this build of llama.cpp is and can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub llama_cpp_build: String,
    pub system_info: String,
    pub supports_gpu_offload: bool,
    pub supports_mmap: bool,
    pub backends: Vec<String>,
    pub devices: Vec<DeviceInfo>,
    /// llama.cpp's defaults for every parameter of the search space.
    pub defaults: EffectiveParams,
}

/// Measure one variant's quality the way llama.cpp's perplexity tool does:
/// the text is cut into chunks of `n_ctx` tokens, each decoded from an empty
/// cache (its first token replaced by BOS when the model adds one), and the
/// second half of each chunk is scored. With `save_base` the log-probabilities
/// are written there (this variant is the reference); with `base` they are
/// read from there and compared (KL divergence, top-1 agreement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityJob {
    pub model: ModelVariant,
    pub type_k: KvType,
    pub type_v: KvType,
    /// Tokens per chunk.
    pub n_ctx: u32,
    /// At most this many chunks (fewer when the text is shorter).
    pub max_chunks: u32,
    /// The evaluation text (UTF-8).
    pub text: PathBuf,
    pub n_threads: i32,
    /// Layers on a GPU; `None` leaves llama.cpp's default.
    pub n_gpu_layers: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_base: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
}

/// What a quality job measured. Uncertainties are standard errors, computed
/// as llama.cpp's perplexity tool computes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityMetrics {
    pub chunks: u32,
    pub tokens_scored: u64,
    pub ppl: f64,
    pub ppl_se: f64,
    /// Against the base, when one was given.
    pub kld_mean: Option<f64>,
    pub kld_se: Option<f64>,
    pub kld_p99: Option<f64>,
    pub kld_max: Option<f64>,
    /// Share of positions where this variant's most likely token is the
    /// base's, in percent.
    pub top1_pct: Option<f64>,
    /// Perplexity of the base on the same tokens, from the stored
    /// log-probabilities.
    pub base_ppl: Option<f64>,
    pub seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizeReport {
    pub output_bytes: u64,
    pub seconds: f64,
}

/// Facts about the loaded model, as llama.cpp sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFacts {
    /// llama.cpp's model description, e.g. `llama 135M Q4_1`.
    pub description: String,
    pub n_params: u64,
    pub size_bytes: u64,
    pub n_layer: u32,
}

/// Raw measurements of one trial. Rates in tokens per second, latencies in
/// milliseconds; one sample per repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialMetrics {
    pub model: ModelFacts,
    /// The context size llama.cpp really allocated.
    pub n_ctx_actual: u32,
    /// The batch sizes llama.cpp really used (it clamps them).
    pub n_batch_actual: u32,
    pub n_ubatch_actual: u32,
    pub load_ms: f64,
    pub pp_tps: Vec<f64>,
    pub tg_tps: Vec<f64>,
    pub ttft_ms: Vec<f64>,
    pub e2e_ms: Vec<f64>,
    /// Layers llama.cpp reported offloaded to a GPU (0 when it has no GPU
    /// backend), out of `layers_total` (repeating layers + output layer).
    pub layers_offloaded: u32,
    pub layers_total: u32,
    /// What `flash_attn = auto` resolved to, when llama.cpp said.
    pub flash_attn_resolved: Option<bool>,
    /// Memory taken on GPU devices by model and context (free before load
    /// minus free after context creation), in bytes; `None` without a GPU.
    pub device_memory_used_bytes: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> EffectiveParams {
        EffectiveParams {
            n_gpu_layers: -1,
            n_ctx: 512,
            n_batch: 2048,
            n_ubatch: 512,
            n_threads: 4,
            n_threads_batch: 4,
            flash_attn: FlashAttn::Auto,
            type_k: KvType::F16,
            type_v: KvType::F16,
            use_mmap: true,
            offload_kqv: true,
        }
    }

    #[test]
    fn unset_params_take_defaults_and_are_named() {
        let params = Params {
            n_batch: Some(256),
            ..Params::default()
        };
        let (eff, defaulted) = params.resolve(&defaults());
        assert_eq!(eff.n_batch, 256);
        assert_eq!(eff.n_ctx, 512);
        assert_eq!(
            eff.n_ubatch, 256,
            "the default n_ubatch is clamped to n_batch"
        );
        assert!(!defaulted.contains(&"n_batch"));
        assert!(defaulted.contains(&"n_ctx"));
        assert_eq!(defaulted.len(), 10);
    }

    #[test]
    fn batch_sizes_are_clamped_like_llama_cpp_does() {
        let params = Params {
            n_ctx: Some(256),
            n_batch: Some(1024),
            ..Params::default()
        };
        let (eff, _) = params.resolve(&defaults());
        assert_eq!((eff.n_batch, eff.n_ubatch), (256, 256));
    }

    #[test]
    fn threads_batch_follows_threads() {
        let params = Params {
            n_threads: Some(2),
            ..Params::default()
        };
        let (eff, defaulted) = params.resolve(&defaults());
        assert_eq!((eff.n_threads, eff.n_threads_batch), (2, 2));
        assert!(!defaulted.contains(&"n_threads_batch"));
    }

    #[test]
    fn unset_params_are_omitted_from_json() {
        let json = serde_json::to_string(&Params {
            n_ctx: Some(2048),
            ..Params::default()
        })
        .unwrap();
        assert_eq!(json, r#"{"n_ctx":2048}"#);
    }

    #[test]
    fn jobs_round_trip_as_tagged_json() {
        let job = ChildJob::Quantize(QuantizeJob {
            source: "a.gguf".into(),
            output: "b.gguf".into(),
            quant_type: "Q8_0".into(),
            threads: 2,
        });
        let json = serde_json::to_string(&job).unwrap();
        assert!(json.starts_with(r#"{"job":"quantize""#), "{json}");
        assert_eq!(serde_json::from_str::<ChildJob>(&json).unwrap(), job);
        let probe: ChildJob = serde_json::from_str(r#"{"job":"probe"}"#).unwrap();
        assert_eq!(probe, ChildJob::Probe);
    }

    #[test]
    fn kv_type_names_round_trip() {
        for t in KvType::ALL {
            assert_eq!(KvType::from_name(t.name()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
        assert_eq!(KvType::from_name("Q8_0"), Some(KvType::Q8_0));
        assert_eq!(KvType::from_name("q7"), None);
    }
}
