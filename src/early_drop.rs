//! Dropping clearly beaten trials early (issue 24): after each run of a
//! test, a trial whose best run so far is worse than a bar by more than a
//! margin stops repeating it. The objective's bar is the worst run of the
//! best feasible trial so far; a speed or latency constraint's bar is its
//! limit. Runs are compared, not intervals: two runs give no useful
//! interval (t = 12.7), but a trial whose best run is 30% slower than the
//! best trial's slowest run is beaten unless the machine itself changed by
//! that much between the two, which is what the margin is for.
//! `llama-sweep replay <grid> --drops NOISE` shows, on a recorded grid, how
//! much time each margin saves and how often it would have dropped the
//! grid's best. The sweep makes the rule from its rows (`sweep`), the rule
//! travels with the trial's spec to the child, which applies it
//! (`measure::bench`).

use crate::objective::{Bound, Direction, Metric, Objective, Speed};
use serde::{Deserialize, Serialize};

/// Runs a trial always gets before it may be dropped.
pub const MIN_RUNS: usize = 2;

/// `[trial] early_drop` unless set. On the recorded grids, with each
/// trial's runs off by a 5% swing of the machine, 30% never dropped the
/// best in 500 replays (20% did, 0.6% of the time, on one grid); see
/// `replay --drops` and docs/searching.md's table.
pub const DEFAULT_MARGIN: f64 = 0.3;

/// What one measured quantity must reach for a trial to go on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bar {
    pub metric: Metric,
    /// Which way is better.
    pub direction: Direction,
    /// A trial whose best run is worse than this, by more than the margin,
    /// is dropped.
    pub value: f64,
    /// What the bar is, for the reason given: `the slowest run of the best
    /// trial so far (3f2a19c0d1e2, 150 t/s)`, `the limit ttft_ms ≤ 2000 ms`.
    pub what: String,
}

/// The bars a trial is held to while it runs, sent with its spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropRule {
    /// Fraction by which the best run must miss a bar: 0.2 drops a trial
    /// whose best run is more than 20% below a speed's bar, or more than
    /// 20% above a latency's.
    pub margin: f64,
    pub min_runs: usize,
    pub bars: Vec<Bar>,
}

impl Bar {
    /// The best of `runs` when even it misses the bar by more than
    /// `margin`.
    fn missed_by(&self, runs: &[f64], margin: f64) -> Option<f64> {
        let best = best_of(self.direction, runs)?;
        let missed = match self.direction {
            Direction::Maximize => best < self.value * (1.0 - margin),
            Direction::Minimize => best > self.value * (1.0 + margin),
        };
        missed.then_some(best)
    }
}

impl DropRule {
    /// Why a trial whose runs of `metric` so far are `runs` is dropped, out
    /// of `planned` runs; `None` while it goes on.
    pub fn why(&self, metric: Metric, runs: &[f64], planned: usize) -> Option<String> {
        if runs.len() < self.min_runs.max(1) {
            return None;
        }
        self.bars
            .iter()
            .filter(|bar| bar.metric == metric)
            .find_map(|bar| {
                let best = bar.missed_by(runs, self.margin)?;
                let unit = metric.unit();
                let worse = match bar.direction {
                    Direction::Maximize => "below",
                    Direction::Minimize => "above",
                };
                Some(format!(
                    "its best run of {metric} after {} of {planned}, {} {unit}, is more than {:.0}% {worse} {}",
                    runs.len(),
                    round(best),
                    self.margin * 100.0,
                    bar.what,
                ))
            })
    }

    /// The metrics it holds a trial to.
    pub fn metrics(&self) -> impl Iterator<Item = Metric> + '_ {
        self.bars.iter().map(|b| b.metric)
    }
}

/// The rule for the next trial: the objective's bar is the worst run of
/// `set_by` (the id and that run of the best feasible trial so far), when
/// there is one, and each constraint on a quantity measured run by run has
/// its own. `None` when there is no bar at all or `margin` turns drops off
/// (0 or less).
pub fn rule(objective: &Objective, set_by: Option<(&str, f64)>, margin: f64) -> Option<DropRule> {
    if margin.is_nan() || margin <= 0.0 {
        return None;
    }
    let mut bars = Vec::new();
    if let Some((id, value)) = set_by {
        let slowest = match objective.direction {
            Direction::Maximize => "slowest",
            Direction::Minimize => "worst",
        };
        bars.push(Bar {
            metric: objective.metric,
            direction: objective.direction,
            value,
            what: format!(
                "the {slowest} run of the best trial so far ({id}, {} {})",
                round(value),
                objective.metric.unit()
            ),
        });
    }
    for c in &objective.constraints {
        // Memory and quality are measured once: nothing to stop early.
        if Test::of(c.metric).is_none() {
            continue;
        }
        let (direction, value) = match c.bound {
            Bound::AtMost(v) => (Direction::Minimize, v),
            Bound::AtLeast(v) => (Direction::Maximize, v),
        };
        bars.push(Bar {
            metric: c.metric,
            direction,
            value,
            what: format!("the limit {c}"),
        });
    }
    (!bars.is_empty()).then_some(DropRule {
        margin,
        min_runs: MIN_RUNS,
        bars,
    })
}

/// How a trial runs its tests: the objective's first, so that every trial
/// of a sweep runs them in the same order and one that may be dropped is
/// judged before its other tests; and the rule that drops it, if any (the
/// reference trials and the confirmation have none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TestSchedule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first: Option<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<DropRule>,
    /// When a run counts: a run other processes disturbed is measured
    /// again (`measure::quiet`); none: every run counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet: Option<crate::machine_load::QuietRule>,
}

impl TestSchedule {
    pub fn is_default(&self) -> bool {
        *self == TestSchedule::default()
    }

    /// The tests in the order they run, at the workload's `depths`.
    pub fn tests(&self, depths: &[u32]) -> Vec<Test> {
        Test::order(self.first, depths)
    }

    /// Why the trial stops after `runs` of `metric` out of `planned`.
    pub fn why_drop(&self, metric: Metric, runs: &[f64], planned: usize) -> Option<String> {
        self.drop.as_ref()?.why(metric, runs, planned)
    }
}

/// A test of a trial, run once per repetition; each run gives one value of
/// its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// pp, with the cache filled to a depth (0: empty).
    Prompt(u32),
    /// tg (and the aggregate of n_parallel sequences) at a depth.
    Generation(u32),
    /// The app's request: its generation speed, time to first token, end
    /// to end, output throughput (`crate::request`).
    Request,
}

impl Test {
    /// `prompt`, `generation at depth 4096`, `request`: for messages.
    pub fn name(self) -> String {
        match self {
            Test::Prompt(0) => "prompt".into(),
            Test::Generation(0) => "generation".into(),
            Test::Prompt(d) => format!("prompt at depth {d}"),
            Test::Generation(d) => format!("generation at depth {d}"),
            Test::Request => "request".into(),
        }
    }

    /// The test a run of which gives a value of `metric`.
    pub fn of(metric: Metric) -> Option<Test> {
        match metric {
            Metric::PpTps => Some(Test::Prompt(0)),
            Metric::TgTps | Metric::AggregateTps => Some(Test::Generation(0)),
            Metric::RequestTps
            | Metric::TpotMs
            | Metric::OutputTps
            | Metric::TtftMs
            | Metric::E2eMs => Some(Test::Request),
            Metric::AtDepth(Speed::Pp, d) => Some(Test::Prompt(d)),
            Metric::AtDepth(_, d) => Some(Test::Generation(d)),
            _ => None,
        }
    }

    /// The order a trial runs its tests in when it may be dropped: the
    /// objective's test first (its runs are what the objective's bar judges,
    /// and a dropped trial then skips the others), then pp and tg on an empty
    /// cache, at each depth, and the request.
    pub fn order(objective: Option<Metric>, depths: &[u32]) -> Vec<Test> {
        let mut tests = vec![Test::Prompt(0), Test::Generation(0)];
        for &d in depths.iter().filter(|d| **d > 0) {
            tests.extend([Test::Prompt(d), Test::Generation(d)]);
        }
        tests.push(Test::Request);
        let first = objective.and_then(Test::of);
        if let Some(first) = first.and_then(|t| tests.iter().position(|x| *x == t)) {
            let t = tests.remove(first);
            tests.insert(0, t);
        }
        tests
    }
}

pub fn best_of(direction: Direction, runs: &[f64]) -> Option<f64> {
    let finite = runs.iter().copied().filter(|v| v.is_finite());
    match direction {
        Direction::Maximize => finite.reduce(f64::max),
        Direction::Minimize => finite.reduce(f64::min),
    }
}

pub fn worst_of(direction: Direction, runs: &[f64]) -> Option<f64> {
    let flipped = match direction {
        Direction::Maximize => Direction::Minimize,
        Direction::Minimize => Direction::Maximize,
    };
    best_of(flipped, runs)
}

/// Three significant figures, for a reason.
pub(crate) fn round(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tg_rule(worst_of_best: f64) -> DropRule {
        DropRule {
            margin: 0.2,
            min_runs: 2,
            bars: vec![Bar {
                metric: Metric::TgTps,
                direction: Direction::Maximize,
                value: worst_of_best,
                what: "the slowest run of the best trial so far (abc, 150 t/s)".into(),
            }],
        }
    }

    #[test]
    fn a_trial_is_dropped_only_when_its_best_run_misses_by_more_than_the_margin() {
        let rule = tg_rule(150.0);
        // Never after one run, however slow.
        assert_eq!(rule.why(Metric::TgTps, &[10.0], 3), None);
        // 20% below 150 is 120: a best run of 119 is dropped, 121 goes on.
        let why = rule.why(Metric::TgTps, &[110.0, 119.0], 3).unwrap();
        assert_eq!(
            why,
            "its best run of tg_tps after 2 of 3, 119 t/s, is more than 20% below \
             the slowest run of the best trial so far (abc, 150 t/s)"
        );
        assert_eq!(rule.why(Metric::TgTps, &[110.0, 121.0], 3), None);
        // Other metrics are not held to the objective's bar.
        assert_eq!(rule.why(Metric::PpTps, &[1.0, 1.0], 3), None);
    }

    #[test]
    fn the_objectives_test_runs_first() {
        use Test::*;
        assert_eq!(
            Test::order(Some(Metric::TgTps), &[]),
            vec![Generation(0), Prompt(0), Request]
        );
        assert_eq!(
            Test::order(Some(Metric::E2eMs), &[1024]),
            vec![
                Request,
                Prompt(0),
                Generation(0),
                Prompt(1024),
                Generation(1024)
            ]
        );
        assert_eq!(
            Test::order(Some(Metric::AtDepth(Speed::Tg, 1024)), &[1024]),
            vec![
                Generation(1024),
                Prompt(0),
                Generation(0),
                Prompt(1024),
                Request
            ]
        );
        // Memory is measured once, over the whole trial: the usual order.
        assert_eq!(
            Test::order(Some(Metric::PeakRssMib), &[]),
            vec![Prompt(0), Generation(0), Request]
        );
    }

    #[test]
    fn a_latency_constraint_drops_a_trial_whose_every_run_broke_it() {
        let objective = Objective {
            constraints: vec![crate::objective::Constraint {
                metric: Metric::TtftMs,
                bound: Bound::AtMost(2000.0),
            }],
            ..Objective::default()
        };
        let rule = rule(&objective, None, 0.2).unwrap();
        assert_eq!(rule.bars.len(), 1);
        assert_eq!(rule.why(Metric::TtftMs, &[2500.0, 2390.0], 3), None);
        let why = rule.why(Metric::TtftMs, &[2500.0, 2450.0], 3).unwrap();
        assert!(
            why.contains(
                "after 2 of 3, 2450 ms, is more than 20% above the limit ttft_ms ≤ 2000 ms"
            ),
            "{why}"
        );
    }

    #[test]
    fn no_margin_no_rule() {
        let objective = Objective::default();
        assert_eq!(rule(&objective, Some(("fast", 150.0)), 0.0), None);
        assert_eq!(rule(&objective, None, 0.2), None);
        let set = rule(&objective, Some(("fast", 140.0)), 0.1).unwrap();
        assert_eq!(
            set.bars[0].what,
            "the slowest run of the best trial so far (fast, 140 t/s)"
        );
    }
}
