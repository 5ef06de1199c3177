//! The confirmation round of `run`: the best feasible rows and the reference
//! trials measured again (`confirm`), or an earlier round's decision reused
//! when it measured the same trials under the current rules.

use super::Sweep;
use crate::config::{ConfirmMode, SweepConfig};
use crate::confirm::blocks::{self, Footprint};
use crate::confirm::{self, Confirmation, ResidentSetup};
use crate::plan::references::Reference;
use crate::protocol::TrialSpec;
use crate::report::progress::Progress;
use crate::runner::resident::ResidentRunner;
use crate::runner::{Children, Executor, ProcessExecutor};
use crate::store::row::TrialRow;
use crate::sweep::{RowFacts, SweepEnd};
use std::path::Path;

/// Runs the round, unless the sweep was stopped or ran out of time.
pub(super) fn confirm(sweep: &mut Sweep, children: &mut dyn Children) -> anyhow::Result<()> {
    let confirms = matches!(
        sweep.end,
        SweepEnd::Completed
            | SweepEnd::BudgetReached {
                out_of_time: false,
                ..
            }
    );
    // The round runs once, on one device: in the finishing run, not in
    // each worker.
    if !confirms || sweep.config.confirm.top == 0 || sweep.worker.is_some() {
        return Ok(());
    }
    let current = sweep.on_this_machine(sweep.rows_of(&sweep.planned_ids()));
    let round = Round {
        config: &sweep.config,
        folder: &sweep.folder,
        plan: &sweep.plan.trials,
        references: &sweep.references,
        facts: RowFacts {
            sweep_name: &sweep.config.sweep.name,
            build: &sweep.build,
            defaults: &sweep.probe.defaults,
            objective: &sweep.config.objective,
            noise_cv_max: sweep.config.noise_cv_max,
            facts: Some(&sweep.facts),
            origin: &sweep.origin,
            quiet: Some(sweep.config.quiet),
        },
    };
    let resident = (sweep.config.confirm.mode == ConfirmMode::Resident).then(|| Resident {
        exe: std::env::current_exe().ok(),
        test_fault: children.test_fault().is_some(),
        device_free_mib: sweep
            .probe
            .accelerators()
            .map(|d| d.memory_free_bytes as f64 / MIB)
            .reduce(|a, b| a + b),
    });
    let mut executor = ProcessExecutor {
        children,
        timeout: sweep.config.trial_timeout,
    };
    match round.run(&current, &mut executor, &mut sweep.progress, resident)? {
        Some(Confirmation::Decided(r)) => sweep.recommendation = Some(*r),
        Some(Confirmation::Interrupted) => sweep.end = SweepEnd::Interrupted,
        Some(Confirmation::Undecided { .. }) | None => {}
    }
    Ok(())
}

const MIB: f64 = 1024.0 * 1024.0;

/// What resident subjects need: this binary, to start them; whether the
/// children inject a test fault (then the rounds of whole trials run, where
/// the faults act); the GPUs' free memory.
struct Resident {
    exe: Option<std::path::PathBuf>,
    test_fault: bool,
    device_free_mib: Option<f64>,
}

/// What the round needs of the sweep.
struct Round<'a> {
    pub config: &'a SweepConfig,
    pub folder: &'a Path,
    pub plan: &'a [TrialSpec],
    pub references: &'a [Reference],
    /// What the round's rows record.
    pub facts: RowFacts<'a>,
}

impl Round<'_> {
    /// `None` when there is nothing to confirm (fewer than two feasible rows).
    fn run(
        &self,
        current: &[TrialRow],
        executor: &mut dyn Executor,
        progress: &mut Progress,
        resident: Option<Resident>,
    ) -> anyhow::Result<Option<Confirmation>> {
        let objective = &self.config.objective;
        let ranked: Vec<&TrialRow> = objective
            .rank(current)
            .into_iter()
            .map(|i| &current[i])
            .collect();
        let top: Vec<&str> = ranked
            .iter()
            .take(self.config.confirm.top)
            .map(|r| r.trial_id.as_str())
            .collect();
        // A reference that did not run has no runs to compare with.
        let mut measurable = Vec::new();
        for r in self.references {
            match current.iter().find(|row| row.trial_id == r.spec.trial_id) {
                Some(row) if row.is_ok() => measurable.push(r.clone()),
                Some(row) => progress.line(&format!(
                    "{} ({}) did not run ({}): the recommendation cannot be compared with it",
                    r.role.phrase(),
                    r.spec.trial_id,
                    row.status
                )),
                None => {}
            }
        }
        let reference_ids: Vec<&str> = measurable
            .iter()
            .map(|r| r.spec.trial_id.as_str())
            .collect();
        let earlier =
            confirm::read_current_recommendation(self.folder, &self.facts.origin.machine_id)
                .filter(|r| {
                    r.covers(&top)
                        && r.compares_with(&reference_ids)
                        && r.metric == self.facts.objective.metric.name()
                });
        if let Some(r) = earlier {
            progress.line(&format!(
                "confirmed earlier (same top {}): {}",
                top.len(),
                r.verdict
            ));
            return Ok(Some(Confirmation::Decided(Box::new(r))));
        }
        if ranked.len() < 2 {
            return Ok(None);
        }
        let spec_of = |id: &str| {
            self.plan
                .iter()
                .chain(self.references.iter().map(|r| &r.spec))
                .find(|t| t.trial_id == id)
                .cloned()
        };
        let mut runner = None;
        if let Some(resident) = resident {
            let subjects: Vec<&TrialRow> = ranked
                .iter()
                .take(self.config.confirm.top)
                .copied()
                .chain(
                    measurable
                        .iter()
                        .filter_map(|r| current.iter().find(|row| row.trial_id == r.spec.trial_id)),
                )
                .collect();
            let footprints: Vec<Footprint> = subjects.iter().map(|r| Footprint::of(r)).collect();
            let why_not = if resident.test_fault {
                Some("the children inject a test fault, which acts on whole trials".to_string())
            } else {
                blocks::cannot_be_resident(
                    objective,
                    self.config.trial_runtime.name(),
                    &footprints,
                    crate::machine::memory_available().map(|b| b as f64 / MIB),
                    resident.device_free_mib,
                )
            };
            match (why_not, resident.exe) {
                (None, Some(exe)) => {
                    runner = Some(ResidentRunner {
                        exe,
                        timeout: self.config.trial_timeout,
                    })
                }
                (why, _) => progress.line(&format!(
                    "confirmation in rounds of whole trials, not side by side: {}",
                    why.unwrap_or_else(|| "this executable cannot be found again".into())
                )),
            }
        }
        let setup = runner.as_mut().map(|runner| ResidentSetup {
            residents: runner,
            quiet: self.config.quiet,
            seed: self.config.sweep.seed,
        });
        let confirmation = confirm::confirm(
            &ranked,
            &measurable,
            &spec_of,
            executor,
            self.folder,
            &self.facts,
            &self.config.confirm,
            progress,
            setup,
        )?;
        match &confirmation {
            Confirmation::Decided(r) => progress.line(&format!("confirmed: {}", r.verdict)),
            Confirmation::Undecided { reason } => progress.line(&format!(
                "confirmation: {reason}; the sweep's ranking stands"
            )),
            Confirmation::Interrupted => {}
        }
        Ok(Some(confirmation))
    }
}
