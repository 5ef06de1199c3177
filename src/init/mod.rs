//! `llama-sweep init`: a first sweep for one model on one machine, with the
//! reason for each axis. The choice is pure (a model's shape, the
//! machine's inventory and the user's wishes in, a [`Proposal`] out), so it
//! is tested on inventories no test machine has; `cmd::init` gathers the
//! facts and writes the file ([`render`]).
//!
//! What it knows is what `doctor` knows: the GPUs and their free memory,
//! the model's layers, experts and size, and where each placement puts the
//! weights ([`placing`]). A CPU-only machine gets threads and batch sizes; a
//! GPU the model overflows gets `n_gpu_layers` around the point where it
//! stops fitting, an MoE model `n_cpu_moe` around the layers whose experts
//! must stay in host memory; long contexts get depths, several users
//! `n_parallel`, an F16/BF16/Q8_0 file the quantizations to derive; the
//! strategy and budget fit the time given ([`estimate`]).

pub mod estimate;
pub mod placing;
pub mod prompts;
pub mod render;
mod shape;

pub use shape::ModelShape;

use crate::knobs::Value;
use crate::models::quant_types::QuantType;
use std::time::Duration;

/// What the machine offers, as `doctor` finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hardware {
    pub logical_cores: usize,
    pub physical_cores: usize,
    /// Host memory free now, bytes.
    pub ram_available: u64,
    /// The GPUs this llama.cpp build can use (none: CPU only).
    pub gpus: Vec<Gpu>,
    /// Host memory bandwidth, 10⁹ bytes/s.
    pub host_gb_per_s: f64,
}

impl Hardware {
    /// This machine, with the devices `probe` (llama.cpp's own view) found
    /// and its host memory bandwidth measured now (a second or two).
    pub fn here(probe: &crate::protocol::ProbeReport) -> Hardware {
        let m = crate::machine::Machine::detect();
        Hardware {
            logical_cores: m.logical_cores,
            physical_cores: m.physical_cores.unwrap_or(m.logical_cores),
            ram_available: crate::machine::memory_available()
                .or(m.memory_total_bytes)
                .unwrap_or(0),
            gpus: probe
                .accelerators()
                .map(|d| Gpu {
                    name: d.name.clone(),
                    free_bytes: d.memory_free_bytes,
                })
                .collect(),
            host_gb_per_s: crate::bandwidth::measure_host().gb_per_s,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Gpu {
    pub name: String,
    pub free_bytes: u64,
}

/// What the user is after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Tokens per second while the app's request is answered, after its
    /// prompt (`request_tps`).
    Generation,
    /// Time to the first token of the app's request (`ttft_ms`).
    FirstToken,
    /// Tokens per second of all users' requests together (`output_tps`).
    Throughput,
}

impl Goal {
    pub const NAMES: [&'static str; 3] = ["request_tps", "ttft_ms", "output_tps"];

    pub fn from_name(name: &str) -> Option<Goal> {
        match name {
            "request_tps" => Some(Goal::Generation),
            "ttft_ms" => Some(Goal::FirstToken),
            "output_tps" => Some(Goal::Throughput),
            _ => None,
        }
    }

    pub fn metric(self) -> &'static str {
        match self {
            Goal::Generation => Goal::NAMES[0],
            Goal::FirstToken => Goal::NAMES[1],
            Goal::Throughput => Goal::NAMES[2],
        }
    }
}

/// The user's wishes, from `init`'s flags.
#[derive(Debug, Clone, PartialEq)]
pub struct Wishes {
    pub goal: Goal,
    /// How long the sweep may take.
    pub budget: Duration,
    /// The app's Python (its llama-cpp-python), to verify the winner in.
    pub app_python: Option<String>,
    /// What that interpreter's llama-cpp-python is, when it imports
    /// llama_cpp (`RuntimeInfo::describe`): the sweep can run in it.
    pub app_python_runs: Option<String>,
    /// Users served at once.
    pub users: u32,
    /// The longest conversation the app holds, tokens (`None`: 4096, or
    /// the model's trained context if smaller).
    pub context: Option<u32>,
    /// The app's prompt, tokens, and where that figure came from (`None`:
    /// a guess of 512).
    pub prompt: Option<(u32, String)>,
    /// The app's answer, tokens (`None`: a guess of 256).
    pub answer_tokens: Option<u32>,
}

/// One `key = value` of the sweep file and why it is there.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub key: &'static str,
    /// A TOML value, written as is.
    pub value: String,
    pub why: String,
}

impl Setting {
    fn new(key: &'static str, value: impl Into<String>, why: impl Into<String>) -> Setting {
        Setting {
            key,
            value: value.into(),
            why: why.into(),
        }
    }
}

/// A table of the sweep file.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// `sweep`, `model` (written `[[model]]`), `space` ...
    pub name: &'static str,
    pub settings: Vec<Setting>,
}

/// The sweep `init` proposes.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub tables: Vec<Table>,
    /// What the machine and model come to, one sentence each, for the
    /// file's head and the terminal.
    pub findings: Vec<String>,
    /// Trials of the space (before the references and the confirmation).
    pub trials: u64,
    pub estimate: estimate::SweepTime,
}

impl Proposal {
    /// The value of `table.key`, as written.
    pub fn value(&self, table: &str, key: &str) -> Option<&str> {
        self.tables
            .iter()
            .find(|t| t.name == table)?
            .settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.value.as_str())
    }
}

/// The context per user when the user names none.
const DEFAULT_CONTEXT: u32 = 4096;
/// Tokens of the app's request: its prompt and its answer.
const REQUEST_PROMPT: u32 = 512;
const REQUEST_ANSWER: u32 = 256;
/// The pp and tg tests.
const PROMPT_TOKENS: u32 = 512;
const GEN_TOKENS: u32 = 128;
const REPETITIONS: u32 = 3;
/// Fewer trials than a Bayesian search's space-filling start.
const MEANINGFUL_SEARCH: u64 = 6;

/// The sweep for `model` on `hw` that serves `wishes`.
pub fn propose(model: &ModelShape, hw: &Hardware, wishes: &Wishes) -> Proposal {
    let mut findings = Vec::new();
    let context = context_per_user(model, wishes);
    if wishes.context.is_some_and(|asked| asked > context) {
        findings.push(format!(
            "the model was trained for a context of {} tokens: the sweep holds {context} per user, \
             not the {} asked for",
            model.n_ctx_train,
            wishes.context.unwrap_or(0)
        ));
    }
    let users = wishes.users.max(1);
    let n_parallel = parallel_values(users);
    let n_ctx = round_up(context * users, 256);
    let depth = (context >= 8192).then(|| round_down(context / 2, 1024));
    let kv_bytes = model.kv_bytes_per_token * u64::from(n_ctx);
    let place = placing::place(model, hw, kv_bytes);
    findings.push(place.finding.clone());
    if model.weight_bytes() > hw.ram_available && place.cpu_bytes > 0 {
        findings.push(format!(
            "the model's {} is more than the {} of host memory free: its pages will be \
             read from disk as they are needed, and the sweep will be slow",
            gib(model.weight_bytes()),
            gib(hw.ram_available)
        ));
    }
    let mut space = place.settings.clone();
    space.push(Setting::new(
        "n_ctx",
        n_ctx.to_string(),
        if users > 1 {
            format!("{context} tokens for each of {users} users")
        } else {
            format!("the app's longest conversation, {context} tokens")
        },
    ));
    space.extend(threads(hw, &place));
    space.extend(batches(wishes.goal, &place, users));
    space.push(Setting::new(
        "flash_attn",
        "[\"on\", \"off\"]",
        "flash attention: often the largest single difference on a GPU, and at depth on a CPU",
    ));
    if context >= 32768 || place.tight {
        space.push(Setting::new(
            "type_k",
            "[\"f16\", \"q8_0\"]",
            "a q8_0 KV cache halves its memory (a long context, or a GPU that is nearly full)",
        ));
        space.push(Setting::new(
            "type_v",
            "[\"f16\", \"q8_0\"]",
            "as type_k; a quantized V cache needs flash attention (the grid leaves out the trials without it)",
        ));
    }
    if n_parallel.len() > 1 {
        space.push(Setting::new(
            "n_parallel",
            list(&n_parallel),
            format!(
                "{users} users at once: how throughput and each user's speed change with the \
                 number of sequences decoded together (each gets n_ctx / n_parallel)"
            ),
        ));
    }
    let quantize = quantizations(model.file_type);
    let mut model_table = vec![
        Setting::new("name", quoted(&model.name), "display name of the model"),
        Setting::new("path", quoted(&model.path), "the GGUF file"),
    ];
    if let Some((types, why)) = &quantize {
        model_table.push(Setting::new("quantize", list_quoted(types), why.clone()));
        if matches!(model.file_type, Some("F32" | "F16" | "BF16")) {
            model_table.push(Setting::new(
                "include_source",
                "false",
                "the full-precision file stays the quality reference; its own speed is rarely \
                 what an app runs",
            ));
        }
    }
    let variants = match &quantize {
        Some((types, _)) => {
            types.len() as u64 + u64::from(!matches!(model.file_type, Some("F32" | "F16" | "BF16")))
        }
        None => 1,
    };
    let request = request_shape(wishes, context, &mut findings);
    let workload = workload(&request, depth);
    let trials = variants * space_size(&space);
    let sizes = estimate::Sizes {
        prompt_tokens: PROMPT_TOKENS,
        gen_tokens: GEN_TOKENS,
        request_prompt_tokens: request.prompt_tokens,
        request_max_tokens: request.answer_tokens,
        warmup: 1,
        repetitions: REPETITIONS,
        depth: depth.unwrap_or(0),
        users,
        // The sweep init writes: the default confirmation, against
        // llama.cpp's defaults.
        confirm: estimate::ConfirmShape::of(&crate::config::ConfirmSettings::default(), 1),
    };
    let extras = estimate::Extras {
        variants,
        derived: quantize.is_some(),
        quality: quantize.is_some(),
    };
    let time = estimate::sweep_time(model, hw, &place, &sizes, trials, extras);
    let mut sweep = vec![Setting::new(
        "name",
        quoted(&sweep_name(&model.name)),
        "outputs go to reports/<name>/",
    )];
    let hours = wishes.budget.as_secs_f64() / 3600.0;
    if time.total_s <= wishes.budget.as_secs_f64() {
        sweep.push(Setting::new(
            "strategy",
            "\"grid\"",
            format!(
                "every one of the {trials} trials: about {} by a first guess, within the {} \
                 given",
                estimate::human(time.total_s),
                estimate::human(wishes.budget.as_secs_f64())
            ),
        ));
    } else {
        let fit_in = ((wishes.budget.as_secs_f64() - time.fixed_s).max(0.0) / time.per_trial_s)
            .floor() as u64;
        if fit_in < MEANINGFUL_SEARCH {
            let enough = time.fixed_s + MEANINGFUL_SEARCH as f64 * 3.0 * time.per_trial_s;
            findings.push(format!(
                "by a first guess the {} given leave room for only {fit_in} trials beside the \
                 quality, reference and confirmation runs: give it about {} (--budget), or \
                 narrow the space",
                estimate::human(wishes.budget.as_secs_f64()),
                estimate::human(enough)
            ));
        }
        sweep.push(Setting::new(
            "strategy",
            "\"bayes\"",
            format!(
                "all {trials} trials would take about {} by a first guess; Bayesian search \
                 measures the most promising ones, about {fit_in} in the {} given",
                estimate::human(time.total_s),
                estimate::human(wishes.budget.as_secs_f64())
            ),
        ));
    }
    sweep.push(Setting::new(
        "max_hours",
        trim_float(hours),
        "the budget: no trial starts that would end after it",
    ));
    if let Some(runs) = &wishes.app_python_runs {
        match python_cannot(&space, users, depth) {
            None => sweep.push(Setting::new(
                "runtime",
                "\"python\"",
                format!(
                    "every trial in the app's own {runs}, which [app] python imports: the \
                     ranking is the app's"
                ),
            )),
            Some(why) => findings.push(format!(
                "the trials run in llama-sweep's own llama.cpp, not in the app's {runs}: {why}; \
                 the winner is verified in the app's at the end"
            )),
        }
    }
    let mut objective = vec![Setting::new(
        "metric",
        quoted(wishes.goal.metric()),
        match wishes.goal {
            Goal::Generation => {
                "tokens per second while the app's request is answered, after its prompt"
            }
            Goal::FirstToken => "time to the first token of the app's request",
            Goal::Throughput => "tokens per second of all users' requests together",
        },
    )];
    if quantize.is_some() {
        objective.push(Setting::new(
            "kld_max",
            "0.05",
            "quality: a quantization whose KL divergence from the most precise variant is \
             above this is never recommended",
        ));
    }
    let runs_in_python = sweep.iter().any(|s| s.key == "runtime");
    let mut tables = vec![
        Table {
            name: "sweep",
            settings: sweep,
        },
        Table {
            name: "model",
            settings: model_table,
        },
        Table {
            name: "space",
            settings: space,
        },
        Table {
            name: "workload",
            settings: workload,
        },
        Table {
            name: "objective",
            settings: objective,
        },
    ];
    if quantize.is_none() {
        tables.push(Table {
            name: "quality",
            settings: vec![Setting::new(
                "measure",
                "false",
                "one variant: no other to compare its quality with (a quantize list turns it on)",
            )],
        });
    }
    if let Some(python) = &wishes.app_python {
        tables.push(Table {
            name: "app",
            settings: vec![Setting::new(
                "python",
                quoted(python),
                if runs_in_python {
                    "the app's interpreter: every trial runs in its llama-cpp-python"
                } else {
                    "the app's interpreter: the winner is measured again in its llama-cpp-python"
                },
            )],
        });
    }
    Proposal {
        tables,
        findings,
        trials,
        estimate: time,
    }
}

/// Why the proposed sweep cannot run in the app's llama-cpp-python
/// (`runtime = "python"`), if it cannot: several users, depths, or a knob
/// `Llama()` has no argument for.
fn python_cannot(space: &[Setting], users: u32, depth: Option<u32>) -> Option<String> {
    if users > 1 {
        return Some(format!(
            "its Llama() serves one request at a time and the app serves {users} users"
        ));
    }
    if depth.is_some() {
        return Some(
            "the sweep measures deep into the context, which Llama() trials do not".into(),
        );
    }
    space.iter().find_map(|s| {
        let knob = crate::knobs::by_name(s.key)?;
        matches!(knob.kwarg, crate::knobs::KwargSpelling::Unavailable(_))
            .then(|| format!("its Llama() has no argument for {}", s.key))
    })
}

fn context_per_user(model: &ModelShape, wishes: &Wishes) -> u32 {
    let asked = wishes.context.unwrap_or(DEFAULT_CONTEXT);
    match model.n_ctx_train {
        0 => asked,
        trained => asked.min(trained),
    }
    .max(1024)
}

/// 1, 2, 4 ... up to `users`, and `users` itself.
fn parallel_values(users: u32) -> Vec<i64> {
    let mut values: Vec<i64> = std::iter::successors(Some(1i64), |n| Some(n * 2))
        .take_while(|&n| n < i64::from(users))
        .collect();
    values.push(i64::from(users));
    values
}

fn threads(hw: &Hardware, place: &placing::Placed) -> Vec<Setting> {
    let physical = hw.physical_cores.max(1) as i64;
    let logical = hw.logical_cores.max(1) as i64;
    if place.all_on_gpu {
        return vec![Setting::new(
            "n_threads",
            physical.to_string(),
            "the GPU does the work: threads matter little, one per physical core",
        )];
    }
    let mut values = vec![(physical / 2).max(1), physical, logical];
    values.sort_unstable();
    values.dedup();
    let smt = if logical > physical {
        format!(", and one per logical core ({logical})")
    } else {
        String::new()
    };
    vec![Setting::new(
        "n_threads",
        list(&values),
        format!(
            "the CPU does {} the work: half and all of the {physical} physical cores{smt}; \
             generation is bound by memory, and more threads than it needs only contend",
            if place.gpu_bytes > 0 {
                "part of"
            } else {
                "all of"
            }
        ),
    )]
}

fn batches(goal: Goal, place: &placing::Placed, users: u32) -> Vec<Setting> {
    let on_gpu = place.gpu_bytes > 0;
    let ubatch: &[i64] = match (goal, on_gpu) {
        (Goal::FirstToken, true) => &[256, 512, 1024, 2048],
        (Goal::FirstToken, false) => &[128, 256, 512],
        (_, true) => &[512, 1024],
        (_, false) => &[256, 512],
    };
    let batch = 2048.max(i64::from(users));
    vec![
        Setting::new(
            "n_batch",
            batch.to_string(),
            "prompt tokens per decode call: the whole request's prompt in one",
        ),
        Setting::new(
            "n_ubatch",
            list(ubatch),
            if goal == Goal::FirstToken {
                "tokens per compute graph: prompt speed, hence time to first token, changes most with it"
            } else {
                "tokens per compute graph: prompt speed (the request's first token)"
            },
        ),
    ]
}

fn quantizations(file_type: Option<&str>) -> Option<(Vec<&'static str>, String)> {
    let types: Vec<&'static str> = match file_type? {
        "F32" | "F16" | "BF16" => vec!["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M"],
        "Q8_0" => vec!["Q6_K", "Q5_K_M", "Q4_K_M"],
        _ => return None,
    };
    debug_assert!(types.iter().all(|t| QuantType::from_name(t).is_some()));
    Some((
        types,
        format!(
            "the file is {}: smaller quantizations derived from it are faster, and the sweep \
             measures what each costs in quality",
            file_type?
        ),
    ))
}

/// The app's request as `init` writes it: its prompt and answer, and why.
struct RequestShape {
    prompt_tokens: u32,
    answer_tokens: u32,
    why_prompt: String,
    why_answer: String,
}

/// The request the user described (`--prompt-tokens`, `--prompts`,
/// `--answer-tokens`), or a guess, within one user's `context`.
fn request_shape(wishes: &Wishes, context: u32, findings: &mut Vec<String>) -> RequestShape {
    let (answer, why_answer) = match wishes.answer_tokens {
        Some(n) => (
            n.clamp(2, (context / 2).max(2)),
            "the app's answer, as --answer-tokens says".to_string(),
        ),
        None => (
            REQUEST_ANSWER.min(context / 4).max(2),
            "a guess at the app's answer: --answer-tokens sets yours".to_string(),
        ),
    };
    let (prompt, why_prompt) = match &wishes.prompt {
        Some((n, why)) => (*n, why.clone()),
        None => (
            REQUEST_PROMPT.min(context / 2),
            "a guess at the app's prompt: --prompt-tokens or --prompts FILE sets yours; the \
             prompt before the answer changes which configuration generates fastest"
                .to_string(),
        ),
    };
    let room = context.saturating_sub(answer).max(1);
    if prompt > room {
        findings.push(format!(
            "the app's prompt of {prompt} tokens and its answer of {answer} do not fit a \
             context of {context}: the sweep measures a prompt of {room}"
        ));
    }
    RequestShape {
        prompt_tokens: prompt.clamp(1, room),
        answer_tokens: answer,
        why_prompt,
        why_answer,
    }
}

fn workload(request: &RequestShape, depth: Option<u32>) -> Vec<Setting> {
    let mut w = vec![
        Setting::new(
            "prompt_tokens",
            PROMPT_TOKENS.to_string(),
            "the pp test, as llama-bench's",
        ),
        Setting::new("gen_tokens", GEN_TOKENS.to_string(), "the tg test"),
        Setting::new(
            "repetitions",
            REPETITIONS.to_string(),
            "measured runs of each test (and one warm-up)",
        ),
        Setting::new(
            "request_prompt_tokens",
            request.prompt_tokens.to_string(),
            request.why_prompt.clone(),
        ),
        Setting::new(
            "request_max_tokens",
            request.answer_tokens.to_string(),
            request.why_answer.clone(),
        ),
    ];
    if let Some(depth) = depth {
        w.push(Setting::new(
            "n_depth",
            format!("[{depth}]"),
            "a long conversation: pp and tg measured again with this many tokens already in \
             the cache, where speed falls",
        ));
    }
    w
}

/// Trials of a space: the grid's combinations of its values, less those
/// llama.cpp refuses or would run as another.
fn space_size(space: &[Setting]) -> u64 {
    let mut grid = crate::config::Space::default();
    for s in space {
        if let Some(knob) = crate::knobs::by_name(s.key) {
            grid.set(knob.id, values_of(knob, &s.value));
        }
    }
    crate::plan::grid::expand(&grid).combos.len() as u64
}

/// The values a TOML value written for `knob` holds (a list's each).
fn values_of(knob: &crate::knobs::Knob, toml_value: &str) -> Vec<Value> {
    let cell = |v: &toml::Value| match v {
        toml::Value::String(s) => Value::from_cell(knob, s),
        other => Value::from_cell(knob, &other.to_string()),
    };
    match toml::from_str::<toml::Table>(&format!("v = {toml_value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
    {
        Some(toml::Value::Array(items)) => items.iter().filter_map(cell).collect(),
        Some(one) => cell(&one).into_iter().collect(),
        None => Vec::new(),
    }
}

pub fn sweep_name(model: &str) -> String {
    let name: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.trim_matches('-').to_string()
}

fn round_up(n: u32, to: u32) -> u32 {
    n.div_ceil(to) * to
}

fn round_down(n: u32, to: u32) -> u32 {
    (n / to * to).max(to)
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn list(values: &[i64]) -> String {
    match values {
        [one] => one.to_string(),
        _ => format!(
            "[{}]",
            values
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn list_quoted(values: &[&str]) -> String {
    format!(
        "[{}]",
        values
            .iter()
            .map(|v| quoted(v))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn trim_float(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

pub(crate) fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
}

#[cfg(test)]
mod tests;
