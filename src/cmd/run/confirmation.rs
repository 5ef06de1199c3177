//! The confirmation round of `run`: the best feasible rows and the reference
//! trials measured again (`confirm`), or an earlier round's decision reused
//! when it measured the same trials.

use crate::config::SweepConfig;
use crate::confirm::{self, Confirmation};
use crate::knobs::EffectiveParams;
use crate::plan::references::Reference;
use crate::protocol::TrialSpec;
use crate::report::progress::Progress;
use crate::runner::ProcessExecutor;
use crate::store::row::TrialRow;
use std::path::Path;

/// What the round needs of the sweep.
pub struct Round<'a> {
    pub config: &'a SweepConfig,
    pub folder: &'a Path,
    pub plan: &'a [TrialSpec],
    pub references: &'a [Reference],
    pub defaults: &'a EffectiveParams,
}

impl Round<'_> {
    /// `None` when there is nothing to confirm (fewer than two feasible rows).
    pub fn run(
        &self,
        current: &[TrialRow],
        executor: &mut ProcessExecutor,
        progress: &mut Progress,
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
        let earlier = confirm::read_recommendation(self.folder)
            .filter(|r| r.covers(&top) && r.compares_with(&reference_ids));
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
        let confirmation = confirm::confirm(
            &ranked,
            &measurable,
            &spec_of,
            executor,
            self.folder,
            objective,
            self.defaults,
            &self.config.confirm,
            progress,
        )?;
        match &confirmation {
            Confirmation::Decided(r) => progress.line(&format!("confirmed: {}", r.verdict)),
            Confirmation::Undecided => progress.line(
                "confirmation: no candidate could be measured again; the sweep's ranking stands",
            ),
            Confirmation::Interrupted => {}
        }
        Ok(Some(confirmation))
    }
}
