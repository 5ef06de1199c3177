//! What went wrong in a candidate's confirmation runs: a run that failed (out
//! of memory, crashed, ...), one that measured nothing, one that broke a
//! constraint of the objective. The rule: a candidate faulty in more than
//! half of its runs is disqualified; one faulty in any run ranks behind every
//! candidate that ran cleanly. Every fault is described for the verdict.

use crate::objective::{Bound, Constraint, Measured, Metric, Objective};
use crate::runner::TrialStatus;
use crate::store::row::TrialRow;

/// Where a candidate stands after its confirmation runs, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Every run measured and met every constraint.
    Clean,
    /// Some runs, at most half, were faulty.
    Faulty,
    /// Most runs were faulty (or there were none): it cannot be recommended.
    Disqualified,
}

/// One way one run went wrong.
#[derive(Debug, Clone, PartialEq)]
enum Fault {
    Failed(TrialStatus),
    /// Ran, but without a value of the objective's metric.
    Unmeasured(Metric),
    /// Measured `value` (none: not measured), outside the constraint.
    Broke(Constraint, Option<f64>),
}

/// The faults of one candidate's confirmation runs, by round.
#[derive(Debug, Clone, Default)]
pub struct RunRecord {
    runs: usize,
    faults: Vec<(usize, Fault)>,
}

impl RunRecord {
    /// Records the run of `round` (from 1).
    pub fn record(&mut self, round: usize, row: &TrialRow, objective: &Objective) {
        self.record_figures(round, row.status, objective.score(row), objective, &|m| {
            row.mean_of(m)
        });
    }

    /// Records the run of `round` (from 1) that ended with `status`,
    /// measured `score` of the objective and `value_of` each constrained
    /// metric (a resident subject's block, with its sweep row's figures
    /// for what a block does not measure).
    pub fn record_figures(
        &mut self,
        round: usize,
        status: TrialStatus,
        score: Option<f64>,
        objective: &Objective,
        value_of: &dyn Fn(Metric) -> Option<f64>,
    ) {
        self.runs += 1;
        if status != TrialStatus::Ok {
            self.faults.push((round, Fault::Failed(status)));
            return;
        }
        if score.is_none() {
            self.faults
                .push((round, Fault::Unmeasured(objective.metric)));
        }
        for c in &objective.constraints {
            let value = value_of(c.metric);
            if !c.holds(value) {
                self.faults.push((round, Fault::Broke(*c, value)));
            }
        }
    }

    /// The runs with at least one fault.
    fn faulty_runs(&self) -> usize {
        let mut rounds: Vec<usize> = self.faults.iter().map(|(round, _)| *round).collect();
        rounds.dedup();
        rounds.len()
    }

    pub fn standing(&self) -> Standing {
        let faulty = self.faulty_runs();
        if self.runs == 0 || 2 * faulty > self.runs {
            Standing::Disqualified
        } else if faulty > 0 {
            Standing::Faulty
        } else {
            Standing::Clean
        }
    }

    pub fn is_clean(&self) -> bool {
        self.standing() == Standing::Clean
    }

    /// What went wrong, as a predicate: "ran out of memory in rounds 2 and 3
    /// of 3 and broke ttft_ms_p95 ≤ 500 ms in round 1 of 3 (measured 612.0
    /// at worst)"; empty for a clean record.
    pub fn describe(&self) -> String {
        let mut kinds: Vec<&Fault> = Vec::new();
        for (_, fault) in &self.faults {
            if !kinds.iter().any(|k| same_kind(k, fault)) {
                kinds.push(fault);
            }
        }
        let clauses: Vec<String> = kinds
            .into_iter()
            .map(|kind| {
                let of_kind: Vec<&(usize, Fault)> = self
                    .faults
                    .iter()
                    .filter(|(_, f)| same_kind(f, kind))
                    .collect();
                let rounds: Vec<usize> = of_kind.iter().map(|(round, _)| *round).collect();
                let when = format!("in {} of {}", rounds_phrase(&rounds), self.runs);
                match kind {
                    Fault::Failed(status) => format!("{} {when}", failure_phrase(*status)),
                    Fault::Unmeasured(metric) => format!("measured no {metric} {when}"),
                    Fault::Broke(c, _) => {
                        let values = of_kind.iter().filter_map(|(_, f)| match f {
                            Fault::Broke(_, v) => *v,
                            _ => None,
                        });
                        format!("broke {c} {when} ({})", worst_phrase(c, values))
                    }
                }
            })
            .collect();
        clauses.join(" and ")
    }
}

/// Whether two faults are of the same kind (the same status, the same
/// constraint), whatever they measured.
fn same_kind(a: &Fault, b: &Fault) -> bool {
    match (a, b) {
        (Fault::Broke(c, _), Fault::Broke(d, _)) => c == d,
        _ => a == b,
    }
}

fn failure_phrase(status: TrialStatus) -> &'static str {
    match status {
        TrialStatus::Oom => "ran out of memory",
        TrialStatus::Timeout => "timed out",
        TrialStatus::Crashed => "crashed",
        TrialStatus::Invalid => "left no readable result",
        TrialStatus::Dropped => "was dropped",
        TrialStatus::Busy => "was measured while the machine was busy",
        TrialStatus::Failed | TrialStatus::Ok => "failed",
    }
}

/// "round 2", "rounds 2 and 3", "rounds 1, 2 and 3".
fn rounds_phrase(rounds: &[usize]) -> String {
    match rounds {
        [] => "no round".into(),
        [one] => format!("round {one}"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(usize::to_string).collect();
            format!("rounds {} and {last}", init.join(", "))
        }
    }
}

/// The value furthest outside the bound: "measured 700.0 at worst".
fn worst_phrase(c: &Constraint, values: impl Iterator<Item = f64>) -> String {
    let worst = values.reduce(|a, b| match c.bound {
        Bound::AtMost(_) => a.max(b),
        Bound::AtLeast(_) => a.min(b),
    });
    match worst {
        Some(v) if c.metric == Metric::Kld => format!("measured {v:.4} at worst"),
        Some(v) if c.metric.is_quality() => format!("measured {v:.2} at worst"),
        Some(v) => format!("measured {v:.1} at worst"),
        None => "not measured".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::row;

    fn at_most_500_ms_p95() -> Objective {
        Objective {
            constraints: vec![Constraint {
                metric: Metric::TtftMsP95,
                bound: Bound::AtMost(500.0),
            }],
            ..Objective::default()
        }
    }

    /// A run whose time to first token is `ttft_ms`.
    fn run_with_ttft(ttft_ms: f64) -> TrialRow {
        row("a", &mock::measured(100.0, 256_000.0 / ttft_ms))
    }

    fn oom() -> TrialRow {
        row("a", &mock::failed(TrialStatus::Oom, "out of memory"))
    }

    #[test]
    fn clean_faulty_and_disqualified_by_how_many_runs_went_wrong() {
        let objective = at_most_500_ms_p95();
        let record = |runs: &[TrialRow]| {
            let mut record = RunRecord::default();
            for (k, run) in runs.iter().enumerate() {
                record.record(k + 1, run, &objective);
            }
            record.standing()
        };
        let (ok, slow) = (run_with_ttft(400.0), run_with_ttft(700.0));
        assert_eq!(record(&[ok.clone(), ok.clone()]), Standing::Clean);
        assert_eq!(record(&[ok.clone(), oom()]), Standing::Faulty, "half");
        assert_eq!(
            record(&[ok.clone(), oom(), slow.clone()]),
            Standing::Disqualified,
            "two of three"
        );
        assert_eq!(record(std::slice::from_ref(&slow)), Standing::Disqualified);
        assert_eq!(record(&[]), Standing::Disqualified, "never ran");
        assert!(Standing::Clean < Standing::Faulty && Standing::Faulty < Standing::Disqualified);
    }

    #[test]
    fn a_run_breaking_two_constraints_counts_once() {
        let mut objective = at_most_500_ms_p95();
        objective.constraints.push(Constraint {
            metric: Metric::TgTps,
            bound: Bound::AtLeast(200.0),
        });
        let mut record = RunRecord::default();
        record.record(1, &run_with_ttft(700.0), &objective);
        assert_eq!(record.faulty_runs(), 1);
        record.record(2, &run_with_ttft(400.0), &Objective::default());
        assert_eq!(record.standing(), Standing::Faulty, "one of two");
    }

    #[test]
    fn describes_each_kind_of_fault_with_its_rounds() {
        let objective = at_most_500_ms_p95();
        let mut record = RunRecord::default();
        for (round, run) in [
            oom(),
            run_with_ttft(600.0),
            oom(),
            run_with_ttft(400.0),
            run_with_ttft(700.0),
        ]
        .iter()
        .enumerate()
        {
            record.record(round + 1, run, &objective);
        }
        assert_eq!(
            record.describe(),
            "ran out of memory in rounds 1 and 3 of 5 and broke ttft_ms_p95 ≤ 500 ms in rounds 2 and 5 of 5 (measured 700.0 at worst)"
        );
        assert_eq!(RunRecord::default().describe(), "");
        assert_eq!(rounds_phrase(&[1, 2, 3]), "rounds 1, 2 and 3");
    }
}
