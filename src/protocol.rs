//! The contract between the parent (`llama-sweep run`) and its child processes
//! (`llama-sweep trial`).
//!
//! Every piece of llama.cpp work — probing the build, quantizing a model,
//! measuring a trial — happens in a child: the parent writes one [`ChildJob`]
//! as JSON on the child's stdin, the child answers with exactly one
//! [`ChildReply`] JSON line on stdout (a resident child, one per command it
//! reads after the job), and llama.cpp's log goes to stderr. These
//! types are plain data so that both sides, the store and the tests share them.

use crate::early_drop::TestSchedule;
use crate::knobs::{EffectiveParams, KvType, Params};
use crate::objective::Metric;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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
    /// Depths beyond 0 at which pp and tg are measured again (llama-bench
    /// `-d`): the KV cache first holds that many tokens. Sorted, no 0;
    /// empty for the tests on an empty cache only (and then absent from the
    /// JSON, so the trial ids of sweeps without depths do not change).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub n_depth: Vec<u32>,
    /// Tokens of earlier conversation already in the cache when the app's
    /// request arrives (llama-server's prompt cache keeps them): time to
    /// first token is then the new part only, at that depth.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub request_history_tokens: u32,
    /// What the app's requests say (trials through llama-server); random
    /// tokens by default, and then absent from the JSON, so the trial ids
    /// of sweeps without text do not change.
    #[serde(default, skip_serializing_if = "Prompts::is_random")]
    pub prompts: Prompts,
}

/// The text of the app's requests. Speculative decoding pays off only when
/// its guesses come true, which depends on what is generated, so a sweep of
/// it needs real text: every prompt is then a different passage of it, cut
/// to `request_prompt_tokens` by the server's own tokenizer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompts {
    /// Random token ids, uniform over the vocabulary, as llama-bench draws
    /// them.
    #[default]
    Random,
    /// The public-domain text shipped with llama-sweep (Moby-Dick, chapters
    /// 1-15: data/eval/README.md).
    Shipped,
    /// A UTF-8 text file of the app's own.
    File(PathBuf),
}

impl Prompts {
    pub fn is_random(&self) -> bool {
        *self == Prompts::Random
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Workload {
    /// The context one sequence needs: the KV cache is cleared between the
    /// tests, so the largest single test, on top of its depth, decides.
    pub fn context_needed(&self) -> u32 {
        let deepest = self.n_depth.iter().copied().max().unwrap_or(0);
        (deepest + self.prompt_tokens.max(self.gen_tokens))
            .max(self.request_history_tokens + self.request_prompt_tokens + self.request_max_tokens)
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

/// How the app samples each generated token: llama-cpp-python's sampler
/// chain with its defaults and the temperature config.yaml exports. The
/// end-to-end request is measured with it, since sampling is part of what
/// the app waits for. It is not part of the trial id: the chain's cost does
/// not depend on these values, only on whether sampling is greedy.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    pub temperature: f32,
    pub top_k: i32,
    pub top_p: f32,
    pub min_p: f32,
    pub repeat_penalty: f32,
    /// Tokens the repeat penalty looks back over.
    pub repeat_last_n: i32,
}

impl Sampling {
    /// llama-cpp-python's `create_completion` defaults, at `temperature`.
    pub fn llama_cpp_python(temperature: f64) -> Sampling {
        Sampling {
            temperature: temperature as f32,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
        }
    }
}

impl Default for Sampling {
    /// At config.yaml's default temperature.
    fn default() -> Self {
        Sampling::llama_cpp_python(0.7)
    }
}

/// The words every job that read NaN or infinite logits fails with.
pub const GARBAGE: &str = "NaN or infinite logits";

/// Which runtime measured a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// llama.cpp as llama-sweep links it: the sweep's own figures.
    Sweep,
    /// llama-cpp-python's `Llama(**llm)` in the app's interpreter.
    Python,
    /// A llama-server binary started with the exported arguments.
    Server,
}

impl RuntimeKind {
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Sweep => "llama-sweep",
            RuntimeKind::Python => "llama-cpp-python",
            RuntimeKind::Server => "llama-server",
        }
    }
}

impl std::fmt::Display for RuntimeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
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
    #[serde(default)]
    pub sampling: Sampling,
    /// Settings the backend self-test forced on this trial's model variant
    /// (repack off where llama.cpp's repacked kernels crash), applied on top
    /// of `params`. Not part of the trial id: the row records them.
    #[serde(default, skip_serializing_if = "Params::is_empty")]
    pub forced: Params,
    /// The order of its tests and when to stop repeating them (early drops).
    /// Not part of the trial id.
    #[serde(default, skip_serializing_if = "TestSchedule::is_default")]
    pub schedule: TestSchedule,
    /// Measured through a llama-server instead of llama-sweep's own
    /// llama.cpp (`[sweep] runtime = "server"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerTrial>,
    /// Measured in the app's own llama-cpp-python instead (`[sweep]
    /// runtime = "python"`): the interpreter that imports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python: Option<PathBuf>,
}

impl TrialSpec {
    /// The runtime that measures it, when it is not llama-sweep's own
    /// llama.cpp: `llama-server` or `llama-cpp-python` (part of the trial
    /// id and of its row).
    pub fn runtime(&self) -> Option<&'static str> {
        if self.server.is_some() {
            Some(RuntimeKind::Server.name())
        } else if self.python.is_some() {
            Some(RuntimeKind::Python.name())
        } else {
            None
        }
    }
}

/// How a trial runs through llama-server: the binary. The child starts it
/// with the trial's server-args export (`export::llama_args::trial_args`
/// of its parameters resolved against llama.cpp's defaults, as its row
/// will be): what is measured is what is exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerTrial {
    pub binary: PathBuf,
    /// The latency bounds of `[objective]` one request must meet to count
    /// in the goodput. Not part of the trial id.
    #[serde(default)]
    pub bounds: RequestBounds,
}

/// The latency bounds of `[objective]` a single request is held to, for
/// goodput (requests per second that meet every one): its time to first
/// token (`ttft_ms_max`, `ttft_ms_p95_max`), its end to end (`e2e_s_max`)
/// and the 95th percentile of its gaps between tokens (`itl_ms_p95_max`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestBounds {
    pub ttft_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
    pub itl_ms: Option<f64>,
}

impl RequestBounds {
    pub fn of(objective: &crate::objective::Objective) -> RequestBounds {
        use crate::objective::{Bound, Metric};
        let mut bounds = RequestBounds::default();
        for c in &objective.constraints {
            let Bound::AtMost(limit) = c.bound else {
                continue;
            };
            let slot = match c.metric {
                Metric::TtftMs | Metric::TtftMsP95 => &mut bounds.ttft_ms,
                Metric::E2eMs => &mut bounds.e2e_ms,
                Metric::ItlMsP95 => &mut bounds.itl_ms,
                _ => continue,
            };
            *slot = Some(slot.map_or(limit, |l: f64| l.min(limit)));
        }
        bounds
    }
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

/// What the parent writes on a child's stdin: one job and, only when
/// `llama-sweep run --test-fault` asked for it, a fault to inject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildRequest {
    #[serde(flatten)]
    pub job: ChildJob,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fault: Option<TestFault>,
    /// A folder of the child's own for what it keeps on disk while it
    /// measures (the saved KV caches of the depth tests), removed by the
    /// parent when the child ends, however it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scratch: Option<std::path::PathBuf>,
}

/// A job for a child process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum ChildJob {
    /// Report the llama.cpp build, its devices and its default parameters.
    Probe,
    Measure(TrialSpec),
    Quantize(QuantizeJob),
    /// Measure the quality of one model variant on an evaluation text.
    Quality(QualityJob),
    /// Check that llama.cpp's kernels survive and return numbers.
    SelfTest(SelfTestJob),
    /// Ask llama.cpp's `--fit` where it would put a model's weights.
    Fit(FitJob),
    /// Count the tokens of texts with a model's own tokenizer.
    Tokenize(TokenizeJob),
    /// Load a trial once and measure one block of its objective's test per
    /// command (a confirmation subject, kept resident).
    Resident(ResidentJob),
}

/// A resident subject: the trial to load, and the metric whose test each
/// block runs once. After loading and warming up the child replies
/// [`ChildReply::Ready`]; then each line [`RESIDENT_MEASURE`] on its stdin
/// is answered by one [`ChildReply::Block`] line, and [`RESIDENT_STOP`] (or
/// the end of stdin) ends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResidentJob {
    pub spec: TrialSpec,
    pub metric: Metric,
}

/// The command that asks a resident child for one block.
pub const RESIDENT_MEASURE: &str = "measure";
/// The command that ends a resident child.
pub const RESIDENT_STOP: &str = "stop";

/// One block of a resident subject: the figures of one run of its
/// objective's test (a round of the app's requests, or one pp or tg run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockFigures {
    /// Each figure of the run, as `crate::request` and llama-bench define it.
    pub figures: Vec<(Metric, f64)>,
    /// The figures that also have a robust estimate within the block (the
    /// request's speed from the median time between its tokens, which one
    /// preempted token moves far less than the mean).
    #[serde(default)]
    pub robust: Vec<(Metric, f64)>,
}

impl BlockFigures {
    /// The block's value of `metric`: its robust estimate where it has one.
    pub fn value(&self, metric: Metric) -> Option<f64> {
        let find = |list: &[(Metric, f64)]| list.iter().find(|(m, _)| *m == metric).map(|p| p.1);
        find(&self.robust).or_else(|| find(&self.figures))
    }

    /// The mean-based figure of `metric`.
    pub fn mean_of(&self, metric: Metric) -> Option<f64> {
        self.figures.iter().find(|(m, _)| *m == metric).map(|p| p.1)
    }
}

/// Texts to count with the tokenizer of the model at `model` (its
/// vocabulary only is loaded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizeJob {
    pub model: PathBuf,
    pub texts: Vec<String>,
}

impl ChildJob {
    /// What the job is, for messages: `trial 3f2a9c1b0d4e`, `the self-test
    /// of smollm2 Q4_1`.
    pub fn describe(&self) -> String {
        match self {
            ChildJob::Probe => "the probe of llama.cpp".into(),
            ChildJob::Measure(spec) => format!("trial {}", spec.trial_id),
            ChildJob::Quantize(q) => format!("the {} quantization", q.quant_type),
            ChildJob::Quality(q) => format!("the quality of {} {}", q.model.name, q.model.variant),
            ChildJob::SelfTest(t) => {
                format!("the self-test of {} {}", t.model.name, t.model.variant)
            }
            ChildJob::Fit(f) => format!("llama.cpp's fit of {} {}", f.model.name, f.model.variant),
            ChildJob::Tokenize(t) => format!("the tokenizer of {}", t.model.display()),
            ChildJob::Resident(r) => format!("resident trial {}", r.spec.trial_id),
        }
    }
}

/// A fault a child injects on purpose, for testing how the parent handles
/// it. Only `llama-sweep run --test-fault` (a flag for tests, hidden from
/// `--help`) sends one; the environment cannot switch it on, and every row
/// measured under one is marked.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum TestFault {
    /// Measuring children abort.
    Crash,
    /// Measuring children die of SIGSEGV.
    Segfault,
    /// Measuring children sleep forever.
    Hang,
    /// Measuring children print an unreadable result.
    Garbage,
    /// Measuring children exit 1 without a result.
    Exit,
    /// Measuring children answer at once with made-up figures.
    Instant,
    /// The same after sleeping this many seconds.
    Sleep(f64),
    /// Any child that loaded a model with repacking on (llama.cpp's extra
    /// buffer types) dies of SIGSEGV in a kernel-like function before its
    /// first decode: what llama.cpp's AMX kernels do on some Xeons.
    CrashWhenRepacked,
    /// Any child that loaded a model with repacking on reads NaN logits.
    NanWhenRepacked,
}

impl TestFault {
    pub const NAMES: [&'static str; 9] = [
        "crash",
        "segfault",
        "hang",
        "garbage",
        "exit",
        "instant",
        "sleep:<seconds>",
        "crash-when-repacked",
        "nan-when-repacked",
    ];

    /// Whether it is injected into measuring children only, at their start
    /// (the others act wherever a model is loaded with repacking on).
    pub fn at_measure_start(self) -> bool {
        !matches!(
            self,
            TestFault::CrashWhenRepacked | TestFault::NanWhenRepacked
        )
    }
}

impl std::str::FromStr for TestFault {
    type Err = String;
    fn from_str(s: &str) -> Result<TestFault, String> {
        Ok(match s {
            "crash" => TestFault::Crash,
            "segfault" => TestFault::Segfault,
            "hang" => TestFault::Hang,
            "garbage" => TestFault::Garbage,
            "exit" => TestFault::Exit,
            "instant" => TestFault::Instant,
            "crash-when-repacked" => TestFault::CrashWhenRepacked,
            "nan-when-repacked" => TestFault::NanWhenRepacked,
            other => match other.strip_prefix("sleep:").and_then(|v| v.parse().ok()) {
                Some(seconds) => TestFault::Sleep(seconds),
                None => {
                    return Err(format!(
                        "unknown test fault {other:?}; one of {}",
                        Self::NAMES.join(", ")
                    ));
                }
            },
        })
    }
}

impl std::fmt::Display for TestFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TestFault::Sleep(s) => write!(f, "sleep:{s}"),
            other => {
                let i = [
                    TestFault::Crash,
                    TestFault::Segfault,
                    TestFault::Hang,
                    TestFault::Garbage,
                    TestFault::Exit,
                    TestFault::Instant,
                    TestFault::Sleep(0.0),
                    TestFault::CrashWhenRepacked,
                    TestFault::NanWhenRepacked,
                ]
                .iter()
                .position(|x| x == other)
                .unwrap_or(0);
                f.write_str(Self::NAMES[i])
            }
        }
    }
}

impl From<TestFault> for String {
    fn from(f: TestFault) -> String {
        f.to_string()
    }
}

impl TryFrom<String> for TestFault {
    type Error = String;
    fn try_from(s: String) -> Result<TestFault, String> {
        s.parse()
    }
}

/// Load a model variant with the sweep's backend settings and decode a short
/// prompt in one batch and a few single tokens: the kernels the trials use,
/// for this quantization, survive and return finite logits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfTestJob {
    pub model: ModelVariant,
    pub params: Params,
    pub prompt_tokens: u32,
    pub gen_tokens: u32,
    pub seed: u64,
}

/// llama.cpp's `--fit` (common_fit_params) for a model with `params` (what
/// llama-server would start from), against the devices' free memory now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitJob {
    pub model: ModelVariant,
    pub params: Params,
}

/// What `--fit` chose: the settings it changed, in the table's knobs
/// (n_gpu_layers, tensor_split, override_tensor, n_ctx), and whether it
/// found a placement that fits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// "success", "failure" (nothing fits) or "error".
    pub status: String,
    pub changed: Params,
    /// The devices fit placed weights on, with their free memory then.
    pub devices: Vec<DeviceInfo>,
}

/// What a self-test measured: tiny figures, not a benchmark.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SelfTestReport {
    pub pp_tps: f64,
    pub tg_tps: f64,
    /// The buffers llama.cpp put the weights in, with their sizes.
    pub buffers: Vec<BufferUse>,
    pub seconds: f64,
}

/// A buffer of weights, from llama.cpp's load log (`load_tensors: AMX model
/// buffer size = 51.31 MiB`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BufferUse {
    pub name: String,
    pub mib: f64,
}

/// A child's one answer (a resident child's: one per command).
// One reply per child or block, parsed and moved once: boxing the
// measurements would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum ChildReply {
    Probe(ProbeReport),
    Measured(TrialMetrics),
    Quantized(QuantizeReport),
    Quality(QualityMetrics),
    SelfTested(SelfTestReport),
    Fitted(FitReport),
    /// Each text's token count, in the order given.
    Tokenized {
        counts: Vec<u32>,
    },
    /// A resident child loaded and warmed up its trial, in `load_ms`;
    /// `measurers`: the processes it runs that measure beside it (the app's
    /// interpreter), whose CPU time is not another process's.
    Ready {
        load_ms: f64,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        measurers: Vec<u32>,
    },
    /// One block of a resident child.
    Block(BlockFigures),
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
    /// The CPU's extra buffer types (AMX, CPU_REPACK, ...): where llama.cpp
    /// repacks weights with `repack` on.
    #[serde(default)]
    pub cpu_extra_buffer_types: Vec<String>,
    /// llama.cpp's defaults for every parameter of the search space.
    pub defaults: EffectiveParams,
}

impl ProbeReport {
    /// The devices llama.cpp can offload to: every one but the CPU.
    pub fn accelerators(&self) -> impl Iterator<Item = &DeviceInfo> {
        self.devices.iter().filter(|d| d.kind != "cpu")
    }
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
    /// Settings the backend self-test forced for this variant (e.g. repack
    /// off), applied on top of the job's own.
    #[serde(default, skip_serializing_if = "Params::is_empty")]
    pub forced: Params,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelFacts {
    /// llama.cpp's model description, e.g. `llama 135M Q4_1`.
    pub description: String,
    pub n_params: u64,
    pub size_bytes: u64,
    pub n_layer: u32,
}

/// Raw measurements of one trial. Rates in tokens per second, latencies in
/// milliseconds; one sample per repetition, but `ttft_ms` (one per request:
/// the n_parallel requests of each repetition, repetition by repetition;
/// see `store::row::per_repetition_means`) and `itl_ms` (one per gap
/// between two tokens of a request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// Each repetition's mean end to end of its requests (`crate::request`).
    pub e2e_ms: Vec<f64>,
    /// Each repetition's request generation speed: 1000 / the mean time
    /// per output token after the first of its requests (`crate::request`).
    #[serde(default)]
    pub request_tps: Vec<f64>,
    /// Each repetition's output throughput: all its requests' tokens over
    /// the time to the last of them.
    #[serde(default)]
    pub output_tps: Vec<f64>,
    /// Layers llama.cpp reported offloaded to a GPU (0 when it has no GPU
    /// backend), out of `layers_total` (repeating layers + output layer).
    pub layers_offloaded: u32,
    pub layers_total: u32,
    /// What `flash_attn = auto` resolved to, when llama.cpp said.
    pub flash_attn_resolved: Option<bool>,
    /// Memory taken on GPU devices by model and context (free before load
    /// minus free after context creation), in bytes; `None` without a GPU.
    pub device_memory_used_bytes: Option<u64>,
    /// Where the weights went: each buffer type llama.cpp loaded them
    /// into, with its size (from its load log).
    #[serde(default)]
    pub weights: Vec<BufferUse>,
    /// How many tensors the tensor overrides (override_tensor, n_cpu_moe)
    /// placed in each buffer type; the trial's log names every one.
    #[serde(default)]
    pub overridden: Vec<(String, u32)>,
    /// pp and tg on a filled cache, one entry per depth of the workload's
    /// `n_depth` (the fields above are depth 0). With n_parallel sequences,
    /// pp_tps counts all of their prompt tokens, tg_tps one sequence's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub at_depth: Vec<DepthSamples>,
    /// The gap between one generated token and the next of the app's
    /// request, ms: one sample per decode step of every repetition.
    #[serde(default)]
    pub itl_ms: Vec<f64>,
    /// Why the trial stopped before its last run (`early_drop`): the
    /// samples above are the runs it made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<String>,
    /// What a llama-server said of the requests, beside the client's clock
    /// above (a trial run through it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<Box<ServerFigures>>,
    /// Runs other processes disturbed (`machine_load`).
    #[serde(default)]
    pub busy: BusyRecord,
}

/// The runs of a trial that other processes disturbed: measured again
/// (`discarded`), or kept because the machine never got quiet (`kept`:
/// then the trial's figures decide nothing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BusyRecord {
    pub discarded: u32,
    pub kept: u32,
    /// The most of a core other processes used during one of its runs.
    pub other_cores_max: f64,
}

/// A llama-server's own figures of a trial's measured requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerFigures {
    /// The server's generation speed of each request (its `timings`).
    pub predicted_tps: Vec<f64>,
    /// Tokens generated by all clients per second, one per round.
    pub aggregate_tps: Vec<f64>,
    /// Tokens the draft proposed and the target accepted, over all measured
    /// requests (0 and 0 without speculative decoding).
    pub drafted: u64,
    pub accepted: u64,
    /// Requests per second that met every latency bound of `[objective]`
    /// (all of them without bounds), one per round.
    #[serde(default)]
    pub goodput_rps: Vec<f64>,
}

impl ServerFigures {
    /// Accepted over drafted; `None` when nothing was drafted.
    pub fn acceptance(&self) -> Option<f64> {
        (self.drafted > 0).then(|| self.accepted as f64 / self.drafted as f64)
    }
}

/// pp and tg measured with the KV cache holding `depth` tokens in every
/// sequence; one sample per repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthSamples {
    pub depth: u32,
    pub pp_tps: Vec<f64>,
    pub tg_tps: Vec<f64>,
}

/// Buffers as one line: `CUDA0 10.2 GiB, CPU_Mapped 3.1 GiB`.
pub fn describe_buffers(buffers: &[BufferUse]) -> String {
    buffers
        .iter()
        .map(|b| {
            if b.mib >= 1024.0 {
                format!("{} {:.2} GiB", b.name, b.mib / 1024.0)
            } else {
                format!("{} {:.2} MiB", b.name, b.mib)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_held_to_the_tightest_latency_bounds_of_the_objective() {
        use crate::objective::{Bound, Constraint, Metric, Objective};
        let c = |metric, bound| Constraint { metric, bound };
        let objective = Objective {
            constraints: vec![
                c(Metric::TtftMs, Bound::AtMost(500.0)),
                c(Metric::TtftMsP95, Bound::AtMost(300.0)),
                c(Metric::E2eMs, Bound::AtMost(5000.0)),
                c(Metric::TgTps, Bound::AtLeast(10.0)),
            ],
            ..Objective::default()
        };
        let b = RequestBounds::of(&objective);
        assert_eq!(
            (b.ttft_ms, b.e2e_ms, b.itl_ms),
            (Some(300.0), Some(5000.0), None)
        );
        assert_eq!(
            RequestBounds::of(&Objective::default()),
            RequestBounds::default()
        );
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

    /// Every reply a child writes is one JSON line the parent reads back
    /// (an internally tagged enum cannot hold a bare list: a variant that
    /// did, once, killed its child instead of answering).
    #[test]
    fn every_kind_of_reply_round_trips_as_one_json_line() {
        let replies = [
            ChildReply::Tokenized {
                counts: vec![3, 141],
            },
            ChildReply::Ready {
                load_ms: 12.5,
                measurers: vec![42],
            },
            ChildReply::Block(BlockFigures {
                figures: vec![(Metric::RequestTps, 90.5), (Metric::TtftMs, 700.0)],
                robust: vec![(Metric::RequestTps, 92.0)],
            }),
            ChildReply::Failed {
                reason: "no".into(),
            },
        ];
        for reply in replies {
            let json = serde_json::to_string(&reply).unwrap();
            assert!(!json.contains('\n'), "{json}");
            assert_eq!(serde_json::from_str::<ChildReply>(&json).unwrap(), reply);
        }
    }

    #[test]
    fn a_request_is_its_job_with_a_fault_only_when_asked_for() {
        let plain = ChildRequest {
            job: ChildJob::Probe,
            test_fault: None,
            scratch: None,
        };
        assert_eq!(serde_json::to_string(&plain).unwrap(), r#"{"job":"probe"}"#);
        let faulty = ChildRequest {
            job: ChildJob::Probe,
            test_fault: Some(TestFault::Sleep(1.5)),
            scratch: None,
        };
        let json = serde_json::to_string(&faulty).unwrap();
        assert_eq!(json, r#"{"job":"probe","test_fault":"sleep:1.5"}"#);
        assert_eq!(serde_json::from_str::<ChildRequest>(&json).unwrap(), faulty);
        for name in [
            "crash",
            "instant",
            "crash-when-repacked",
            "nan-when-repacked",
        ] {
            let f: TestFault = name.parse().unwrap();
            assert_eq!(f.to_string(), name);
        }
        assert!(
            "crash-always"
                .parse::<TestFault>()
                .unwrap_err()
                .contains("crash-when-repacked")
        );
    }
}
