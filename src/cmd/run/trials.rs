//! The trials of `run`: the reference trials first (the baseline and
//! llama.cpp's defaults, outside the budgets: every verdict needs them),
//! then the search under the budget.

use super::Sweep;
use crate::cli::RunArgs;
use crate::config::DriftSettings;
use crate::fit;
use crate::measure::server_trial;
use crate::plan::references::{self, Role};
use crate::protocol::TrialSpec;
use crate::runner::{Children, ProcessExecutor};
use crate::runtime::Runtime;
use crate::runtime::python::PythonRuntime;
use crate::runtime::server::ServerRuntime;
use crate::search::{self, GridStrategy};
use crate::store::{manifest, plan_file};
use crate::sweep::{self, SweepContext, SweepOptions};
use std::collections::HashSet;
use std::path::Path;

fn options(sweep: &Sweep, args: &RunArgs) -> SweepOptions {
    SweepOptions {
        retries: args.retries,
        max_trials: sweep.config.sweep.max_trials,
        max_time: sweep.config.sweep.max_time,
        drift: sweep.config.drift.clone(),
        noise_cv_max: sweep.config.noise_cv_max,
        wait_for_others: sweep.worker.is_none(),
        early_drop: sweep.config.early_drop,
        quiet: Some(sweep.config.quiet),
    }
}

/// Asks llama.cpp's `--fit` what it would change of llama-server's
/// defaults; where it changes something, that is one more reference.
pub(super) fn fit_reference(sweep: &mut Sweep, children: &mut dyn Children) -> anyhow::Result<()> {
    if !sweep.going() {
        return Ok(());
    }
    let Some(defaults) = sweep
        .references
        .iter()
        .find(|r| r.role == Role::Defaults)
        .cloned()
    else {
        return Ok(());
    };
    if sweep
        .unavailable
        .contains_key(&defaults.spec.model.identity)
    {
        return Ok(());
    }
    let params = defaults.spec.params.overlaid(&defaults.spec.forced);
    let Some(summary) = fit::ask(children, &defaults.spec.model, &params, &sweep.folder)? else {
        sweep.end = crate::sweep::SweepEnd::Interrupted;
        return Ok(());
    };
    sweep
        .progress
        .line(&format!("llama.cpp's --fit: {}", summary.in_sweep()));
    if summary.measured() {
        let reference = references::fit_reference(
            &sweep.config,
            &defaults,
            &summary.changed,
            format!("what llama.cpp's --fit picks: {}", summary.note),
        );
        if !sweep
            .store
            .recorded_ids()
            .contains(&reference.spec.trial_id)
        {
            sweep.progress.count_one_more();
        }
        sweep.references.push(reference);
        sweep.schedule_eta();
        plan_file::write(
            &sweep.folder,
            &super::prepare::plan_file_of(&sweep.config, &sweep.plan, &sweep.references),
        )?;
    }
    sweep.manifest.fit = Some(summary);
    manifest::write(&sweep.manifest_path(), &sweep.manifest)?;
    Ok(())
}

/// Measures the reference trials not recorded yet, each once.
pub(super) fn references(
    sweep: &mut Sweep,
    children: &mut dyn Children,
    args: &RunArgs,
) -> anyhow::Result<()> {
    if !sweep.going() {
        return Ok(());
    }
    let recorded = sweep.store.recorded_ids();
    let mut to_run: Vec<TrialSpec> = Vec::new();
    for r in &sweep.references {
        let id = &r.spec.trial_id;
        if !recorded.contains(id) && !to_run.iter().any(|s| &s.trial_id == id) {
            to_run.push(r.spec.clone());
        }
    }
    if to_run.is_empty() {
        return Ok(());
    }
    let every_trial = sweep.every_trial();
    let ctx = SweepContext {
        sweep_name: &sweep.config.sweep.name,
        build: &sweep.build,
        defaults: &sweep.probe.defaults,
        objective: &sweep.config.objective,
        plan: &every_trial,
        unavailable: sweep.unavailable.clone(),
        facts: Some(&sweep.facts),
        origin: &sweep.origin,
        claims: &sweep.claims,
    };
    let base = options(sweep, args);
    // The references are measured to the end: every verdict compares with
    // them.
    let options = SweepOptions {
        max_trials: None,
        max_time: None,
        early_drop: None,
        drift: DriftSettings {
            every: 0,
            ..base.drift.clone()
        },
        ..base
    };
    let mut executor = ProcessExecutor {
        children,
        timeout: sweep.config.trial_timeout,
    };
    sweep.end = sweep::run(
        &mut GridStrategy::new(&to_run, &HashSet::new()),
        &mut executor,
        &mut sweep.store,
        &ctx,
        &options,
        &mut sweep.progress,
        &mut sweep.watch,
    )?;
    Ok(())
}

/// Runs the sweep's search strategy under its budget.
pub(super) fn search(
    sweep: &mut Sweep,
    children: &mut dyn Children,
    args: &RunArgs,
) -> anyhow::Result<()> {
    if !sweep.going() {
        return Ok(());
    }
    // Built now, so it knows the rows the reference trials added.
    let trial_ids = sweep.trial_ids();
    let recorded: Vec<_> = sweep
        .rows_of(&trial_ids)
        .into_iter()
        .filter(|r| !r.to_measure_again())
        .collect();
    let mut strategy = search::build(
        sweep.config.sweep.strategy,
        &sweep.plan.trials,
        &recorded,
        &sweep.config.objective,
        &sweep.config.search,
        sweep.config.sweep.seed,
    );
    let ctx = SweepContext {
        sweep_name: &sweep.config.sweep.name,
        build: &sweep.build,
        defaults: &sweep.probe.defaults,
        objective: &sweep.config.objective,
        plan: &sweep.plan.trials,
        unavailable: sweep.unavailable.clone(),
        facts: Some(&sweep.facts),
        origin: &sweep.origin,
        claims: &sweep.claims,
    };
    let options = options(sweep, args);
    let mut executor = ProcessExecutor {
        children,
        timeout: sweep.config.trial_timeout,
    };
    sweep.end = sweep::run(
        strategy.as_mut(),
        &mut executor,
        &mut sweep.store,
        &ctx,
        &options,
        &mut sweep.progress,
        &mut sweep.watch,
    )?;
    if let Some(reason) = strategy.stop_reason() {
        sweep
            .progress
            .line(&format!("search stopped early: {reason}"));
    }
    Ok(())
}

/// With `runtime = "python"`: the interpreter must import llama_cpp, or the
/// sweep stops before its first trial with the driver's reason and log;
/// what it runs (llama-cpp-python's version, its llama.cpp, its offload)
/// is said and recorded in every row's build.
pub(super) fn check_python(sweep: &mut Sweep) -> anyhow::Result<()> {
    let Some(python) = sweep.config.trial_runtime.python().map(Path::to_path_buf) else {
        return Ok(());
    };
    let log = sweep.folder.join("logs/llama-cpp-python-probe.log");
    let info = PythonRuntime::new(&python)
        .probe(&log)
        .map_err(|e| anyhow::anyhow!("the trials run in {}: {e}", python.display()))?;
    sweep.progress.line(&format!(
        "trials run in the app's {} ({})",
        info.describe(),
        python.display()
    ));
    sweep
        .build
        .push_str(&format!("; trials in {}", info.describe()));
    Ok(())
}

/// With `runtime = "server"`: every flag the trials start llama-server
/// with must be one the binary's `--help` lists (llama.cpp renames flags
/// between versions), or the sweep stops before its first trial, naming
/// the flag, its knob and the binary's version. A binary whose help lists
/// no flag at all is not checked (its trials will say what it refuses).
pub(super) fn check_server_flags(sweep: &mut Sweep) -> anyhow::Result<()> {
    let Some(binary) = sweep.config.trial_runtime.server().map(Path::to_path_buf) else {
        return Ok(());
    };
    let server = ServerRuntime::new(&binary);
    let log = sweep.folder.join("logs/llama-server-help.log");
    let accepted = server
        .accepted_flags(&log)
        .map_err(|e| anyhow::anyhow!("{}", e.reason))?;
    if accepted.is_empty() {
        sweep.progress.line(&format!(
            "{}: its --help lists no flags, so the trials' flags are not checked against it",
            binary.display()
        ));
        return Ok(());
    }
    for spec in sweep.every_trial() {
        let (params, defaulted) = spec
            .params
            .overlaid(&spec.forced)
            .resolve(&sweep.probe.defaults);
        let args = server_trial::args_of(&spec, &params, &defaulted);
        let flags = args
            .iter()
            .map(|a| (a.flag, a.knob))
            .chain([("--host", None), ("--port", None)]);
        for (flag, knob) in flags {
            if accepted.contains(flag) {
                continue;
            }
            let version = server
                .probe(&log.with_extension("version.log"))
                .map(|info| info.version)
                .unwrap_or_else(|_| "its version unknown".into());
            let knob = knob
                .map(|k| format!(" (knob {})", k.name()))
                .unwrap_or_default();
            anyhow::bail!(
                "{} ({version}) does not accept {flag}{knob}, which trial {} is started with: \
                 llama.cpp renames flags between versions; use a llama-server built from a \
                 llama.cpp that has it, or leave the knob out of the sweep",
                binary.display(),
                spec.trial_id
            );
        }
    }
    Ok(())
}
