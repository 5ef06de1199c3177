//! The part of a strategy that works on candidate indices, so the same code
//! drives a live sweep (candidates are planned trials) and a replay
//! (candidates are rows of a recorded grid).

use crate::objective::{Direction, Objective};
use crate::stats::RatioInterval;
use crate::store::row::TrialRow;

/// What a strategy learns from one trial.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// Measured. `score` is the objective on a log scale, oriented so that
    /// higher is better (ln tg_tps, or −ln ttft_ms); `feasible` says whether
    /// the constraints were met.
    Measured { score: f64, feasible: bool },
    /// No measurement (failed, oom, crashed, timeout, invalid): it teaches
    /// where the infeasible region is, never a value.
    Failed,
}

/// The log-scale, higher-is-better score of a raw objective value.
pub fn score(objective: &Objective, value: f64) -> f64 {
    orient(objective, value.max(1e-12).ln())
}

/// A log-scale value (or difference) turned so that higher is better.
pub fn orient(objective: &Objective, log_value: f64) -> f64 {
    match objective.direction {
        Direction::Maximize => log_value,
        Direction::Minimize => -log_value,
    }
}

/// A ratio of the metric (a over b) turned so that above 1 means a is
/// better, whatever the objective's direction.
pub fn orient_ratio(objective: &Objective, r: RatioInterval) -> RatioInterval {
    match objective.direction {
        Direction::Maximize => r,
        Direction::Minimize => r.inverted(),
    }
}

/// What a recorded row teaches.
pub fn observation_of(objective: &Objective, row: &TrialRow) -> Observation {
    if row.status == crate::runner::TrialStatus::Dropped {
        // Beaten, but measured: where it is worse is worth knowing.
        return match observed(objective, row) {
            Some((value, feasible)) => Observation::Measured {
                score: score(objective, value),
                feasible,
            },
            None => Observation::Failed,
        };
    }
    match objective.score(row) {
        Some(value) if row.is_ok() => Observation::Measured {
            score: score(objective, value),
            feasible: objective.violations(row).is_empty(),
        },
        _ => Observation::Failed,
    }
}

/// What a dropped trial's runs say, for a search to learn from: the mean
/// of its objective's runs and whether the runs it made of the
/// constraints' quantities keep within them. `None` when it made no run
/// of the objective's test.
fn observed(objective: &Objective, row: &TrialRow) -> Option<(f64, bool)> {
    let mean = |m: crate::objective::Metric| {
        let runs = row.samples_of(m);
        (!runs.is_empty()).then(|| runs.iter().sum::<f64>() / runs.len() as f64)
    };
    let value = mean(objective.metric)?;
    let within = objective
        .constraints
        .iter()
        .filter(|c| crate::early_drop::Test::of(c.metric).is_some())
        .all(|c| mean(c.metric).is_none_or(|v| c.holds(Some(v))));
    Some((value, within))
}

/// A search over a fixed set of candidates.
pub trait SearchCore {
    /// The next candidate to measure, or `None` when done.
    fn propose(&mut self) -> Option<usize>;
    fn observe(&mut self, index: usize, observation: Observation);
    /// Candidates not measured yet.
    fn remaining(&self) -> usize;
    /// Why the search stopped early, if it did.
    fn stop_reason(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::{Bound, Constraint, Metric};
    use crate::runner::{TrialStatus, mock};
    use crate::test_support::row;

    #[test]
    fn rows_become_oriented_log_scores_and_failures_carry_no_value() {
        let maximize = Objective::default();
        let ok = row("a", &mock::measured(100.0, 400.0));
        assert_eq!(
            observation_of(&maximize, &ok),
            Observation::Measured {
                score: 100f64.ln(),
                feasible: true
            }
        );
        let minimize = Objective {
            metric: Metric::TtftMs,
            direction: Direction::Minimize,
            constraints: vec![Constraint {
                metric: Metric::TgTps,
                bound: Bound::AtLeast(500.0),
            }],
        };
        match observation_of(&minimize, &ok) {
            Observation::Measured { score, feasible } => {
                assert!(score < 0.0 && !feasible);
            }
            other => panic!("{other:?}"),
        }
        let oom = row("b", &mock::failed(TrialStatus::Oom, "x"));
        assert_eq!(observation_of(&maximize, &oom), Observation::Failed);
    }
}
