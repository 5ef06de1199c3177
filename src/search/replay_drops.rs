//! Early drops (`early_drop`) replayed on a recorded grid: the trials run in
//! their recorded order, each test's runs drawn from the trial's recorded
//! mean and spread, all of a trial's runs off by one swing of the machine
//! (`run_noise`, the minute it was measured in: the danger of comparing runs
//! of two trials measured apart). The rule of the sweep judges each run
//! against the best feasible trial so far (as simulated) and the limits of
//! the constraints. What a drop saves is the rest of its tests, timed from
//! the recorded speeds (a run of pp takes prompt_tokens / pp_tps, a
//! request e2e_ms); failed trials take their recorded time. The truth a drop
//! is checked against is the recorded means: was the grid's best dropped,
//! and was anything within 2% of it still measured to the end.

use super::replay::{unique_rows, within};
use crate::early_drop::{self, Test};
use crate::objective::{Direction, Measured, Metric, Objective, Speed};
use crate::rng::SplitMix64;
use crate::store::row::TrialRow;
use std::fmt::Write;

/// What a replay of early drops assumes.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    pub margin: f64,
    /// A swing of the machine common to all runs of one trial (sd of its
    /// logarithm).
    pub run_noise: f64,
}

/// How one margin fared over the seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub margin: f64,
    pub seeds: usize,
    /// Trials measured per seed (the grid's ok rows).
    pub trials: usize,
    /// Trials dropped, over all seeds.
    pub dropped: usize,
    /// Seconds of trial time saved, over all seeds, and the grid's recorded
    /// trial time per seed.
    pub saved_s: f64,
    pub wall_s: f64,
    /// Seeds in which the grid's best trial was dropped.
    pub best_dropped: usize,
    /// Seeds in which no trial within 2% of the grid's best was measured to
    /// the end.
    pub near_best_lost: usize,
}

impl Outcome {
    pub fn dropped_share(&self) -> f64 {
        self.dropped as f64 / (self.trials * self.seeds).max(1) as f64
    }

    pub fn saved_share(&self) -> f64 {
        self.saved_s / (self.wall_s * self.seeds as f64).max(f64::MIN_POSITIVE)
    }
}

/// A test of a candidate: the seconds one run takes, and each metric a run
/// gives with its recorded mean and relative spread.
pub(super) struct TimedTest {
    pub(super) seconds: f64,
    pub(super) metrics: Vec<(Metric, f64, f64)>,
}

/// A trial of the grid as the replay needs it.
pub(super) struct Candidate {
    pub(super) id: String,
    /// Recorded mean of the objective, when it ran.
    pub(super) value: Option<f64>,
    pub(super) feasible: bool,
    pub(super) wall_s: f64,
    pub(super) repetitions: usize,
    /// Its tests in the order a trial that may be dropped runs them.
    pub(super) tests: Vec<TimedTest>,
}

fn candidate(row: &TrialRow, objective: &Objective) -> Candidate {
    let n = row.n_parallel();
    let depths: Vec<u32> = row.at_depth.0.iter().map(|d| d.depth).collect();
    let value = objective.score(row);
    let mut tests = Vec::new();
    if value.is_some() {
        for test in Test::order(Some(objective.metric), &depths) {
            let (seconds, metrics) = match test {
                Test::Prompt(0) => (
                    row.prompt_tokens as f64 * n / row.pp_tps_mean.unwrap_or(f64::NAN),
                    vec![Metric::PpTps],
                ),
                Test::Generation(0) => (
                    row.gen_tokens as f64 / row.tg_tps_mean.unwrap_or(f64::NAN),
                    vec![Metric::TgTps, Metric::AggregateTps],
                ),
                Test::Prompt(d) => {
                    let pp = row.mean_of(Metric::AtDepth(Speed::Pp, d));
                    (
                        row.prompt_tokens as f64 * n / pp.unwrap_or(f64::NAN),
                        vec![Metric::AtDepth(Speed::Pp, d)],
                    )
                }
                Test::Generation(d) => {
                    let tg = row.mean_of(Metric::AtDepth(Speed::Tg, d));
                    (
                        row.gen_tokens as f64 / tg.unwrap_or(f64::NAN),
                        vec![
                            Metric::AtDepth(Speed::Tg, d),
                            Metric::AtDepth(Speed::Aggregate, d),
                        ],
                    )
                }
                Test::Request => (
                    row.e2e_ms_mean.unwrap_or(f64::NAN) / 1000.0,
                    vec![
                        Metric::RequestTps,
                        Metric::TpotMs,
                        Metric::OutputTps,
                        Metric::TtftMs,
                        Metric::E2eMs,
                    ],
                ),
            };
            let metrics = metrics
                .into_iter()
                .filter_map(|m| {
                    let mean = row.mean_of(m)?;
                    let cv = row.sd_of(m).map_or(0.0, |sd| sd / mean);
                    Some((m, mean, cv))
                })
                .collect();
            tests.push(TimedTest {
                seconds: if seconds.is_finite() { seconds } else { 0.0 },
                metrics,
            });
        }
    }
    Candidate {
        id: row.trial_id.clone(),
        value,
        feasible: value.is_some() && objective.violations(row).is_empty(),
        wall_s: row.wall_s,
        repetitions: row.repetitions.max(1) as usize,
        tests,
    }
}

/// One seed: which trials were dropped and the seconds saved.
fn simulate_one(
    candidates: &[Candidate],
    objective: &Objective,
    setup: &Setup,
    seed: u64,
) -> (Vec<bool>, f64) {
    let mut rng = SplitMix64::new(seed ^ 0x0064_726f_7073);
    // The best feasible trial measured to the end so far: its mean and
    // worst run of the objective, as simulated.
    let mut incumbent: Option<(usize, f64, f64)> = None;
    let mut dropped = vec![false; candidates.len()];
    let mut saved = 0.0;
    for (i, c) in candidates.iter().enumerate() {
        if c.value.is_none() {
            continue;
        }
        let swing = setup.run_noise * rng.normal();
        let rule = early_drop::rule(
            objective,
            incumbent.map(|(k, _, worst)| (candidates[k].id.as_str(), worst)),
            setup.margin,
        );
        let mut objective_runs = Vec::new();
        let mut left: f64 = c.tests.iter().map(|t| t.seconds).sum::<f64>() * c.repetitions as f64;
        'tests: for (j, TimedTest { seconds, metrics }) in c.tests.iter().enumerate() {
            let mut runs: Vec<Vec<f64>> = vec![Vec::new(); metrics.len()];
            for rep in 0..c.repetitions {
                // As the child: a trial whose last run is made is measured.
                let judged = j + 1 < c.tests.len() || rep + 1 < c.repetitions;
                left -= seconds;
                for (k, &(metric, mean, cv)) in metrics.iter().enumerate() {
                    // A slow minute lowers speeds and lengthens latencies.
                    let sign = match metric.natural_direction() {
                        Direction::Maximize => 1.0,
                        Direction::Minimize => -1.0,
                    };
                    runs[k].push(mean * (sign * swing + cv * rng.normal()).exp());
                    if metric == objective.metric {
                        objective_runs = runs[k].clone();
                    }
                    let why = rule
                        .as_ref()
                        .filter(|_| judged)
                        .and_then(|r| r.why(metric, &runs[k], c.repetitions));
                    if why.is_some() {
                        dropped[i] = true;
                        saved += left.clamp(0.0, c.wall_s);
                        break 'tests;
                    }
                }
            }
        }
        if dropped[i] || !c.feasible {
            continue;
        }
        let mean = objective_runs.iter().sum::<f64>() / objective_runs.len().max(1) as f64;
        let better = incumbent.is_none_or(|(_, best, _)| objective.compare(mean, best).is_lt());
        if better {
            if let Some(worst) = early_drop::worst_of(objective.direction, &objective_runs) {
                incumbent = Some((i, mean, worst));
            }
        }
    }
    (dropped, saved)
}

/// The grid's trials, one per trial id, as the replays need them.
pub(super) fn candidates(rows: &[TrialRow], objective: &Objective) -> Vec<Candidate> {
    unique_rows(rows)
        .into_iter()
        .map(|r| candidate(r, objective))
        .collect()
}

/// The recorded objective of the grid's best feasible trial.
pub(super) fn best_value(candidates: &[Candidate], objective: &Objective) -> Option<f64> {
    candidates
        .iter()
        .filter(|c| c.feasible)
        .filter_map(|c| c.value)
        .reduce(|a, b| {
            if objective.compare(b, a).is_lt() {
                b
            } else {
                a
            }
        })
}

/// `setup` replayed over `seeds` seeds on the grid's `rows`.
pub fn replay(rows: &[TrialRow], objective: &Objective, setup: &Setup, seeds: u64) -> Outcome {
    let candidates = candidates(rows, objective);
    let best = best_value(&candidates, objective);
    let mut out = Outcome {
        margin: setup.margin,
        seeds: seeds as usize,
        trials: candidates.iter().filter(|c| c.value.is_some()).count(),
        dropped: 0,
        saved_s: 0.0,
        wall_s: candidates.iter().map(|c| c.wall_s).sum(),
        best_dropped: 0,
        near_best_lost: 0,
    };
    for seed in 0..seeds {
        let (dropped, saved) = simulate_one(&candidates, objective, setup, seed);
        out.dropped += dropped.iter().filter(|d| **d).count();
        out.saved_s += saved;
        let Some(best) = best else { continue };
        let kept = |c: &(usize, &Candidate)| !dropped[c.0] && c.1.feasible;
        let near: Vec<(usize, &Candidate)> = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.feasible
                    && c.value
                        .is_some_and(|v| within(objective.direction, v, best, 0.02))
            })
            .collect();
        if candidates
            .iter()
            .enumerate()
            .any(|(i, c)| dropped[i] && c.feasible && c.value == Some(best))
        {
            out.best_dropped += 1;
        }
        if !near.iter().any(kept) {
            out.near_best_lost += 1;
        }
    }
    out
}

/// The table `replay --drops` prints.
pub fn render(outcomes: &[Outcome], setup: &Setup) -> String {
    let mut out = String::new();
    let trials = outcomes.first().map_or(0, |o| o.trials);
    let _ = writeln!(
        out,
        "early drops on {trials} measured trials in their recorded order, each trial's runs off by its recorded spread and by a swing of {:.1}% common to its runs, a trial dropped after {} runs at the earliest:",
        setup.run_noise * 100.0,
        early_drop::MIN_RUNS,
    );
    let _ = writeln!(
        out,
        "  {:<8} {:>9} {:>19} {:>21} {:>24}",
        "margin", "dropped", "trial time saved", "grid's best dropped", "none within 2% kept"
    );
    for o in outcomes {
        let of_seeds = |n: usize| format!("{:.1}%", 100.0 * n as f64 / o.seeds.max(1) as f64);
        let _ = writeln!(
            out,
            "  {:<8} {:>9} {:>19} {:>21} {:>24}",
            format!("{:.0}%", o.margin * 100.0),
            format!("{:.0}%", 100.0 * o.dropped_share()),
            format!("{:.0}%", 100.0 * o.saved_share()),
            of_seeds(o.best_dropped),
            of_seeds(o.near_best_lost),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::replay::tests::fixture_rows as fixture;

    fn setup(margin: f64) -> Setup {
        Setup {
            margin,
            run_noise: 0.05,
        }
    }

    /// On the recorded demo grid (generation speed 61 to 156 t/s) drops
    /// save trial time and, at the default margin, never lose the grid's
    /// best; a narrower margin drops more.
    #[test]
    fn drops_save_time_without_losing_the_best_on_the_recorded_demo_grid() {
        let (rows, objective) = fixture("real-demo-grid");
        let outcomes: Vec<Outcome> = [0.1, 0.2, early_drop::DEFAULT_MARGIN]
            .iter()
            .map(|m| replay(&rows, &objective, &setup(*m), 200))
            .collect();
        eprint!("{}", render(&outcomes, &setup(0.2)));
        let [narrow, middle, default] = &outcomes[..] else {
            unreachable!()
        };
        assert_eq!(default.trials, 128);
        assert!(default.dropped_share() > 0.2, "{default:?}");
        assert!(default.saved_share() > 0.1, "{default:?}");
        assert_eq!(default.near_best_lost, 0, "{default:?}");
        assert!(narrow.dropped >= middle.dropped && middle.dropped >= default.dropped);
    }

    /// Latency objective with a latency constraint: trials that break the
    /// limit in every run are dropped too.
    #[test]
    fn a_constraint_drops_trials_on_the_synthetic_threads_grid() {
        let (rows, objective) = fixture("synthetic-cpu-threads");
        let with = replay(&rows, &objective, &setup(early_drop::DEFAULT_MARGIN), 50);
        let unconstrained = Objective {
            constraints: Vec::new(),
            ..objective.clone()
        };
        let without = replay(
            &rows,
            &unconstrained,
            &setup(early_drop::DEFAULT_MARGIN),
            50,
        );
        eprint!("{}", render(&[with.clone(), without.clone()], &setup(0.3)));
        assert!(with.dropped > without.dropped, "{with:?} {without:?}");
        assert_eq!(with.near_best_lost, 0, "{with:?}");
    }

    /// Without noise nor margin to speak of, the rule drops every trial
    /// slower than the incumbent's worst run, never the best.
    #[test]
    fn a_trial_slower_than_the_best_so_far_is_dropped_and_the_time_of_its_other_tests_saved() {
        let (rows, objective) = fixture("real-demo-grid");
        let o = replay(
            &rows,
            &objective,
            &Setup {
                margin: 0.001,
                run_noise: 0.0,
            },
            1,
        );
        assert_eq!(o.best_dropped, 0, "{o:?}");
        assert!(o.saved_s > 0.0 && o.saved_s < o.wall_s, "{o:?}");
    }
}
