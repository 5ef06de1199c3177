//! The last phase of `run`: update the manifest, print the summary and
//! warnings, write config.yaml for the winner and report.html, and say how
//! the sweep ended, as a line and as the exit status.

use super::Sweep;
use crate::cli::RunArgs;
use crate::exit;
use crate::export;
use crate::report::{summary, warnings};
use crate::store::row::TrialRow;
use crate::store::{self, manifest};
use crate::sweep::SweepEnd;
use anyhow::Context;

pub(super) fn finish(mut sweep: Sweep, args: &RunArgs) -> anyhow::Result<u8> {
    sweep.progress.finish();
    sweep.manifest.trials_recorded = sweep.store.rows().len();
    sweep.manifest.updated_at = crate::clock::now_rfc3339();
    manifest::write(&sweep.manifest_path(), &sweep.manifest)?;

    if let Some(worker) = &sweep.worker {
        return Ok(worker_end(&sweep, worker));
    }
    // Rows of this plan only: the folder may also hold rows of an earlier
    // version of the sweep file, measured under other settings.
    let current = sweep.rows_of(&sweep.planned_ids());
    if current.len() < sweep.store.rows().len() {
        eprintln!(
            "note: {} rows in {} belong to an earlier version of the sweep file; they are kept but not ranked",
            sweep.store.rows().len() - current.len(),
            sweep.folder.display()
        );
    }
    let current = this_machine(&sweep, current);
    let recommended = recommend(&sweep, &current, args.top)?;
    let recorded_in_plan = sweep.rows_of(&sweep.trial_ids()).len();
    let planned = sweep.plan.trials.len();
    let left = planned - recorded_in_plan.min(planned);
    let resume = format!("llama-sweep run {}", args.sweep.display());
    Ok(match sweep.end {
        SweepEnd::Interrupted => {
            println!(
                "Interrupted: {recorded_in_plan} of {planned} trials recorded, {left} left (the running trial was discarded). Resume with: {resume}"
            );
            exit::INTERRUPTED
        }
        SweepEnd::BudgetReached { reason, left, .. } => {
            println!(
                "Budget reached ({reason}): {left} trials not run. Run again to go on: {resume}"
            );
            exit::BUDGET_REACHED
        }
        SweepEnd::SystematicFailure(d) => {
            println!("Stopped: {}.", d.text);
            exit::SYSTEMATIC_FAILURE
        }
        SweepEnd::MachineBusy(why) => {
            println!(
                "Stopped: {why}. {recorded_in_plan} of {planned} trials recorded, {left} left; \
                 the trials measured while it was busy run again too. Resume when the machine is \
                 quiet: {resume}"
            );
            exit::MACHINE_BUSY
        }
        SweepEnd::BackendBroken => {
            let logs: Vec<String> = sweep
                .backend
                .iter()
                .flat_map(|b| b.broken())
                .map(|v| v.attempts[0].log.clone())
                .collect();
            println!(
                "Stopped before any trial: llama.cpp's kernels failed the backend self-test for every \
                 model variant, with the sweep's settings and with every fallback tried (see {}). \
                 `llama-sweep doctor` shows what works on this machine.",
                logs.join(", ")
            );
            exit::BACKEND_BROKEN
        }
        SweepEnd::Completed if recommended => exit::OK,
        SweepEnd::Completed => exit::NOTHING_FEASIBLE,
    })
}

/// Prints the summary and warnings, writes config.yaml for the best trial
/// and report.html. Returns whether a configuration was recommended.
fn recommend(sweep: &Sweep, rows: &[TrialRow], top: usize) -> anyhow::Result<bool> {
    let config = &sweep.config;
    println!();
    print!("{}", summary::render(rows, &config.objective, top));
    for w in warnings::warnings(rows, Some(&sweep.probe)) {
        println!("warning: {w}");
    }
    for line in sweep.backend.iter().flat_map(|b| b.lines()) {
        println!("warning: {line}");
    }
    let output = sweep.folder.join("config.yaml");
    // The confirmation round's winner, else the best row.
    let recommendation = sweep.recommendation.as_ref();
    let wanted = recommendation.map(|r| r.trial_id.as_str());
    let recommended = match export::choose(rows, &config.objective, wanted) {
        Ok(best) => {
            if let Some(w) = warnings::ceiling_warning(best, &sweep.manifest) {
                println!("warning: {w}");
            }
            crate::cmd::export::write_config(best, &sweep.manifest, recommendation, &sweep.folder)
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "\nRecommended configuration (trial {}): {}",
                best.trial_id,
                output.display()
            );
            println!("{}", crate::cmd::export::app_line(&sweep.folder, best));
            true
        }
        Err(why) => {
            println!("\nNo config.yaml written: {why}");
            false
        }
    };
    // The report is a view of what is stored: failing to draw it loses
    // nothing, and `llama-sweep report` can draw it again.
    match crate::report::write(&sweep.folder, None) {
        Ok(written) => println!("Report: {}", written.html.display()),
        Err(e) => println!(
            "warning: report.html not written ({e:#}); run `llama-sweep report {}` to try again",
            sweep.folder.display()
        ),
    }
    let results = sweep.folder.join(store::RESULTS_CSV);
    if crate::workers::rows_files(&sweep.folder).is_empty() {
        println!("Results: {}", results.display());
    } else {
        println!(
            "Results: {} and the workers' {} (all of them in {})",
            results.display(),
            sweep.folder.join("workers/*.csv").display(),
            sweep.folder.join(store::RESULTS_PARQUET).display()
        );
    }
    Ok(recommended)
}

/// How a worker ends: what it recorded and what is left for others. The
/// summary, config.yaml and report.html come from the finishing run.
fn worker_end(sweep: &Sweep, worker: &str) -> u8 {
    let mine = sweep
        .store
        .rows()
        .iter()
        .filter(|r| r.worker.as_deref() == Some(worker))
        .count();
    let recorded_in_plan = sweep.rows_of(&sweep.trial_ids()).len();
    let planned = sweep.plan.trials.len();
    let status = match &sweep.end {
        SweepEnd::Completed => exit::OK,
        SweepEnd::Interrupted => exit::INTERRUPTED,
        SweepEnd::BudgetReached { .. } => exit::BUDGET_REACHED,
        SweepEnd::SystematicFailure(_) => exit::SYSTEMATIC_FAILURE,
        SweepEnd::BackendBroken => exit::BACKEND_BROKEN,
        SweepEnd::MachineBusy(_) => exit::MACHINE_BUSY,
    };
    let state = if status == exit::OK {
        "finished"
    } else {
        "stopped"
    };
    let _ = sweep.write_worker_state(state, mine);
    println!(
        "Worker {worker}: {mine} trials recorded by this worker in all; {recorded_in_plan} of {planned} \
         trials of the plan recorded by every worker. The report and config.yaml come from \
         `llama-sweep run` once the workers are done."
    );
    status
}

/// Rows measured on other hardware (other workers' machines) are not ranked
/// with this machine's (the store leaves them out): the summary, the
/// confirmation's winner and config.yaml are this machine's; `status` and
/// the rows say what else there is.
fn this_machine(sweep: &Sweep, rows: Vec<TrialRow>) -> Vec<TrialRow> {
    let here = sweep.origin.machine_id.as_str();
    let elsewhere: Vec<&TrialRow> = sweep
        .store
        .left_out()
        .iter()
        .filter(|r| r.machine_id.as_deref().is_some_and(|m| m != here))
        .collect();
    if !elsewhere.is_empty() {
        let others: std::collections::BTreeSet<&str> = elsewhere
            .iter()
            .filter_map(|r| r.machine_id.as_deref())
            .collect();
        eprintln!(
            "note: {} rows were measured on other machines ({}); they are not ranked against \
             this machine's ({here}): the summary and config.yaml are for this one. Run the \
             finishing `llama-sweep run` on each kind of machine for its own.",
            elsewhere.len(),
            others.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    sweep.on_this_machine(rows)
}
