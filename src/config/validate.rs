//! Turns the raw sweep.toml into a [`SweepConfig`], checking every value and
//! the ways values can contradict each other.

use super::axis;
use super::error::{ConfigError, did_you_mean};
use super::raw::{Number, RawConfig, RawKnobs, RawModel};
use super::{ExportSettings, ModelEntry, Space, SweepConfig, SweepSettings};
use crate::config::BayesSettings;
use crate::config::DriftSettings;
use crate::config::QualitySettings;
use crate::config::StrategyKind;
use crate::config::{ConfirmMode, ConfirmSettings};
use crate::knobs::{self, Value};
use crate::models::quant_types::QuantType;
use crate::objective::{Bound, Constraint, Direction, Metric, Objective};
use crate::protocol::{Prompts, Workload};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// Longest trial timeout accepted.
const MAX_TIMEOUT_S: f64 = 7.0 * 24.0 * 3600.0;
/// Largest token count of a workload (and far beyond any context size).
const MAX_TOKENS: u32 = 1 << 20;

/// Context for building errors: the file and its text.
pub(super) struct Ctx<'a> {
    pub file: &'a Path,
    pub source: &'a str,
}

impl Ctx<'_> {
    pub fn err<T>(
        &self,
        key: &str,
        span: Option<std::ops::Range<usize>>,
        msg: impl Into<String>,
    ) -> Result<T, ConfigError> {
        Err(ConfigError::new(self.file, Some(key), msg).at(self.source, span))
    }
}

/// A TOML syntax or type error, with a suggestion for misspelt keys.
pub fn toml_error(file: &Path, source: &str, error: &toml::de::Error) -> ConfigError {
    let mut message = error.message().trim().to_string();
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, expected)) = rest.split_once("`, expected ") {
            let candidates: Vec<&str> = expected
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, s)| s)
                .collect();
            if let Some(suggestion) = did_you_mean(field, candidates) {
                message = format!(
                    "unknown key `{field}`: did you mean `{suggestion}`? (expected {expected})"
                );
            } else {
                message = format!("unknown key `{field}` (expected {expected})");
            }
        }
    }
    ConfigError::new(file, None, message).at(source, error.span())
}

pub fn validate(
    raw: RawConfig,
    file: &Path,
    source: &str,
    base_dir: &Path,
) -> Result<SweepConfig, ConfigError> {
    let ctx = Ctx { file, source };
    let sweep = sweep_settings(&ctx, &raw, base_dir)?;
    let models = models(&ctx, &raw, base_dir)?;
    let workload = workload(&ctx, &raw, base_dir)?;
    let mut space = space(&ctx, &raw.space, &workload)?;
    let objective = objective(&ctx, &raw)?;
    let per_token = objective
        .constraints
        .iter()
        .map(|c| c.metric)
        .chain([objective.metric])
        .find(|m| matches!(m, Metric::RequestTps | Metric::TpotMs));
    if let (Some(metric), true) = (per_token, workload.request_max_tokens < 2) {
        return ctx.err(
            "workload.request_max_tokens",
            None,
            format!(
                "{metric} is the request's speed after its first token, which a request of {} \
                 generated token(s) does not have: set request_max_tokens to your app's answer \
                 (at least 2), or objective.metric to another metric",
                workload.request_max_tokens
            ),
        );
    }
    let depth = objective.metric.depth();
    if depth > 0 && !workload.n_depth.contains(&depth) {
        return ctx.err(
            "objective.metric",
            raw.objective.metric.as_ref().map(|m| m.span()),
            format!(
                "{} reads a depth the workload does not measure: add {depth} to \
                 workload.n_depth (now {:?})",
                objective.metric, workload.n_depth
            ),
        );
    }

    let trial_timeout = match &raw.trial.timeout_s {
        None => Duration::from_secs(300),
        Some(t) if t.get_ref().0 > 0.0 && t.get_ref().0 <= MAX_TIMEOUT_S => {
            Duration::from_secs_f64(t.get_ref().0)
        }
        Some(t) => {
            return ctx.err(
                "trial.timeout_s",
                Some(t.span()),
                format!("must be a number of seconds above 0 and at most {MAX_TIMEOUT_S} (a week)"),
            );
        }
    };
    let early_drop = match &raw.trial.early_drop {
        None => Some(crate::early_drop::DEFAULT_MARGIN),
        Some(m) if m.get_ref().0 == 0.0 => None,
        Some(m) if m.get_ref().0 > 0.0 && m.get_ref().0 < 1.0 => Some(m.get_ref().0),
        Some(m) => {
            return ctx.err(
                "trial.early_drop",
                Some(m.span()),
                "must be a fraction between 0 and 1: 0.3 drops a trial whose best run is more \
                 than 30% below the best trial's slowest run; 0 measures every trial to its last run",
            );
        }
    };
    let quiet = quiet(&ctx, &raw)?;
    let temperature = match &raw.export.temperature {
        None => 0.7,
        Some(t) if (0.0..=5.0).contains(&t.get_ref().0) => t.get_ref().0,
        Some(t) => {
            return ctx.err(
                "export.temperature",
                Some(t.span()),
                "must be between 0 and 5",
            );
        }
    };

    let (drift, noise_cv_max) = drift(&ctx, &raw)?;
    let search = search(&ctx, &raw)?;
    let confirm = confirm(&ctx, &raw)?;
    let mut baseline = super::baseline::baseline(&ctx, &raw, &models, &workload)?;
    let quality = quality(&ctx, &raw, base_dir, &objective)?;
    let app = super::app::app(&ctx, &raw, base_dir)?;
    let trial_runtime = super::runtime::trial_runtime(&ctx, &raw, &app, &workload)?;
    super::runtime::server_knobs(
        &ctx,
        &raw,
        base_dir,
        trial_runtime.server().is_some(),
        &workload,
        &mut space,
        baseline.as_mut(),
    )?;
    if trial_runtime.python().is_some() {
        super::runtime::python_knobs(&ctx, &raw, &space, baseline.as_ref())?;
    }
    Ok(SweepConfig {
        file: file.to_path_buf(),
        source: source.to_string(),
        source_sha256: String::new(),
        sweep,
        models,
        space,
        workload,
        objective,
        trial_timeout,
        early_drop,
        quiet,
        export: ExportSettings { temperature },
        drift,
        noise_cv_max,
        search,
        confirm,
        baseline,
        quality,
        app,
        trial_runtime,
    })
}

/// `[quality]`: the evaluation text and chunking of the quality measurement.
fn quality(
    ctx: &Ctx,
    raw: &RawConfig,
    base_dir: &Path,
    objective: &Objective,
) -> Result<QualitySettings, ConfigError> {
    let q = &raw.quality;
    let defaults = QualitySettings::default();
    let measure = q.measure.unwrap_or(defaults.measure);
    if !measure {
        if let Some(c) = objective.constraints.iter().find(|c| c.metric.is_quality()) {
            return ctx.err(
                "quality.measure",
                None,
                format!(
                    "is false, but [objective] bounds {} ({c}): quality must be measured to be bounded",
                    c.metric
                ),
            );
        }
    }
    let text = match &q.text {
        None => None,
        Some(t) => {
            let path = base_dir.join(t.get_ref());
            if !path.is_file() {
                return ctx.err(
                    "quality.text",
                    Some(t.span()),
                    format!("no such file: {}", path.display()),
                );
            }
            Some(path)
        }
    };
    let n_ctx = match &q.n_ctx {
        None => defaults.n_ctx,
        Some(n) if (64..=65536).contains(n.get_ref()) => *n.get_ref() as u32,
        Some(n) => {
            return ctx.err(
                "quality.n_ctx",
                Some(n.span()),
                "must be between 64 and 65536 tokens (llama.cpp's perplexity tool uses 512)",
            );
        }
    };
    let chunks = match &q.chunks {
        None => defaults.chunks,
        Some(n) if (1..=10_000).contains(n.get_ref()) => *n.get_ref() as u32,
        Some(n) => {
            return ctx.err(
                "quality.chunks",
                Some(n.span()),
                "must be between 1 and 10000",
            );
        }
    };
    let timeout = match &q.timeout_s {
        None => defaults.timeout,
        Some(t) if t.get_ref().0 > 0.0 && t.get_ref().0 <= MAX_TIMEOUT_S => {
            Duration::from_secs_f64(t.get_ref().0)
        }
        Some(t) => {
            return ctx.err(
                "quality.timeout_s",
                Some(t.span()),
                format!("must be a number of seconds above 0 and at most {MAX_TIMEOUT_S}"),
            );
        }
    };
    Ok(QualitySettings {
        measure,
        text,
        n_ctx,
        chunks,
        timeout,
    })
}

fn sweep_settings(
    ctx: &Ctx,
    raw: &RawConfig,
    base_dir: &Path,
) -> Result<SweepSettings, ConfigError> {
    let sweep = raw.sweep.get_ref();
    let name = sweep.name.get_ref();
    let name_ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !name_ok {
        return ctx.err(
            "sweep.name",
            Some(sweep.name.span()),
            format!("{name:?} cannot be a folder name: use letters, digits, '.', '_' and '-'"),
        );
    }
    let strategy = match &sweep.strategy {
        None => StrategyKind::Grid,
        Some(s) => {
            match StrategyKind::from_name(s.get_ref()) {
                Some(kind) => kind,
                None => {
                    let hint = did_you_mean(s.get_ref(), ["grid", "random", "bayes"])
                        .map(|k| format!("did you mean \"{k}\"? "))
                        .unwrap_or_default();
                    return ctx.err(
                    "sweep.strategy",
                    Some(s.span()),
                    format!("unknown strategy {:?}; {hint}expected \"grid\", \"random\" or \"bayes\"", s.get_ref()),
                );
                }
            }
        }
    };
    let max_trials = match &sweep.max_trials {
        None => None,
        Some(n) if *n.get_ref() >= 1 => Some(*n.get_ref() as usize),
        Some(n) => return ctx.err("sweep.max_trials", Some(n.span()), "must be at least 1"),
    };
    let max_time = match &sweep.max_hours {
        None => None,
        Some(h) if h.get_ref().0 > 0.0 && h.get_ref().0 <= 24.0 * 365.0 => {
            Some(Duration::from_secs_f64(h.get_ref().0 * 3600.0))
        }
        Some(h) => {
            return ctx.err(
                "sweep.max_hours",
                Some(h.span()),
                "must be a number of hours above 0",
            );
        }
    };
    Ok(SweepSettings {
        max_trials,
        max_time,
        name: name.clone(),
        output_dir: base_dir.join(sweep.output_dir.as_deref().unwrap_or("reports")),
        strategy,
        seed: sweep.seed.unwrap_or(0),
        model_cache: absolute(
            &base_dir.join(sweep.model_cache.as_deref().unwrap_or("models/derived")),
        ),
    })
}

/// `[search]`: the Bayesian search's start and early stop.
fn search(ctx: &Ctx, raw: &RawConfig) -> Result<BayesSettings, ConfigError> {
    let s = &raw.search;
    let defaults = BayesSettings::default();
    let initial = match &s.initial {
        None => defaults.initial,
        Some(n) if (1..=1000).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            return ctx.err(
                "search.initial",
                Some(n.span()),
                "must be between 1 and 1000",
            );
        }
    };
    let stop_ei = match &s.stop_ei_pct {
        None => None,
        Some(p) if p.get_ref().0 > 0.0 && p.get_ref().0 < 100.0 => Some(p.get_ref().0 / 100.0),
        Some(p) => {
            return ctx.err(
                "search.stop_ei_pct",
                Some(p.span()),
                "must be a percentage between 0 and 100",
            );
        }
    };
    Ok(BayesSettings { initial, stop_ei })
}

/// `[trial] busy_cores_max` and `busy_wait_s`: how much of the machine
/// other processes may use beside a measurement, and how long to wait for
/// them to stop.
fn quiet(ctx: &Ctx, raw: &RawConfig) -> Result<crate::machine_load::QuietRule, ConfigError> {
    let defaults = crate::machine_load::QuietRule::default();
    let t = &raw.trial;
    let cores_max = match &t.busy_cores_max {
        None => defaults.cores_max,
        Some(v) if v.get_ref().0 > 0.0 && v.get_ref().0.is_finite() => v.get_ref().0,
        Some(v) => {
            return ctx.err(
                "trial.busy_cores_max",
                Some(v.span()),
                "must be a number of cores above 0 (0.25: a quarter of a core); a large one \
                 (1000) turns the check off",
            );
        }
    };
    let wait_s = match &t.busy_wait_s {
        None => defaults.wait_s,
        Some(v) if (0.0..=MAX_TIMEOUT_S).contains(&v.get_ref().0) => v.get_ref().0,
        Some(v) => {
            return ctx.err(
                "trial.busy_wait_s",
                Some(v.span()),
                format!("must be a number of seconds from 0 to {MAX_TIMEOUT_S}"),
            );
        }
    };
    Ok(crate::machine_load::QuietRule { cores_max, wait_s })
}

/// `[confirm]`: the confirmation round.
fn confirm(ctx: &Ctx, raw: &RawConfig) -> Result<ConfirmSettings, ConfigError> {
    let c = &raw.confirm;
    let defaults = ConfirmSettings::default();
    let count = |key: &str, v: &Option<Spanned<i64>>, default: usize, min: i64| match v {
        None => Ok(default),
        Some(n) if (min..=100).contains(n.get_ref()) => Ok(*n.get_ref() as usize),
        Some(n) => ctx.err(
            &format!("confirm.{key}"),
            Some(n.span()),
            format!("must be between {min} and 100"),
        ),
    };
    let rounds = count("rounds", &c.rounds, defaults.rounds, 1)?;
    // Without max_rounds, rounds set above the default maximum are a fixed
    // number of rounds.
    let max_rounds = count(
        "max_rounds",
        &c.max_rounds,
        defaults.max_rounds.max(rounds),
        1,
    )?;
    if max_rounds < rounds {
        return ctx.err(
            "confirm.max_rounds",
            c.max_rounds.as_ref().map(|n| n.span()),
            format!("must be at least confirm.rounds ({rounds}): the rounds run before the verdict is first looked at"),
        );
    }
    let number = |key: &str,
                  v: &Option<Spanned<Number>>,
                  range: std::ops::RangeInclusive<f64>,
                  what: &str| match v {
        None => Ok(None),
        Some(x) if range.contains(&x.get_ref().0) => Ok(Some(x.get_ref().0)),
        Some(x) => ctx.err(&format!("confirm.{key}"), Some(x.span()), what.to_string()),
    };
    let max_minutes = number(
        "max_minutes",
        &c.max_minutes,
        0.0..=100_000.0,
        "must be a number of minutes (0 or more)",
    )?
    .or(defaults.max_minutes);
    let equivalent_within = number(
        "equivalent_within",
        &c.equivalent_within,
        0.0..=0.5,
        "must be a fraction between 0 and 0.5 (0.05: within 5% of each other)",
    )?
    .unwrap_or(defaults.equivalent_within);
    let mode = match c.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None => defaults.mode,
        Some(("resident", _)) => ConfirmMode::Resident,
        Some(("rounds", _)) => ConfirmMode::Rounds,
        Some((other, span)) => {
            return ctx.err(
                "confirm.mode",
                Some(span),
                format!("unknown mode {other:?}; expected \"resident\" or \"rounds\""),
            );
        }
    };
    let pair_count = |key: &str, v: &Option<Spanned<i64>>, default: usize| match v {
        None => Ok(default),
        Some(n) if (3..=10_000).contains(n.get_ref()) => Ok(*n.get_ref() as usize),
        Some(n) => ctx.err(
            &format!("confirm.{key}"),
            Some(n.span()),
            "must be between 3 and 10000",
        ),
    };
    let pairs = pair_count("pairs", &c.pairs, defaults.pairs)?;
    let max_pairs = pair_count("max_pairs", &c.max_pairs, defaults.max_pairs.max(pairs))?;
    if max_pairs < pairs {
        return ctx.err(
            "confirm.max_pairs",
            c.max_pairs.as_ref().map(|n| n.span()),
            format!("must be at least confirm.pairs ({pairs}): the pairs measured before the verdict is first looked at"),
        );
    }
    Ok(ConfirmSettings {
        top: count("top", &c.top, defaults.top, 0)?,
        rounds,
        max_rounds,
        max_minutes,
        equivalent_within,
        mode,
        pairs,
        max_pairs,
        repetitions: match &c.repetitions {
            None => None,
            Some(n) if (1..=1000).contains(n.get_ref()) => Some(*n.get_ref() as u32),
            Some(n) => {
                return ctx.err(
                    "confirm.repetitions",
                    Some(n.span()),
                    "must be between 1 and 1000",
                );
            }
        },
    })
}

/// `[drift]`: anchor re-measurements and the noise limit.
fn drift(ctx: &Ctx, raw: &RawConfig) -> Result<(DriftSettings, f64), ConfigError> {
    let d = &raw.drift;
    let defaults = DriftSettings::default();
    let every = match &d.every {
        None => defaults.every,
        Some(n) if *n.get_ref() >= 0 => *n.get_ref() as usize,
        Some(n) => {
            return ctx.err(
                "drift.every",
                Some(n.span()),
                "must be 0 (off) or a number of trials",
            );
        }
    };
    let positive = |key: &str, v: &Option<Spanned<Number>>, default: f64, max: f64| match v {
        None => Ok(default),
        Some(x) if x.get_ref().0 >= 0.0 && x.get_ref().0 <= max => Ok(x.get_ref().0),
        Some(x) => ctx.err(
            &format!("drift.{key}"),
            Some(x.span()),
            format!("must be between 0 and {max}"),
        ),
    };
    let settings = DriftSettings {
        every,
        threshold: positive(
            "threshold_pct",
            &d.threshold_pct,
            defaults.threshold * 100.0,
            1000.0,
        )? / 100.0,
        anchor: d.anchor.clone(),
        cooldown_s: positive("cooldown_s", &d.cooldown_s, defaults.cooldown_s, 86_400.0)?,
        remeasure: d.remeasure.unwrap_or(defaults.remeasure),
    };
    let noise_cv_max = positive("noise_cv_max", &d.noise_cv_max, 0.05, 10.0)?;
    Ok((settings, noise_cv_max))
}

fn absolute(path: &Path) -> std::path::PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn models(ctx: &Ctx, raw: &RawConfig, base_dir: &Path) -> Result<Vec<ModelEntry>, ConfigError> {
    if raw.models.is_empty() {
        return ctx.err(
            "model",
            None,
            "no model: add a [[model]] table with the path of a GGUF file",
        );
    }
    let mut names = HashSet::new();
    let mut entries = Vec::new();
    for (i, spanned) in raw.models.iter().enumerate() {
        let entry = model(ctx, i, spanned, base_dir)?;
        if !names.insert(entry.name.clone()) {
            return ctx.err(
                &format!("model[{i}].name"),
                Some(spanned.span()),
                format!(
                    "model name {:?} is used twice; give each [[model]] its own name",
                    entry.name
                ),
            );
        }
        entries.push(entry);
    }
    Ok(entries)
}

fn model(
    ctx: &Ctx,
    i: usize,
    spanned: &Spanned<RawModel>,
    base_dir: &Path,
) -> Result<ModelEntry, ConfigError> {
    let raw = spanned.get_ref();
    let key = |k: &str| format!("model[{i}].{k}");
    let path = base_dir.join(raw.path.get_ref());
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => {
            return ctx.err(
                &key("path"),
                Some(raw.path.span()),
                format!("{} is a directory, not a GGUF file", path.display()),
            );
        }
        Err(e) => {
            let hint = if raw.path.get_ref().contains("SmolLM2-135M") {
                " (fetch the demo model with scripts/fetch-demo-model.sh)"
            } else {
                ""
            };
            return ctx.err(
                &key("path"),
                Some(raw.path.span()),
                format!("cannot open model file {}: {e}{hint}", path.display()),
            );
        }
    }
    // Absolute, so rows and config.yaml name the file unambiguously.
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let name = match &raw.name {
        Some(n) if n.get_ref().trim().is_empty() => {
            return ctx.err(&key("name"), Some(n.span()), "model name is empty");
        }
        Some(n) => n.get_ref().clone(),
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let mut quantize = Vec::new();
    for q in &raw.quantize {
        let Some(quant) = QuantType::from_name(q.get_ref()) else {
            let hint = did_you_mean(q.get_ref(), QuantType::names())
                .map(|s| format!("did you mean {s:?}? "))
                .unwrap_or_default();
            let known: Vec<&str> = QuantType::names().collect();
            return ctx.err(
                &key("quantize"),
                Some(q.span()),
                format!(
                    "unknown quantization {:?}; {hint}known: {}",
                    q.get_ref(),
                    known.join(", ")
                ),
            );
        };
        if !quantize.contains(&quant) {
            quantize.push(quant);
        }
    }
    let include_source = raw.include_source.unwrap_or(true);
    if !include_source && quantize.is_empty() {
        return ctx.err(
            &key("include_source"),
            Some(spanned.span()),
            "include_source = false leaves no variant to measure: add `quantize = [...]`",
        );
    }
    Ok(ModelEntry {
        name,
        path,
        quantize,
        include_source,
    })
}

fn workload(ctx: &Ctx, raw: &RawConfig, base_dir: &Path) -> Result<Workload, ConfigError> {
    let (w, span) = match &raw.workload {
        Some(w) => (Some(w.get_ref()), Some(w.span())),
        None => (None, None),
    };
    let get = |f: fn(&super::raw::RawWorkload) -> Option<u32>, default: u32| {
        w.and_then(f).unwrap_or(default)
    };
    let prompt_tokens = get(|w| w.prompt_tokens, 512);
    let gen_tokens = get(|w| w.gen_tokens, 128);
    let workload = Workload {
        prompt_tokens,
        gen_tokens,
        repetitions: get(|w| w.repetitions, 5),
        warmup: get(|w| w.warmup, 1),
        request_prompt_tokens: get(|w| w.request_prompt_tokens, prompt_tokens),
        request_max_tokens: get(|w| w.request_max_tokens, gen_tokens),
        n_depth: depths(ctx, w, span.clone())?,
        request_history_tokens: get(|w| w.request_history_tokens, 0),
        prompts: prompts(ctx, w, base_dir)?,
    };
    for (key, value) in [
        ("workload.prompt_tokens", workload.prompt_tokens),
        ("workload.gen_tokens", workload.gen_tokens),
        ("workload.repetitions", workload.repetitions),
        (
            "workload.request_prompt_tokens",
            workload.request_prompt_tokens,
        ),
        ("workload.request_max_tokens", workload.request_max_tokens),
    ] {
        if value == 0 {
            return ctx.err(key, span.clone(), "must be at least 1");
        }
        if value > MAX_TOKENS {
            return ctx.err(
                key,
                span.clone(),
                format!("{value} is more than {MAX_TOKENS}"),
            );
        }
    }
    if workload.request_history_tokens > MAX_TOKENS {
        return ctx.err(
            "workload.request_history_tokens",
            span,
            format!(
                "{} is more than {MAX_TOKENS}",
                workload.request_history_tokens
            ),
        );
    }
    Ok(workload)
}

/// `prompts`: "random" (the default), "shipped" (the text shipped with
/// llama-sweep) or a text file, relative to the sweep file.
fn prompts(
    ctx: &Ctx,
    w: Option<&super::raw::RawWorkload>,
    base_dir: &Path,
) -> Result<Prompts, ConfigError> {
    let Some(raw) = w.and_then(|w| w.prompts.as_ref()) else {
        return Ok(Prompts::Random);
    };
    let span = Some(raw.span());
    match raw.get_ref().as_str() {
        "random" => Ok(Prompts::Random),
        "shipped" => Ok(Prompts::Shipped),
        file => {
            let path = base_dir.join(file);
            match std::fs::read_to_string(&path) {
                Ok(text) if text.trim().is_empty() => ctx.err(
                    "workload.prompts",
                    span,
                    format!("{} holds no text", path.display()),
                ),
                Ok(_) => Ok(Prompts::File(std::path::absolute(&path).unwrap_or(path))),
                Err(e) => ctx.err(
                    "workload.prompts",
                    span,
                    format!(
                        "cannot read {} ({e}): give \"random\" (random tokens), \"shipped\" \
                         (a public-domain book shipped with llama-sweep) or a UTF-8 text file \
                         of your app's, relative to the sweep file",
                        path.display()
                    ),
                ),
            }
        }
    }
}

/// `n_depth`: the depths beyond 0, sorted, each once (0 is always
/// measured: it is the plain pp and tg).
fn depths(
    ctx: &Ctx,
    w: Option<&super::raw::RawWorkload>,
    span: Option<std::ops::Range<usize>>,
) -> Result<Vec<u32>, ConfigError> {
    let Some(raw) = w.and_then(|w| w.n_depth.as_ref()) else {
        return Ok(Vec::new());
    };
    let span = Some(raw.span()).or(span);
    let mut depths: Vec<u32> = raw.get_ref().iter().copied().filter(|&d| d > 0).collect();
    depths.sort_unstable();
    depths.dedup();
    if let Some(&deep) = depths.iter().find(|&&d| d > MAX_TOKENS) {
        return ctx.err(
            "workload.n_depth",
            span,
            format!("depth {deep} is more than {MAX_TOKENS}"),
        );
    }
    Ok(depths)
}

fn space(ctx: &Ctx, raw: &RawKnobs, workload: &Workload) -> Result<Space, ConfigError> {
    let space = space_values(ctx, "space", raw, &[])?;
    check_space(ctx, "space", raw, &space, workload)?;
    Ok(space)
}

/// The knob keys of `table` (`space` or `baseline`), each expanded and
/// checked on its own. `other_keys` are the table's keys that are not knobs
/// (the baseline's `model` and `quant`), skipped here; any other key that
/// is not a knob is an error suggesting the nearest name.
pub(super) fn space_values(
    ctx: &Ctx,
    table: &str,
    raw: &RawKnobs,
    other_keys: &[&'static str],
) -> Result<Space, ConfigError> {
    let mut space = Space::default();
    for (key, value) in raw {
        let name = key.get_ref().as_str();
        if other_keys.contains(&name) {
            continue;
        }
        if let Some(alias) = knobs::alias(name) {
            if raw.keys().any(|k| k.get_ref() == alias.knob.name()) {
                return ctx.err(
                    &format!("{table}.{name}"),
                    Some(key.span()),
                    format!(
                        "set {} or {name}, not both: {}",
                        alias.knob,
                        alias.describe()
                    ),
                );
            }
            let values = axis::expand_alias(alias, value.get_ref())
                .or_else(|msg| ctx.err(&format!("{table}.{name}"), Some(value.span()), msg))?;
            space.set(alias.knob, values);
            continue;
        }
        let Some(knob) = knobs::by_name(name) else {
            let candidates: Vec<&str> = other_keys.iter().copied().chain(knobs::names()).collect();
            let expected = candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let message = match did_you_mean(name, candidates.iter().copied()) {
                Some(s) => {
                    format!("unknown key `{name}`: did you mean `{s}`? (expected {expected})")
                }
                None => format!("unknown key `{name}` (expected {expected})"),
            };
            return Err(ConfigError::new(ctx.file, None, message).at(ctx.source, Some(key.span())));
        };
        let values = axis::expand(knob, value.get_ref())
            .or_else(|msg| ctx.err(&format!("{table}.{name}"), Some(value.span()), msg))?;
        space.set(knob.id, values);
    }
    Ok(space)
}

/// The span of `name`'s value in `raw`.
pub(super) fn span_of(raw: &RawKnobs, name: &str) -> Option<std::ops::Range<usize>> {
    raw.iter()
        .find(|(k, _)| k.get_ref() == name)
        .map(|(_, v)| v.span())
}

/// The ways values of `table` can contradict each other or the workload.
pub(super) fn check_space(
    ctx: &Ctx,
    table: &str,
    raw: &RawKnobs,
    space: &Space,
    workload: &Workload,
) -> Result<(), ConfigError> {
    let ints = |knob| {
        space.get(knob).map(|values| {
            values
                .iter()
                .filter_map(Value::as_int)
                .collect::<Vec<i64>>()
        })
    };
    if let (Some(ubatch), Some(batch)) = (ints(knobs::N_UBATCH), ints(knobs::N_BATCH)) {
        let (min_u, max_b) = (ubatch.iter().min().unwrap(), batch.iter().max().unwrap());
        if min_u > max_b {
            return ctx.err(
                &format!("{table}.n_ubatch"),
                span_of(raw, "n_ubatch"),
                format!(
                    "n_ubatch {min_u} is larger than every n_batch (at most {max_b}): \
                     the physical batch cannot exceed the logical batch"
                ),
            );
        }
    }
    if let Some(n_ctx) = ints(knobs::N_CTX) {
        let needed = i64::from(workload.context_needed());
        // Every sequence holds its tests: n_parallel of them share n_ctx.
        let most_parallel = ints(knobs::N_PARALLEL)
            .and_then(|p| p.into_iter().max())
            .unwrap_or(1);
        if let Some(small) = n_ctx.iter().find(|&&c| c < needed * most_parallel) {
            let deepest = workload.n_depth.iter().max().copied().unwrap_or(0);
            let parallel = if most_parallel > 1 {
                format!(
                    ", for each of n_parallel {most_parallel} sequences: {} in all",
                    needed * most_parallel
                )
            } else {
                String::new()
            };
            return ctx.err(
                &format!("{table}.n_ctx"),
                span_of(raw, "n_ctx"),
                format!(
                    "n_ctx {small} is smaller than the workload needs ({needed} tokens{parallel}: \
                     the largest of n_depth {deepest} + the larger of prompt_tokens {} and \
                     gen_tokens {}, and request_history_tokens + request_prompt_tokens + \
                     request_max_tokens {})",
                    workload.prompt_tokens,
                    workload.gen_tokens,
                    workload.request_history_tokens
                        + workload.request_prompt_tokens
                        + workload.request_max_tokens
                ),
            );
        }
    }
    if let (Some(parallel), Some(batch)) = (ints(knobs::N_PARALLEL), ints(knobs::N_BATCH)) {
        let (most, least) = (parallel.iter().max().unwrap(), batch.iter().min().unwrap());
        if most > least {
            return ctx.err(
                &format!("{table}.n_parallel"),
                span_of(raw, "n_parallel"),
                format!(
                    "n_parallel {most} is larger than n_batch {least}: one decode step holds a \
                     token of every sequence"
                ),
            );
        }
    }
    Ok(())
}

/// A constraint key of `[objective]`: its name, its value, the metric it
/// bounds, the kind of bound and the factor from the key's unit to the metric's.
type ConstraintKey<'a> = (
    &'static str,
    &'a Option<Spanned<Number>>,
    Metric,
    fn(f64) -> Bound,
    f64,
);

fn objective(ctx: &Ctx, raw: &RawConfig) -> Result<Objective, ConfigError> {
    let o = &raw.objective;
    let metric = match &o.metric {
        None => Metric::RequestTps,
        Some(m) => Metric::from_name(m.get_ref()).map_or_else(
            || {
                let names: Vec<String> = Metric::ALL
                    .iter()
                    .map(|m| m.name().into_owned())
                    .chain(["tg_tps@<depth>".to_string(), "pp_tps@<depth>".into()])
                    .collect();
                let hint = did_you_mean(m.get_ref(), names.iter().map(String::as_str))
                    .map(|s| format!("did you mean {s:?}? "))
                    .unwrap_or_default();
                ctx.err(
                    "objective.metric",
                    Some(m.span()),
                    format!(
                        "unknown metric {:?}; {hint}expected one of {}",
                        m.get_ref(),
                        names.join(", ")
                    ),
                )
            },
            Ok,
        )?,
    };
    let direction = match o
        .direction
        .as_ref()
        .map(|d| (d.get_ref().as_str(), d.span()))
    {
        None => metric.natural_direction(),
        Some(("maximize", _)) => Direction::Maximize,
        Some(("minimize", _)) => Direction::Minimize,
        Some((other, span)) => {
            return ctx.err(
                "objective.direction",
                Some(span),
                format!("unknown direction {other:?}; expected \"maximize\" or \"minimize\""),
            );
        }
    };
    let mut constraints = Vec::new();
    if metric.is_quality() {
        return ctx.err(
            "objective.metric",
            o.metric.as_ref().map(|m| m.span()),
            format!(
                "{metric} is measured once per model variant, not per trial: bound it instead \
                 (kld_max, ppl_increase_pct_max or top1_pct_min) and optimize a speed or latency"
            ),
        );
    }
    let bounds: [ConstraintKey; 12] = [
        (
            "ttft_ms_max",
            &o.ttft_ms_max,
            Metric::TtftMs,
            Bound::AtMost,
            1.0,
        ),
        (
            "ttft_ms_p95_max",
            &o.ttft_ms_p95_max,
            Metric::TtftMsP95,
            Bound::AtMost,
            1.0,
        ),
        (
            "itl_ms_p95_max",
            &o.itl_ms_p95_max,
            Metric::ItlMsP95,
            Bound::AtMost,
            1.0,
        ),
        (
            "e2e_s_max",
            &o.e2e_s_max,
            Metric::E2eMs,
            Bound::AtMost,
            1000.0,
        ),
        (
            "peak_rss_mib_max",
            &o.peak_rss_mib_max,
            Metric::PeakRssMib,
            Bound::AtMost,
            1.0,
        ),
        (
            "device_memory_mib_max",
            &o.device_memory_mib_max,
            Metric::DeviceMemoryMib,
            Bound::AtMost,
            1.0,
        ),
        (
            "request_tps_min",
            &o.request_tps_min,
            Metric::RequestTps,
            Bound::AtLeast,
            1.0,
        ),
        (
            "pp_tps_min",
            &o.pp_tps_min,
            Metric::PpTps,
            Bound::AtLeast,
            1.0,
        ),
        (
            "tg_tps_min",
            &o.tg_tps_min,
            Metric::TgTps,
            Bound::AtLeast,
            1.0,
        ),
        ("kld_max", &o.kld_max, Metric::Kld, Bound::AtMost, 1.0),
        (
            "ppl_increase_pct_max",
            &o.ppl_increase_pct_max,
            Metric::PplIncreasePct,
            Bound::AtMost,
            1.0,
        ),
        (
            "top1_pct_min",
            &o.top1_pct_min,
            Metric::Top1Pct,
            Bound::AtLeast,
            1.0,
        ),
    ];
    for (key, value, metric, bound, scale) in bounds {
        if let Some(v) = value {
            let limit = v.get_ref().0;
            if !(limit.is_finite() && limit > 0.0) {
                return ctx.err(
                    &format!("objective.{key}"),
                    Some(v.span()),
                    "must be a positive number",
                );
            }
            constraints.push(Constraint {
                metric,
                bound: bound(limit * scale),
            });
        }
    }
    Ok(Objective {
        metric,
        direction,
        constraints,
    })
}
