//! Adaptive repetitions (issue 24, part 4) replayed on a recorded grid,
//! before anything of them goes into the sweep: does giving a trial fewer
//! runs once it is ranked, or more while it is close to the best, gain time
//! or a better pick without losing the best? The sweep's own procedure is
//! replayed as in `replay_drops` (recorded order, each trial's runs drawn
//! from its recorded mean and spread and off by one swing common to its
//! runs, early drops at the default margin) under three policies of
//! repetitions:
//!
//! - `fixed`: every trial its recorded repetitions (the sweep today);
//! - `fewer`: after `MIN_RUNS` runs of the objective, a trial whose 95%
//!   interval (t, over its runs) lies wholly worse than the best trial's
//!   mean is ranked below it and stops repeating: its other tests run as
//!   often as its objective's did, its row stays a measured one;
//! - `fewer+more`: as `fewer`, and a trial whose interval still holds the
//!   best trial's mean after its planned runs gets more, up to twice as
//!   many, until it does not.
//!
//! What is judged is what the sweep hands on: the finalists (the best
//! [confirm] top trials by their simulated means), against the recorded
//! truth. A swing common to a trial's runs is not reduced by repeating that
//! trial, which is the question the replay answers.

use super::replay::within;
use super::replay_drops::{Candidate, best_value, candidates};
use crate::early_drop::{self, DEFAULT_MARGIN, MIN_RUNS};
use crate::objective::{Direction, Objective};
use crate::rng::SplitMix64;
use crate::stats::t_quantile_975;
use crate::store::row::TrialRow;
use std::fmt::Write;

/// How many times a trial repeats its tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Fixed,
    Fewer,
    FewerAndMore,
}

impl Policy {
    pub const ALL: [Policy; 3] = [Policy::Fixed, Policy::Fewer, Policy::FewerAndMore];

    pub fn name(self) -> &'static str {
        match self {
            Policy::Fixed => "fixed",
            Policy::Fewer => "fewer",
            Policy::FewerAndMore => "fewer+more",
        }
    }
}

/// How one policy fared over the seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub policy: Policy,
    pub seeds: usize,
    /// Seconds of trials over all seeds, and runs of the objective's test.
    pub trial_s: f64,
    pub runs: usize,
    /// Seeds in which no trial within 2% of the grid's best was among the
    /// finalists, and in which the first of them was not within 2%.
    pub best_not_finalist: usize,
    pub first_not_best: usize,
}

/// The seconds one repetition of all of a candidate's tests takes.
fn seconds_per_repetition(c: &Candidate) -> f64 {
    c.tests.iter().map(|t| t.seconds).sum()
}

/// The objective's runs of one trial, drawn until `policy` stops them;
/// `None` when the early-drop rule drops it.
fn objective_runs(
    c: &Candidate,
    objective: &Objective,
    policy: Policy,
    planned: usize,
    incumbent: Option<(&str, f64, f64)>,
    swing: f64,
    rng: &mut SplitMix64,
) -> Result<Vec<f64>, usize> {
    let Some((_, mean, cv)) = c.tests.first().and_then(|t| {
        t.metrics
            .iter()
            .copied()
            .find(|(m, _, _)| *m == objective.metric)
    }) else {
        return Ok(Vec::new());
    };
    let sign = match objective.metric.natural_direction() {
        Direction::Maximize => 1.0,
        Direction::Minimize => -1.0,
    };
    let rule = early_drop::rule(
        objective,
        incumbent.map(|(id, _, worst)| (id, worst)),
        DEFAULT_MARGIN,
    );
    let most = match policy {
        Policy::FewerAndMore => 2 * planned,
        _ => planned,
    };
    let mut runs = Vec::new();
    loop {
        runs.push(mean * (sign * swing + cv * rng.normal()).exp());
        let k = runs.len();
        // As the child: the very last run of a trial is never judged.
        let judged = k < planned || (k == planned && c.tests.len() > 1);
        if judged
            && rule
                .as_ref()
                .is_some_and(|r| r.why(objective.metric, &runs, planned).is_some())
        {
            return Err(k);
        }
        if k < MIN_RUNS {
            continue;
        }
        // Where the trial's interval lies against the best trial's mean.
        let (below, above) = match incumbent {
            None => (false, false),
            Some((_, best, _)) => {
                let (low, high) = interval(&runs);
                match objective.direction {
                    Direction::Maximize => (high < best, low > best),
                    Direction::Minimize => (low > best, high < best),
                }
            }
        };
        let stop = match policy {
            Policy::Fixed => k >= planned,
            Policy::Fewer => k >= planned || below,
            Policy::FewerAndMore => {
                below || (k >= planned && (incumbent.is_none() || above || k >= most))
            }
        };
        if stop {
            break;
        }
    }
    Ok(runs)
}

/// The 95% interval of the mean of `runs` (t), on the scale of the runs.
fn interval(runs: &[f64]) -> (f64, f64) {
    let n = runs.len() as f64;
    let logs: Vec<f64> = runs.iter().map(|r| r.ln()).collect();
    let mean = logs.iter().sum::<f64>() / n;
    let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let half = t_quantile_975(n - 1.0) * (var / n).sqrt();
    ((mean - half).exp(), (mean + half).exp())
}

/// One seed under `policy`: trial seconds, objective runs, and each
/// candidate's simulated mean (`None`: failed, infeasible or dropped).
fn simulate_one(
    candidates: &[Candidate],
    objective: &Objective,
    policy: Policy,
    planned: usize,
    run_noise: f64,
    seed: u64,
) -> (f64, usize, Vec<Option<f64>>) {
    // The same swings and run draws for every policy of a seed.
    let mut rng = SplitMix64::new(seed ^ 0x7265_7073);
    let mut incumbent: Option<(usize, f64, f64)> = None;
    let mut seconds = 0.0;
    let mut runs_made = 0;
    let mut means = vec![None; candidates.len()];
    for (i, c) in candidates.iter().enumerate() {
        if c.value.is_none() {
            seconds += c.wall_s;
            continue;
        }
        let swing = run_noise * rng.normal();
        // Time besides the tests (load, warm-up) is the trial's own.
        let per_rep = seconds_per_repetition(c);
        let overhead = (c.wall_s - per_rep * c.repetitions as f64).max(0.0);
        let first = c.tests.first().map_or(0.0, |t| t.seconds);
        let best = incumbent.map(|(k, mean, worst)| (candidates[k].id.as_str(), mean, worst));
        match objective_runs(c, objective, policy, planned, best, swing, &mut rng) {
            Err(k) => {
                seconds += overhead + first * k as f64;
                runs_made += k;
            }
            Ok(runs) => {
                seconds += overhead + per_rep * runs.len() as f64;
                runs_made += runs.len();
                if !c.feasible || runs.is_empty() {
                    continue;
                }
                let mean = runs.iter().sum::<f64>() / runs.len() as f64;
                means[i] = Some(mean);
                let better =
                    incumbent.is_none_or(|(_, best, _)| objective.compare(mean, best).is_lt());
                if better {
                    if let Some(worst) = early_drop::worst_of(objective.direction, &runs) {
                        incumbent = Some((i, mean, worst));
                    }
                }
            }
        }
    }
    (seconds, runs_made, means)
}

/// What a replay of repetitions assumes.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Runs a trial is planned to make (the sweep's `repetitions`),
    /// whatever the grid recorded: its runs are drawn from its recorded
    /// mean and spread.
    pub planned: usize,
    /// A swing of the machine common to all runs of one trial.
    pub run_noise: f64,
    /// Finalists handed to the confirmation.
    pub top: usize,
}

/// `policy` replayed over `seeds` seeds.
pub fn replay(
    rows: &[TrialRow],
    objective: &Objective,
    policy: Policy,
    setup: &Setup,
    seeds: u64,
) -> Outcome {
    let candidates = candidates(rows, objective);
    let best = best_value(&candidates, objective);
    let mut out = Outcome {
        policy,
        seeds: seeds as usize,
        trial_s: 0.0,
        runs: 0,
        best_not_finalist: 0,
        first_not_best: 0,
    };
    for seed in 0..seeds {
        let (seconds, runs, means) = simulate_one(
            &candidates,
            objective,
            policy,
            setup.planned,
            setup.run_noise,
            seed,
        );
        out.trial_s += seconds;
        out.runs += runs;
        let Some(best) = best else { continue };
        let mut ranked: Vec<(usize, f64)> = means
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|m| (i, m)))
            .collect();
        ranked.sort_by(|a, b| objective.compare(a.1, b.1));
        let near = |i: usize| {
            candidates[i]
                .value
                .is_some_and(|v| within(objective.direction, v, best, 0.02))
        };
        if !ranked.iter().take(setup.top.max(1)).any(|(i, _)| near(*i)) {
            out.best_not_finalist += 1;
        }
        if !ranked.first().is_some_and(|(i, _)| near(*i)) {
            out.first_not_best += 1;
        }
    }
    out
}

/// The table `replay --repetitions` prints; the first outcome is the
/// baseline the time is compared with.
pub fn render(outcomes: &[Outcome], setup: &Setup) -> String {
    let Setup {
        planned,
        run_noise,
        top,
    } = *setup;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "repetitions on the recorded grid in its recorded order, {planned} runs planned per trial, early drops at {:.0}%, each trial's runs drawn from its recorded mean and spread and off by a swing of {:.1}% common to its runs; {top} finalists handed to the confirmation:",
        DEFAULT_MARGIN * 100.0,
        run_noise * 100.0,
    );
    let _ = writeln!(
        out,
        "  {:<11} {:>14} {:>15} {:>26} {:>22}",
        "policy", "trial time", "runs per seed", "best (2%) not a finalist", "first not within 2%"
    );
    let base = outcomes.first().map_or(1.0, |o| o.trial_s);
    for o in outcomes {
        let seeds = o.seeds.max(1) as f64;
        let of_seeds = |n: usize| format!("{:.1}%", 100.0 * n as f64 / seeds);
        let _ = writeln!(
            out,
            "  {:<11} {:>14} {:>15} {:>26} {:>22}",
            o.policy.name(),
            format!("{:.2}×", o.trial_s / base.max(f64::MIN_POSITIVE)),
            format!("{:.1}", o.runs as f64 / seeds),
            of_seeds(o.best_not_finalist),
            of_seeds(o.first_not_best),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::replay::tests::fixture_rows as fixture;

    fn setup(run_noise: f64) -> Setup {
        Setup {
            planned: 3,
            run_noise,
            top: 3,
        }
    }

    fn all(name: &str, noise: f64, seeds: u64) -> Vec<Outcome> {
        let (rows, objective) = fixture(name);
        Policy::ALL
            .iter()
            .map(|p| replay(&rows, &objective, *p, &setup(noise), seeds))
            .collect()
    }

    /// Fewer runs for ranked trials take less time than fixed ones, more
    /// runs near the best take more runs than fewer.
    #[test]
    fn fewer_runs_save_time_and_more_cost_runs_on_the_recorded_demo_grid() {
        let outcomes = all("real-demo-grid", 0.05, 100);
        eprint!("{}", render(&outcomes, &setup(0.05)));
        let [fixed, fewer, more] = &outcomes[..] else {
            unreachable!()
        };
        assert!(fewer.trial_s < fixed.trial_s, "{fewer:?} {fixed:?}");
        assert!(fewer.runs < fixed.runs);
        assert!(more.runs > fewer.runs, "{more:?} {fewer:?}");
    }

    /// More runs for trials close to the best rank the top better when a
    /// trial's runs differ only by their own spread, and not when the
    /// machine's swing common to a trial's runs dominates: repeating a
    /// trial does not average that out (why the sweep keeps its repetitions
    /// fixed and leaves the top to the interleaved confirmation).
    #[test]
    fn more_runs_near_the_best_help_without_a_swing_and_not_with_one() {
        let quiet = all("real-demo-grid", 0.0, 300);
        let swinging = all("real-demo-grid", 0.05, 300);
        eprint!("{}", render(&quiet, &setup(0.0)));
        eprint!("{}", render(&swinging, &setup(0.05)));
        let (fixed, more) = (&quiet[0], &quiet[2]);
        assert!(
            more.best_not_finalist * 2 < fixed.best_not_finalist,
            "{more:?} {fixed:?}"
        );
        assert!(more.first_not_best * 2 < fixed.first_not_best);
        let (fixed, more) = (&swinging[0], &swinging[2]);
        assert!(
            more.best_not_finalist as f64 > 0.8 * fixed.best_not_finalist as f64,
            "{more:?} {fixed:?}"
        );
    }

    /// The interval of two equal runs is a point; of two apart, it holds
    /// both and more (t = 12.7).
    #[test]
    fn an_interval_over_two_runs_is_wide() {
        let (low, high) = interval(&[100.0, 100.0]);
        assert!((low - 100.0).abs() < 1e-9 && (high - 100.0).abs() < 1e-9);
        let (low, high) = interval(&[98.0, 102.0]);
        assert!(low < 80.0 && high > 120.0, "{low} {high}");
    }
}
