//! `llama-sweep run`: validate, plan, probe llama.cpp, derive missing
//! quantizations, run the trials, then summarise and write config.yaml.

use crate::cli::RunArgs;
use crate::config::{self, ConfigError, SweepConfig};
use crate::export;
use crate::machine::Machine;
use crate::models::{self, derive};
use crate::plan;
use crate::protocol::{ChildJob, ChildReply, ProbeReport};
use crate::report::{summary, warnings};
use crate::runner::ProcessExecutor;
use crate::runner::child::ChildRunner;
use crate::search::{GridStrategy, Strategy};
use crate::store::manifest::{self, Manifest, SweepInfo, ToolInfo};
use crate::store::row::TrialRow;
use crate::store::{self, Store};
use crate::sweep::{self, SweepContext, TrialEvent};
use anyhow::{Context, bail};
use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

pub fn run(args: &RunArgs) -> anyhow::Result<()> {
    let config = config::load(&args.sweep)?;
    let variants = models::plan_variants(&config)?;
    let plan = plan::build(&config, &variants);
    let runner = ChildRunner::current()?;

    // Ask llama.cpp for its defaults before writing anything: a sweep that
    // leaves n_ctx at a default too small for its workload is bad input.
    let probe_log =
        std::env::temp_dir().join(format!("llama-sweep-probe-{}.log", std::process::id()));
    let probe = probe(&runner, &probe_log);
    let probe = probe.and_then(|p| check_defaults(&config, &p).map(|()| p));
    let probe = match probe {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_file(&probe_log);
            return Err(e);
        }
    };

    let folder = config.sweep.output_folder();
    let mut store = Store::open(&folder)?;
    if let Some(note) = store.repair_note() {
        eprintln!("warning: {note}");
    }
    let recorded = store.recorded_ids();
    let logs = folder.join(store::LOGS);
    if std::fs::copy(&probe_log, logs.join("probe.log")).is_ok() {
        let _ = std::fs::remove_file(&probe_log);
    }

    let mut manifest = new_manifest(&config, &probe, plan.trials.len(), store.rows().len());
    manifest::write(&folder.join(store::MANIFEST), &manifest)?;
    store::write_atomically(&folder.join(store::SWEEP_COPY), config.source.as_bytes())?;

    let mut strategy = GridStrategy::new(&plan.trials, &recorded);
    let to_run = strategy.remaining().unwrap_or(0);
    eprintln!(
        "llama-sweep: sweep {:?}: {} trials ({} already recorded, {to_run} to run) → {}",
        config.sweep.name,
        plan.trials.len(),
        plan.trials.len() - to_run,
        folder.display()
    );
    eprintln!("  {}", probe.llama_cpp_build);

    let needed: HashSet<String> = plan
        .trials
        .iter()
        .filter(|t| !recorded.contains(&t.trial_id))
        .map(|t| t.model.identity.clone())
        .collect();
    let unavailable = derive::derive_missing(&variants, &needed, &runner, &logs, &mut |line| {
        eprintln!("{line}")
    })?;

    let build = format!(
        "llama-sweep {}, {}",
        env!("CARGO_PKG_VERSION"),
        probe.llama_cpp_build
    );
    let ctx = SweepContext {
        sweep_name: &config.sweep.name,
        build: &build,
        defaults: &probe.defaults,
        objective: &config.objective,
        seq_of: plan
            .trials
            .iter()
            .enumerate()
            .map(|(i, t)| (t.trial_id.clone(), i as u32))
            .collect(),
        unavailable,
    };
    let mut executor = ProcessExecutor {
        runner,
        timeout: config.trial_timeout,
    };
    let swept = config.space.swept_axes();
    let started = Instant::now();
    let mut progress =
        |event: TrialEvent| eprintln!("{}", progress_line(&event, &swept, started.elapsed()));
    sweep::run(
        &mut strategy,
        &mut executor,
        &mut store,
        &ctx,
        &mut progress,
    )?;

    manifest.trials_recorded = store.rows().len();
    manifest.updated_at = sweep::now_rfc3339();
    manifest::write(&folder.join(store::MANIFEST), &manifest)?;
    // Rows of this plan only: the folder may also hold rows of an earlier
    // version of the sweep file, measured under other settings.
    let planned: HashSet<&str> = plan.trials.iter().map(|t| t.trial_id.as_str()).collect();
    let current: Vec<TrialRow> = store
        .rows()
        .iter()
        .filter(|r| planned.contains(r.trial_id.as_str()))
        .cloned()
        .collect();
    if current.len() < store.rows().len() {
        eprintln!(
            "note: {} rows in {} belong to an earlier version of the sweep file; they are kept but not ranked",
            store.rows().len() - current.len(),
            folder.display()
        );
    }
    finish(
        &config,
        &current,
        &folder,
        &probe,
        &manifest.sweep,
        args.top,
    )
}

/// Refuses a sweep whose unset n_ctx leaves llama.cpp's default context
/// smaller than the workload: every trial would fail after loading the model.
fn check_defaults(config: &SweepConfig, probe: &ProbeReport) -> anyhow::Result<()> {
    let needed = config.workload.context_needed();
    if config.space.n_ctx.is_none() && probe.defaults.n_ctx < needed {
        return Err(ConfigError::new(
            &config.file,
            Some("space.n_ctx"),
            format!(
                "not set, and llama.cpp's default context ({} tokens) is smaller than the workload \
                 needs ({needed}): set n_ctx in [space]",
                probe.defaults.n_ctx
            ),
        )
        .into());
    }
    Ok(())
}

/// Asks a child for llama.cpp's build, devices and defaults.
fn probe(runner: &ChildRunner, log: &Path) -> anyhow::Result<ProbeReport> {
    let ending = runner.run(&ChildJob::Probe, log, Duration::from_secs(120))?;
    match ending.reply {
        Ok(ChildReply::Probe(report)) => Ok(report),
        Ok(ChildReply::Failed { reason }) => bail!("llama.cpp cannot start: {reason}"),
        other => bail!(
            "llama.cpp cannot start: the probe process ended ({}) with {other:?}; see {}",
            ending.exit,
            log.display()
        ),
    }
}

fn new_manifest(
    config: &SweepConfig,
    probe: &ProbeReport,
    planned: usize,
    recorded: usize,
) -> Manifest {
    let now = sweep::now_rfc3339();
    Manifest {
        tool: ToolInfo::current(),
        sweep: SweepInfo {
            name: config.sweep.name.clone(),
            file: config.file.display().to_string(),
            sha256: config.source_sha256.clone(),
            strategy: "grid".into(),
            objective: config.objective.clone(),
            temperature: config.export.temperature,
        },
        machine: Machine::detect(),
        llama_cpp: probe.clone(),
        started_at: now.clone(),
        updated_at: now,
        trials_planned: planned,
        trials_recorded: recorded,
    }
}

/// `[3/12] 5f1c2a9e0b7d smollm2 Q4_1 n_batch=512 → ok  tg 182.3 ± 1.2 t/s ...`
fn progress_line(event: &TrialEvent, swept: &[&str], elapsed: Duration) -> String {
    let r = event.row;
    let result = match (r.tg_tps_mean, r.pp_tps_mean) {
        (Some(tg), Some(pp)) => format!(
            "ok  tg {tg:.1} ± {:.1} t/s  pp {pp:.0} ± {:.0} t/s  ttft {:.0} ms",
            r.tg_tps_sd.unwrap_or(0.0),
            r.pp_tps_sd.unwrap_or(0.0),
            r.ttft_ms_mean.unwrap_or(0.0)
        ),
        _ => format!(
            "{}: {}",
            r.status,
            r.error
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        ),
    };
    let per_trial = elapsed.as_secs_f64() / event.done as f64;
    let eta = Duration::from_secs((per_trial * (event.total - event.done) as f64) as u64);
    format!(
        "[{}/{}] {} {} {} {} → {result}  ({:.1} s, ETA {})",
        event.done,
        event.total,
        r.trial_id,
        event.spec.model.name,
        event.spec.model.variant,
        plan::describe(&event.spec.params, swept),
        r.wall_s,
        humantime::format_duration(eta)
    )
}

/// Prints the summary and warnings, writes config.yaml for the best trial.
fn finish(
    config: &SweepConfig,
    rows: &[TrialRow],
    folder: &Path,
    probe: &ProbeReport,
    sweep: &SweepInfo,
    top: usize,
) -> anyhow::Result<()> {
    println!();
    print!("{}", summary::render(rows, &config.objective, top));
    for w in warnings::warnings(rows, Some(probe)) {
        println!("warning: {w}");
    }
    let output = folder.join("config.yaml");
    match export::choose(rows, &config.objective, None) {
        Ok(best) => {
            crate::cmd::export::write_config(best, sweep, &output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "\nRecommended configuration (trial {}): {}",
                best.trial_id,
                output.display()
            );
        }
        Err(why) => println!("\nNo config.yaml written: {why}"),
    }
    println!("Results: {}", folder.join(store::RESULTS_CSV).display());
    Ok(())
}
