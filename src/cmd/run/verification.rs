//! The phase after the confirmation round when the sweep file names the
//! app's runtimes (`[app]`): the recommended configuration and the baseline
//! measured there beside llama-sweep's own runtime (`verify`). A runtime
//! that cannot run them is reported, never the end of the run: the sweep's
//! results and config.yaml stand either way.

use super::Sweep;
use crate::runner::child::ChildRunner;
use crate::runtime::sweep_child::SweepChild;
use crate::sweep::SweepEnd;
use crate::verify::{self, VerifySettings};

pub(super) fn verify(sweep: &mut Sweep) -> anyhow::Result<()> {
    if sweep.config.app.runtimes.is_empty() || sweep.worker.is_some() || !sweep.going() {
        return Ok(());
    }
    let rows = sweep.on_this_machine(sweep.rows_of(&sweep.planned_ids()));
    let recommended = sweep.recommendation.as_ref().map(|r| r.trial_id.clone());
    let baseline = sweep
        .references
        .iter()
        .find(|r| r.role == crate::plan::references::Role::Baseline)
        .map(|r| r.spec.trial_id.clone());
    let Ok(subjects) = verify::subjects(
        &rows,
        &sweep.config.objective,
        recommended.as_deref(),
        baseline.as_deref(),
    ) else {
        // Nothing feasible: finish says so; there is nothing to verify.
        return Ok(());
    };
    let (runtimes, left_out) = verify::left_to_verify(
        subjects[0].row,
        &sweep.config.app.runtimes,
        &sweep.config.trial_runtime,
    );
    if !left_out.is_empty() {
        println!();
        for line in &left_out {
            println!("{line}");
        }
    }
    if runtimes.is_empty() {
        sweep.manifest.app_verification = Some(crate::store::manifest::AppVerification {
            verified_at: crate::clock::now_rfc3339(),
            runtimes: Vec::new(),
            lines: left_out,
        });
        return Ok(());
    }
    let settings = VerifySettings {
        rounds: sweep.config.app.rounds,
        repetitions: sweep
            .config
            .app
            .repetitions
            .unwrap_or(sweep.config.workload.repetitions)
            .max(2),
        timeout: sweep
            .config
            .app
            .timeout
            .unwrap_or(sweep.config.trial_timeout),
        seed: sweep.config.sweep.seed,
    };
    let runtime = SweepChild::new(ChildRunner::current()?, sweep.probe.clone());
    let folder = sweep.folder.clone();
    super::super::verify::verify_and_record(
        &subjects,
        &runtime,
        &runtimes,
        &settings,
        &folder,
        &mut sweep.manifest,
    )?;
    if crate::interrupt::requested() {
        sweep.end = SweepEnd::Interrupted;
    }
    Ok(())
}
