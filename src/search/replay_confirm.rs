//! The confirmation round replayed on a recorded grid: how often a fixed
//! number of rounds and the sequential rule (`confirm::sequential`) decide
//! the verdict against the runner-up, how often wrongly, and how many rounds
//! they take. Each simulated sweep ranks the grid by one noisy observation
//! of every feasible trial (its recorded mean and spread), takes the best
//! `top`, and measures them in rounds: each run is the recorded mean times
//! the run's own noise: the trial's recorded relative spread over √2 (a
//! confirmation run has twice the repetitions) and `run_noise`, what a
//! machine adds between runs minutes apart. (A swing of the whole machine
//! common to a round cancels in the paired comparison and is left out.) The
//! truth a decision is checked against is the recorded means.

use super::replay::RecordedGrid;
use crate::confirm::sequential::{Finding, Looks, Rule, another_round};
use crate::rng::SplitMix64;
use crate::search::core::{orient, orient_ratio};
use crate::stats::{Summary, ratio_by_rounds};
use std::fmt::Write;

/// What a replay of the confirmation assumes.
#[derive(Debug, Clone)]
pub struct Setup {
    pub top: usize,
    pub looks: Looks,
    pub margin: f64,
    /// Noise of a run beyond the trial's recorded spread (sd of its
    /// logarithm).
    pub run_noise: f64,
}

/// How one rule fared over the seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub looks: Looks,
    pub seeds: usize,
    pub decided: usize,
    /// Decided, but against the recorded truth: "better" for one that is
    /// not, "equivalent" for two further apart than the margin.
    pub wrong: usize,
    pub rounds: Vec<usize>,
    /// The recommendation is within 2% of the grid's best.
    pub near_best: usize,
}

impl Outcome {
    pub fn mean_rounds(&self) -> f64 {
        self.rounds.iter().sum::<usize>() as f64 / self.rounds.len().max(1) as f64
    }
}

/// One simulated confirmation under `setup`; `None` when the grid has
/// fewer than two feasible trials.
fn simulate_one(
    grid: &RecordedGrid,
    setup: &Setup,
    seed: u64,
) -> Option<(Finding, usize, f64, f64)> {
    let objective = grid.objective();
    let mut rng = SplitMix64::new(seed ^ 0x0063_6f6e_6669_726d);
    // The sweep's ranking: one noisy observation of each feasible trial.
    let mut ranked: Vec<(usize, f64)> = grid
        .feasible()
        .map(|(i, v)| (i, orient(objective, v.ln()) + grid.cv(i) * rng.normal()))
        .collect();
    if ranked.len() < 2 {
        return None;
    }
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    let top: Vec<usize> = ranked.iter().take(setup.top.max(2)).map(|c| c.0).collect();
    let truth = |i: usize| grid.feasible_value(i).expect("feasible");
    let rule = Rule {
        alpha: setup.looks.alpha(1),
        margin: setup.margin,
        pairing: crate::confirm::sequential::Pairing::Rounds,
    };
    let mut rounds: Vec<Vec<Option<f64>>> = vec![Vec::new(); top.len()];
    let mut done = 0;
    loop {
        for (k, &i) in top.iter().enumerate() {
            let sd = (grid.cv(i).powi(2) / 2.0 + setup.run_noise.powi(2)).sqrt();
            rounds[k].push(Some(truth(i).ln() + sd * rng.normal()));
        }
        done += 1;
        if !setup.looks.looks_after(done) {
            continue;
        }
        // The best measured against the next best, as the verdict does.
        let mut order: Vec<usize> = (0..top.len()).collect();
        let mean = |k: usize| {
            let logs: Vec<f64> = rounds[k].iter().flatten().copied().collect();
            orient(
                objective,
                Summary::of(&logs).map_or(f64::NEG_INFINITY, |s| s.mean),
            )
        };
        order.sort_by(|a, b| mean(*b).total_cmp(&mean(*a)));
        let (best, second) = (order[0], order[1]);
        let (r, _) = ratio_by_rounds(&rounds[best], &rounds[second], rule.alpha)?;
        let finding = {
            let oriented = orient_ratio(objective, r);
            rule.finding(oriented.low, oriented.high)
        };
        let hopeless = !rule.could_decide(r.ratio, r.low, r.high, done, setup.looks.max());
        if another_round(&setup.looks, done, finding.decided(), hopeless, 0.0, None).is_err() {
            let true_ratio = orient(objective, (truth(top[best]) / truth(top[second])).ln()).exp();
            return Some((finding, done, true_ratio, truth(top[best])));
        }
    }
}

/// `setup` replayed over `seeds` seeds.
pub fn replay(grid: &RecordedGrid, setup: &Setup, seeds: u64) -> Outcome {
    let mut out = Outcome {
        looks: setup.looks.clone(),
        seeds: 0,
        decided: 0,
        wrong: 0,
        rounds: Vec::new(),
        near_best: 0,
    };
    let best = grid.best();
    for seed in 0..seeds {
        let Some((finding, rounds, true_ratio, chosen)) = simulate_one(grid, setup, seed) else {
            continue;
        };
        out.seeds += 1;
        out.rounds.push(rounds);
        if finding.decided() {
            out.decided += 1;
        }
        let right = match finding {
            Finding::Better => true_ratio > 1.0,
            Finding::Worse => true_ratio < 1.0,
            Finding::Equivalent => {
                (1.0 / (1.0 + setup.margin)..=1.0 + setup.margin).contains(&true_ratio)
            }
            Finding::Undecided => true,
        };
        out.wrong += usize::from(!right);
        if best.is_some_and(|b| grid.within(chosen, b, 0.02)) {
            out.near_best += 1;
        }
    }
    out
}

/// The table `replay --confirm` prints.
pub fn render(outcomes: &[Outcome], setup: &Setup) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "confirmation of the best {} against the runner-up, {:.1}% noise per run beyond the recorded spread, margin {:.0}%:",
        setup.top,
        setup.run_noise * 100.0,
        setup.margin * 100.0
    );
    let _ = writeln!(
        out,
        "  {:<26} {:>9} {:>9} {:>13} {:>16}",
        "rounds", "decided", "wrongly", "mean rounds", "within 2% of best"
    );
    for o in outcomes {
        let name = if o.looks.count() == 1 {
            format!("fixed {}", o.looks.first())
        } else {
            format!("sequential {} to {}", o.looks.first(), o.looks.max())
        };
        let pct = |n: usize| format!("{:.0}%", 100.0 * n as f64 / o.seeds.max(1) as f64);
        let _ = writeln!(
            out,
            "  {name:<26} {:>9} {:>9} {:>13.1} {:>16}",
            pct(o.decided),
            pct(o.wrong),
            o.mean_rounds(),
            pct(o.near_best)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::replay::tests::fixture;

    fn setup(looks: Looks) -> Setup {
        Setup {
            top: 3,
            looks,
            margin: 0.03,
            run_noise: 0.05,
        }
    }

    /// On the recorded demo grid the sequential rule decides more often
    /// than three fixed rounds, and rarely wrongly.
    #[test]
    fn sequential_confirmation_decides_more_often_on_the_recorded_demo_grid() {
        let grid = fixture("real-demo-grid");
        let fixed = replay(&grid, &setup(Looks::new(3, 3)), 400);
        let sequential = replay(&grid, &setup(Looks::new(3, 8)), 400);
        eprint!(
            "{}",
            render(
                &[fixed.clone(), sequential.clone()],
                &setup(Looks::new(3, 8))
            )
        );
        assert_eq!(fixed.seeds, 400);
        assert!(fixed.rounds.iter().all(|r| *r == 3));
        assert!(sequential.rounds.iter().all(|r| (3..=8).contains(r)));
        assert!(
            sequential.decided > fixed.decided,
            "{sequential:?} vs {fixed:?}"
        );
        assert!(sequential.wrong * 20 <= sequential.seeds, "{sequential:?}");
    }
}
