//! `llama-sweep plan`: what a sweep would run, without running any trial.
//! It asks llama.cpp for its defaults (a child process that loads no model),
//! which the reference trial of llama-server's defaults depends on.

use crate::cli::PlanArgs;
use crate::config::StrategyKind;
use crate::config::{self, SweepConfig};
use crate::init;
use crate::models::{self, PlannedVariant};
use crate::plan::references::{self, Reference};
use crate::plan::{self, Plan};
use crate::runner::child::ChildRunner;
use crate::store;
use std::collections::HashSet;
use std::fmt::Write;

pub fn run(args: &PlanArgs) -> anyhow::Result<()> {
    let config = config::load(&args.sweep)?;
    let variants = models::plan_variants(&config)?;
    let plan = plan::build(&config, &variants);
    let folder = config.sweep.output_folder();
    // Rows of an earlier run, if any: which trials are done, how long one takes.
    let recorded = if folder.join(store::RESULTS_CSV).exists() {
        store::read_rows(&folder)?
    } else {
        Vec::new()
    };
    let probe = probe();
    let references = match &probe {
        Ok(probe) => Ok(references::references(
            &config,
            &variants,
            &references::ServerDefaults::here(probe.defaults.int(crate::knobs::N_CTX) as u32),
        )?),
        Err(e) => Err(format!("{e:#}")),
    };
    let guess = match (&probe, recorded.iter().any(|r| r.wall_s > 0.0)) {
        (Ok(probe), false) => first_guess(&config, &variants, &plan, probe),
        _ => None,
    };
    print!(
        "{}",
        render(&config, &variants, &plan, &references, &recorded, guess)
    );
    Ok(())
}

/// What this llama.cpp build is and sees, from a probe whose log is removed.
fn probe() -> anyhow::Result<crate::protocol::ProbeReport> {
    let (probe, log) = super::run_setup::probe(&mut ChildRunner::current()?)?;
    let _ = std::fs::remove_file(log);
    Ok(probe)
}

/// How long the plan's trials take by `init`'s first guess (the first
/// model's size, this machine's memory bandwidth), before one has run.
fn first_guess(
    config: &SweepConfig,
    variants: &[PlannedVariant],
    plan: &Plan,
    probe: &crate::protocol::ProbeReport,
) -> Option<init::estimate::SweepTime> {
    let first = variants.iter().find(|v| v.is_ready())?;
    let header = crate::models::gguf::GgufHeader::read(&first.variant.path).ok()?;
    let shape = init::ModelShape::of(&header, String::new(), String::new())?;
    let hw = init::Hardware::here(probe);
    Some(init::estimate::of_sweep(
        config,
        &shape,
        &hw,
        plan.trials.len() as u64,
        variants.len() as u64,
    ))
}

pub fn render(
    config: &SweepConfig,
    variants: &[PlannedVariant],
    plan: &Plan,
    references: &Result<Vec<Reference>, String>,
    recorded: &[store::row::TrialRow],
    guess: Option<init::estimate::SweepTime>,
) -> String {
    let mut out = String::new();
    let search = match config.sweep.strategy {
        StrategyKind::Grid => "grid search: every trial below, in this order".to_string(),
        StrategyKind::Random => {
            "random search: the trials below in a seeded random order".to_string()
        }
        StrategyKind::Bayes => {
            "Bayesian search: it chooses, one at a time, among the trials below".to_string()
        }
    };
    let budget = match (config.sweep.max_trials, config.sweep.max_time) {
        (Some(n), _) if n < plan.trials.len() => format!(", at most {n} of them"),
        (_, Some(t)) => format!(", for at most {}", humantime::format_duration(t)),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "Sweep {:?} ({}): {search}{budget}; objective: {}",
        config.sweep.name,
        config.file.display(),
        config.objective
    );
    let _ = writeln!(out, "Model variants ({}):", variants.len());
    for v in variants {
        let how = match &v.derive_from {
            None => String::new(),
            Some((source, q)) if v.is_ready() => {
                format!("  (derived {} of {}, cached)", q.name, source.display())
            }
            Some((source, q)) => format!("  (to be derived: {} of {})", q.name, source.display()),
        };
        let _ = writeln!(
            out,
            "  {} {}  {}{how}",
            v.variant.name,
            v.variant.variant,
            v.variant.path.display()
        );
    }
    let swept = config.space.swept_axes();
    let w = &config.workload;
    let _ = writeln!(
        out,
        "Workload: pp {} tokens, tg {} tokens, {} repetitions after {} warmup; request {} prompt + {} generated tokens",
        w.prompt_tokens,
        w.gen_tokens,
        w.repetitions,
        w.warmup,
        w.request_prompt_tokens,
        w.request_max_tokens
    );
    if let Some(line) = shapes_cost(config) {
        let _ = writeln!(out, "{line}");
    }
    let q = &config.quality;
    let _ = if q.measure {
        let bounds: Vec<String> = config
            .objective
            .constraints
            .iter()
            .filter(|c| c.metric.is_quality())
            .map(|c| c.to_string())
            .collect();
        writeln!(
            out,
            "Quality: measured first, once per variant and KV-cache type, against each model's most precise variant ({} tokens per chunk, up to {} chunks of {}){}",
            q.n_ctx,
            q.chunks,
            q.text.as_ref().map_or_else(
                || crate::quality::DEFAULT_TEXT_NAME.to_string(),
                |t| t.display().to_string()
            ),
            if bounds.is_empty() {
                String::new()
            } else {
                format!("; bounds: {}", bounds.join(", "))
            }
        )
    } else {
        writeln!(out, "Quality: not measured ([quality] measure = false)")
    };
    if plan.skipped_equivalent > 0 {
        let _ = writeln!(
            out,
            "Left out {} combinations that llama.cpp would run as another trial of the grid \
             (it clamps n_batch to n_ctx and n_ubatch to n_batch).",
            plan.skipped_equivalent
        );
    }
    if plan.skipped_impossible > 0 {
        let _ = writeln!(
            out,
            "Left out {} combinations llama.cpp refuses: a quantized V cache needs flash attention.",
            plan.skipped_impossible
        );
    }
    if plan.duplicates > 0 {
        let _ = writeln!(
            out,
            "Left out {} trials that repeat earlier ones (two [[model]] entries with the same weights).",
            plan.duplicates
        );
    }

    let done: HashSet<&str> = recorded.iter().map(|r| r.trial_id.as_str()).collect();
    let to_run = plan
        .trials
        .iter()
        .filter(|t| !done.contains(t.trial_id.as_str()))
        .count();
    let _ = write!(
        out,
        "{} trials, {} already recorded in {}, {to_run} to run",
        plan.trials.len(),
        plan.trials.len() - to_run,
        config.sweep.output_folder().display()
    );
    let walls: Vec<f64> = recorded
        .iter()
        .map(|r| r.wall_s)
        .filter(|w| *w > 0.0)
        .collect();
    if let (true, Some(guess)) = (walls.is_empty(), guess) {
        let _ = writeln!(
            out,
            "; about {} by a first guess ({}; {} per trial, generation at ~{:.0} t/s by this \
             machine's memory bandwidth; the real time per trial is known once one has run)",
            init::estimate::human(guess.total_s),
            guess.split(),
            init::estimate::human(guess.per_trial_s),
            guess.tg_tps
        );
    } else if walls.is_empty() {
        out.push_str(" (time per trial unknown until one has run)\n");
    } else {
        let mean = walls.iter().sum::<f64>() / walls.len() as f64;
        let _ = writeln!(
            out,
            "; about {} at {mean:.0} s per trial (mean of the recorded trials)",
            humantime::format_duration(std::time::Duration::from_secs(
                (mean * to_run as f64) as u64
            ))
        );
    }
    match references {
        Ok(references) => {
            let _ = writeln!(
                out,
                "Reference trials (measured first, and again in the confirmation round):"
            );
            for line in references::describe(references, &|id| done.contains(id)) {
                let _ = writeln!(out, "  {line}");
            }
        }
        Err(why) => {
            let _ = writeln!(
                out,
                "Reference trials: unknown until llama.cpp can be asked for its defaults ({why})"
            );
        }
    }
    let _ = writeln!(out, "Trials:");
    for (i, t) in plan.trials.iter().enumerate() {
        let state = if done.contains(t.trial_id.as_str()) {
            "  recorded"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:>4}  {}  {} {}  {}{state}",
            i + 1,
            t.trial_id,
            t.model.name,
            t.model.variant,
            plan::describe(&t.params, &swept)
        );
    }
    out
}

/// What the depths, the follow-up request and n_parallel add to each
/// trial, in tokens decoded (the time follows from the speeds, unknown
/// before a trial has run), or `None` when the workload has none of them.
fn shapes_cost(config: &SweepConfig) -> Option<String> {
    let w = &config.workload;
    let parallel: Vec<i64> = config
        .space
        .get(crate::knobs::N_PARALLEL)
        .map(|values| values.iter().filter_map(|v| v.as_int()).collect())
        .unwrap_or_default();
    let mut parts = Vec::new();
    if !w.n_depth.is_empty() {
        let fill: u32 = w.n_depth.iter().sum();
        let tests = w.n_depth.len() + 1;
        parts.push(format!(
            "n_depth {:?}: pp and tg are measured {tests} times per trial instead of once, \
             after filling each sequence's cache once per depth ({fill} prompt tokens per \
             sequence, reused across the {} repetitions as llama-bench does)",
            w.n_depth, w.repetitions
        ));
    }
    if w.request_history_tokens > 0 {
        parts.push(format!(
            "the request follows {} tokens of conversation, filled once per trial",
            w.request_history_tokens
        ));
    }
    if parallel.iter().any(|&n| n > 1) {
        parts.push(format!(
            "n_parallel {parallel:?}: a trial with N sequences decodes N prompts and N tokens \
             per step, so its prompt tests take about N times as long"
        ));
    }
    (!parts.is_empty()).then(|| format!("Shapes: {}.", parts.join("; ")))
}
