//! `llama-sweep run`: validate, plan, probe llama.cpp, prepare the output
//! folder, derive missing quantizations, run the trials under the budget,
//! then summarise and write config.yaml. Returns the exit status.

use super::run_setup;
use crate::cli::RunArgs;
use crate::config::{self, SweepConfig};
use crate::confirm::{self, Confirmation, Recommendation};
use crate::exit;
use crate::export;
use crate::models::{self, derive};
use crate::plan;
use crate::protocol::ProbeReport;
use crate::report::progress::Progress;
use crate::report::{summary, warnings};
use crate::runner::ProcessExecutor;
use crate::runner::child::ChildRunner;
use crate::search;
use crate::store::manifest;
use crate::store::plan_file::{self, PlanFile};
use crate::store::row::TrialRow;
use crate::store::{self, Store};
use crate::sweep::{self, SweepContext, SweepEnd, SweepOptions};
use anyhow::Context;
use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

pub fn run(args: &RunArgs) -> anyhow::Result<u8> {
    crate::interrupt::install();
    let mut config = config::load(&args.sweep)?;
    apply_flags(&mut config, args);
    let variants = models::plan_variants(&config)?;
    let plan = plan::build(&config, &variants);
    let runner = ChildRunner::current()?;

    // Everything that can refuse the sweep happens before the first write.
    let (probe, probe_log) = run_setup::probe(&runner)?;
    let folder = config.sweep.output_folder();
    let ready = run_setup::check_defaults(&config, &probe).and_then(|()| {
        if args.fresh {
            if let Some(aside) = run_setup::move_aside(&folder)? {
                eprintln!(
                    "llama-sweep: earlier results moved aside to {}",
                    aside.display()
                );
            }
        }
        run_setup::check_meaning(&config, &folder, args.allow_changed)?;
        Store::open(&folder)
    });
    let mut store = match ready {
        Ok(store) => store,
        Err(e) => {
            let _ = std::fs::remove_file(&probe_log);
            return Err(e);
        }
    };
    if std::fs::copy(&probe_log, folder.join(store::LOGS).join("probe.log")).is_ok() {
        let _ = std::fs::remove_file(&probe_log);
    }
    if let Some(note) = store.repair_note() {
        eprintln!("warning: {note}");
    }

    let recorded = store.recorded_ids();
    let mut manifest = run_setup::manifest(
        &config,
        &folder,
        &probe,
        plan.trials.len(),
        store.rows().len(),
    );
    manifest::write(&folder.join(store::MANIFEST), &manifest)?;
    store::write_atomically(&folder.join(store::SWEEP_COPY), config.source.as_bytes())?;
    plan_file::write(
        &folder,
        &PlanFile {
            sweep: config.sweep.name.clone(),
            trial_ids: plan.trials.iter().map(|t| t.trial_id.clone()).collect(),
            strategy: Some(config.sweep.strategy.name().into()),
            max_trials: config.sweep.max_trials,
        },
    )?;

    let planned_ids: HashSet<&str> = plan.trials.iter().map(|t| t.trial_id.as_str()).collect();
    let recorded_rows = rows_of_plan(&store, &planned_ids);
    let mut strategy = search::build(
        config.sweep.strategy,
        &plan.trials,
        &recorded_rows,
        &config.objective,
        &config.search,
        config.sweep.seed,
    );
    let left_in_plan = strategy.remaining().unwrap_or(0);
    let to_run = match config.sweep.max_trials {
        Some(max) => left_in_plan.min(max.saturating_sub(recorded_rows.len())),
        None => left_in_plan,
    };
    let mut progress = Progress::new(
        &folder,
        to_run,
        config.space.swept_axes(),
        &config.objective,
        std::io::stderr().is_terminal(),
    );
    progress.line(&format!(
        "llama-sweep: sweep {:?}, {} search: {} trials planned ({} already recorded, up to {to_run} to run) → {}",
        config.sweep.name,
        config.sweep.strategy.name(),
        plan.trials.len(),
        recorded_rows.len(),
        folder.display()
    ));
    progress.line(&format!("  {}", probe.llama_cpp_build));

    let needed: HashSet<String> = plan
        .trials
        .iter()
        .filter(|t| !recorded.contains(&t.trial_id))
        .map(|t| t.model.identity.clone())
        .collect();
    let logs = folder.join(store::LOGS);
    let unavailable = derive::derive_missing(&variants, &needed, &runner, &logs, &mut |line| {
        progress.line(&line)
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
        plan: &plan.trials,
        unavailable,
    };
    let options = SweepOptions {
        retries: args.retries,
        max_trials: config.sweep.max_trials,
        max_time: config.sweep.max_time,
        drift: config.drift.clone(),
        noise_cv_max: config.noise_cv_max,
    };
    let mut executor = ProcessExecutor {
        runner,
        timeout: config.trial_timeout,
    };
    let end = sweep::run(
        strategy.as_mut(),
        &mut executor,
        &mut store,
        &ctx,
        &options,
        &mut progress,
    )?;
    if let Some(reason) = strategy.stop_reason() {
        progress.line(&format!("search stopped early: {reason}"));
    }

    // The confirmation round, unless the sweep was stopped or ran out of time.
    let mut end = end;
    let confirms = matches!(
        end,
        SweepEnd::Completed
            | SweepEnd::BudgetReached {
                out_of_time: false,
                ..
            }
    );
    let mut recommendation = None;
    if confirms && config.confirm.top > 0 {
        let current = rows_of_plan(&store, &planned_ids);
        let ranked: Vec<&TrialRow> = config
            .objective
            .rank(&current)
            .into_iter()
            .map(|i| &current[i])
            .collect();
        let top: Vec<&str> = ranked
            .iter()
            .take(config.confirm.top)
            .map(|r| r.trial_id.as_str())
            .collect();
        let earlier = confirm::read_recommendation(&folder).filter(|r| r.covers(&top));
        if let Some(r) = earlier {
            progress.line(&format!(
                "confirmed earlier (same top {}): {}",
                top.len(),
                r.verdict
            ));
            recommendation = Some(r);
        } else if ranked.len() >= 2 {
            let spec_of = |id: &str| plan.trials.iter().find(|t| t.trial_id == id).cloned();
            match confirm::confirm(
                &ranked,
                &spec_of,
                &mut executor,
                &folder,
                &config.objective,
                &probe.defaults,
                &config.confirm,
                &mut progress,
            )? {
                Confirmation::Decided(r) => {
                    progress.line(&format!("confirmed: {}", r.verdict));
                    recommendation = Some(r);
                }
                Confirmation::Undecided => {
                    progress.line("confirmation: no candidate could be measured again; the sweep's ranking stands")
                }
                Confirmation::Interrupted => end = SweepEnd::Interrupted,
            }
        }
    }
    progress.finish();

    manifest.trials_recorded = store.rows().len();
    manifest.updated_at = sweep::now_rfc3339();
    manifest::write(&folder.join(store::MANIFEST), &manifest)?;

    // Rows of this plan only: the folder may also hold rows of an earlier
    // version of the sweep file, measured under other settings.
    let current = rows_of_plan(&store, &planned_ids);
    if current.len() < store.rows().len() {
        eprintln!(
            "note: {} rows in {} belong to an earlier version of the sweep file; they are kept but not ranked",
            store.rows().len() - current.len(),
            folder.display()
        );
    }
    let recommended = finish(
        &config,
        &current,
        &folder,
        &probe,
        &manifest.sweep,
        recommendation.as_ref(),
        args.top,
    )?;
    let left = plan.trials.len() - current.len();
    let resume = format!("llama-sweep run {}", args.sweep.display());
    Ok(match end {
        SweepEnd::Interrupted => {
            println!(
                "Interrupted: {} of {} trials recorded, {left} left (the running trial was discarded). Resume with: {resume}",
                current.len(),
                plan.trials.len()
            );
            exit::INTERRUPTED
        }
        SweepEnd::BudgetReached { reason, left, .. } => {
            println!(
                "Budget reached ({reason}): {left} trials not run. Run again to go on: {resume}"
            );
            exit::BUDGET_REACHED
        }
        SweepEnd::Completed if recommended => exit::OK,
        SweepEnd::Completed => exit::NOTHING_FEASIBLE,
    })
}

/// The rows of the current plan, in recording order.
fn rows_of_plan(store: &Store, planned: &HashSet<&str>) -> Vec<TrialRow> {
    store
        .rows()
        .iter()
        .filter(|r| planned.contains(r.trial_id.as_str()))
        .cloned()
        .collect()
}

/// Command-line budgets override the sweep file's.
fn apply_flags(config: &mut SweepConfig, args: &RunArgs) {
    if let Some(n) = args.max_trials {
        config.sweep.max_trials = Some(n);
    }
    if let Some(h) = args.max_hours {
        config.sweep.max_time = Some(Duration::from_secs_f64(h * 3600.0));
    }
}

/// Prints the summary and warnings, writes config.yaml for the best trial.
/// Returns whether a configuration was recommended.
fn finish(
    config: &SweepConfig,
    rows: &[TrialRow],
    folder: &Path,
    probe: &ProbeReport,
    sweep: &manifest::SweepInfo,
    recommendation: Option<&Recommendation>,
    top: usize,
) -> anyhow::Result<bool> {
    println!();
    print!("{}", summary::render(rows, &config.objective, top));
    for w in warnings::warnings(rows, Some(probe)) {
        println!("warning: {w}");
    }
    let output = folder.join("config.yaml");
    // The confirmation round's winner, else the best row.
    let wanted = recommendation.map(|r| r.trial_id.as_str());
    let recommended = match export::choose(rows, &config.objective, wanted) {
        Ok(best) => {
            crate::cmd::export::write_config(best, sweep, recommendation, &output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "\nRecommended configuration (trial {}): {}",
                best.trial_id,
                output.display()
            );
            true
        }
        Err(why) => {
            println!("\nNo config.yaml written: {why}");
            false
        }
    };
    println!("Results: {}", folder.join(store::RESULTS_CSV).display());
    Ok(recommended)
}
