//! Which trial to run next. A [`Strategy`] proposes trials one at a time and
//! observes each stored row, failures included:
//!
//! - `grid`: every planned trial, in plan order;
//! - `random`: planned trials in a seeded random order;
//! - `bayes`: a Gaussian-process surrogate and expected improvement weighted
//!   by the probability of feasibility (see `bayes`).
//!
//! All are deterministic for a seed and resume from rows already recorded.
//! The random and Bayesian strategies work on candidate indices
//! ([`core::SearchCore`]), so `replay` can run them against a recorded grid.

pub mod acquisition;
pub mod bayes;
pub mod core;
pub mod encode;
mod gp;
mod grid;
pub mod random;
pub mod replay;
pub mod replay_confirm;
pub mod replay_drops;
pub mod replay_repetitions;

pub use grid::GridStrategy;

use crate::config::{BayesSettings, StrategyKind};
use crate::objective::Objective;
use crate::protocol::TrialSpec;
use crate::store::row::TrialRow;
use bayes::BayesCore;
use core::{SearchCore, observation_of};
use random::RandomCore;
use std::collections::{HashMap, HashSet};

pub trait Strategy {
    /// The next trial to run, or `None` when the strategy is done.
    fn propose(&mut self) -> Option<TrialSpec>;
    /// The recorded outcome of a proposed trial.
    fn observe(&mut self, spec: &TrialSpec, row: &TrialRow);
    /// Trials the strategy could still propose.
    fn remaining(&self) -> Option<usize>;
    /// Why it stopped before running out of trials, if it did.
    fn stop_reason(&self) -> Option<String> {
        None
    }
}

/// Builds a core over `x` (encoded candidates) for `kind`.
pub fn core_for(
    kind: StrategyKind,
    x: Vec<Vec<f64>>,
    groups: Vec<usize>,
    settings: &BayesSettings,
    seed: u64,
) -> Box<dyn SearchCore> {
    match kind {
        StrategyKind::Bayes => Box::new(BayesCore::new(x, groups, settings.clone(), seed)),
        StrategyKind::Random => Box::new(RandomCore::new(x.len(), seed)),
        StrategyKind::Grid => Box::new(RandomCore::in_order(x.len())),
    }
}

/// A core-driven strategy over the planned trials.
pub struct PlannedSearch {
    specs: Vec<TrialSpec>,
    index: HashMap<String, usize>,
    core: Box<dyn SearchCore>,
    objective: Objective,
}

impl PlannedSearch {
    /// Encodes the planned trials and teaches the core the rows already
    /// recorded (resume).
    pub fn new(
        kind: StrategyKind,
        trials: &[TrialSpec],
        recorded: &[TrialRow],
        objective: &Objective,
        settings: &BayesSettings,
        seed: u64,
    ) -> Self {
        let points: Vec<encode::Point> = trials.iter().map(encode::point_of_spec).collect();
        let encoder = encode::Encoder::fit(&points);
        let x = points.iter().map(|p| encoder.encode(p)).collect();
        let mut core = core_for(kind, x, encoder.groups(), settings, seed);
        let index: HashMap<String, usize> = trials
            .iter()
            .enumerate()
            .map(|(i, t)| (t.trial_id.clone(), i))
            .collect();
        for row in recorded {
            if let Some(&i) = index.get(&row.trial_id) {
                core.observe(i, observation_of(objective, row));
            }
        }
        PlannedSearch {
            specs: trials.to_vec(),
            index,
            core,
            objective: objective.clone(),
        }
    }
}

impl Strategy for PlannedSearch {
    fn propose(&mut self) -> Option<TrialSpec> {
        self.core.propose().map(|i| self.specs[i].clone())
    }

    fn observe(&mut self, spec: &TrialSpec, row: &TrialRow) {
        if let Some(&i) = self.index.get(&spec.trial_id) {
            self.core.observe(i, observation_of(&self.objective, row));
        }
    }

    fn remaining(&self) -> Option<usize> {
        Some(self.core.remaining())
    }

    fn stop_reason(&self) -> Option<String> {
        self.core.stop_reason()
    }
}

/// The strategy of a sweep, resuming from `recorded`.
pub fn build(
    kind: StrategyKind,
    trials: &[TrialSpec],
    recorded: &[TrialRow],
    objective: &Objective,
    settings: &BayesSettings,
    seed: u64,
) -> Box<dyn Strategy> {
    match kind {
        StrategyKind::Grid => {
            let ids: HashSet<String> = recorded.iter().map(|r| r.trial_id.clone()).collect();
            Box::new(GridStrategy::new(trials, &ids))
        }
        _ => Box::new(PlannedSearch::new(
            kind, trials, recorded, objective, settings, seed,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::Params;
    use crate::runner::mock;
    use crate::test_support::{row, spec};

    fn trials(n: usize) -> Vec<TrialSpec> {
        (0..n)
            .map(|i| {
                let mut s = spec(&format!("t{i}"));
                s.params = Params::default().with(crate::knobs::N_THREADS, (1 + i as i32).into());
                s
            })
            .collect()
    }

    #[test]
    fn searches_skip_recorded_trials_and_are_deterministic() {
        let plan = trials(10);
        let recorded = vec![row("t3", &mock::measured(10.0, 10.0))];
        for kind in [
            StrategyKind::Grid,
            StrategyKind::Random,
            StrategyKind::Bayes,
        ] {
            let settings = BayesSettings::default();
            let order = |seed| {
                let mut s = build(
                    kind,
                    &plan,
                    &recorded,
                    &Objective::default(),
                    &settings,
                    seed,
                );
                let mut ids = Vec::new();
                while let Some(t) = s.propose() {
                    let r = row(
                        &t.trial_id,
                        &mock::measured(
                            10.0 + t.params.int(crate::knobs::N_THREADS).unwrap() as f64,
                            10.0,
                        ),
                    );
                    s.observe(&t, &r);
                    ids.push(t.trial_id);
                }
                ids
            };
            let a = order(1);
            assert_eq!(a.len(), 9, "{kind:?}");
            assert!(!a.contains(&"t3".to_string()), "{kind:?}");
            assert_eq!(a, order(1), "{kind:?} is deterministic");
        }
    }

    /// A made-up response with a peak and a failing corner.
    fn measure(t: &TrialSpec) -> TrialRow {
        let n = t.params.int(crate::knobs::N_THREADS).unwrap() as f64;
        if n > 36.0 {
            row(
                &t.trial_id,
                &mock::failed(crate::runner::TrialStatus::Oom, "out of memory"),
            )
        } else {
            row(
                &t.trial_id,
                &mock::measured(100.0 - (n - 23.0).powi(2) / 10.0, 10.0),
            )
        }
    }

    #[test]
    fn a_resumed_search_proposes_what_the_uninterrupted_one_would_have() {
        let plan = trials(40);
        for kind in [StrategyKind::Random, StrategyKind::Bayes] {
            let settings = BayesSettings::default();
            let mut recorded = Vec::new();
            let mut whole = build(kind, &plan, &[], &Objective::default(), &settings, 5);
            for _ in 0..16 {
                let t = whole.propose().unwrap();
                let r = measure(&t);
                whole.observe(&t, &r);
                recorded.push(r);
            }
            // Killed after 10 trials, then started again from the rows.
            let mut resumed = build(
                kind,
                &plan,
                &recorded[..10],
                &Objective::default(),
                &settings,
                5,
            );
            for expected in &recorded[10..] {
                let t = resumed.propose().unwrap();
                assert_eq!(t.trial_id, expected.trial_id, "{kind:?}");
                resumed.observe(&t, expected);
            }
        }
    }
}
