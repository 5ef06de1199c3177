//! Bayesian optimization over a finite set of candidates.
//!
//! 1. A space-filling start: a handful of candidates chosen greedily to be
//!    as far from each other as possible (from a seeded first pick).
//! 2. Then, each proposal: fit a Gaussian process to the measured scores
//!    (failures excluded: they have no value), and pick the unmeasured
//!    candidate that maximizes expected improvement over the best feasible
//!    score × the probability of being feasible, learned from failures and
//!    constraint violations nearby. Small spaces are scored exhaustively;
//!    large ones on a random sample, refined around the best few.
//! 3. Optionally stop when no candidate is expected to improve by more than
//!    a threshold.

use super::acquisition::{Feasibility, expected_improvement};
use super::core::{Observation, SearchCore};
use super::gp::Gp;
use crate::config::BayesSettings;
use crate::rng::SplitMix64;

/// Spaces up to this size are scored in full at every proposal.
const EXHAUSTIVE_LIMIT: usize = 4000;
/// Otherwise: this many sampled candidates, ...
const SAMPLE: usize = 2000;
/// ... plus the neighbours of this many of the best of them.
const REFINE_TOP: usize = 8;
/// Improvement that counts, on the log scale (0.1%).
const MARGIN: f64 = 0.001;
/// Candidates less likely than this to run and meet the constraints are
/// left for last: once the search has converged, the leftover expected
/// improvement of a configuration that will almost surely fail is not worth
/// a trial of the night.
const MIN_FEASIBILITY: f64 = 0.05;

pub struct BayesCore {
    x: Vec<Vec<f64>>,
    groups: Vec<usize>,
    /// Per candidate: what was observed, if it was.
    observed: Vec<Option<Observation>>,
    /// Proposed but not observed yet.
    pending: Vec<bool>,
    /// For local refinement: the categorical position of each candidate on
    /// each axis (one entry per group).
    keys: Vec<Vec<u32>>,
    settings: BayesSettings,
    seed: u64,
    stopped: Option<String>,
}

impl BayesCore {
    /// `x`: encoded candidates; `groups`: axis of each dimension.
    pub fn new(x: Vec<Vec<f64>>, groups: Vec<usize>, settings: BayesSettings, seed: u64) -> Self {
        let n = x.len();
        let n_groups = groups.iter().max().map_or(0, |g| g + 1);
        // A candidate's key on an axis: the bits of its dimensions in that
        // group, which identify the axis value.
        let keys = x
            .iter()
            .map(|xi| {
                (0..n_groups)
                    .map(|g| {
                        xi.iter().zip(&groups).filter(|(_, gi)| **gi == g).fold(
                            0u32,
                            |acc, (v, _)| {
                                acc.wrapping_mul(1_000_003)
                                    .wrapping_add((v * 1e6).round() as u32)
                            },
                        )
                    })
                    .collect()
            })
            .collect();
        BayesCore {
            x,
            groups,
            observed: vec![None; n],
            pending: vec![false; n],
            keys,
            settings,
            seed,
            stopped: None,
        }
    }

    fn open(&self, i: usize) -> bool {
        self.observed[i].is_none() && !self.pending[i]
    }

    fn measured_count(&self) -> usize {
        self.observed.iter().filter(|o| o.is_some()).count()
    }

    fn distance2(&self, a: usize, b: usize) -> f64 {
        self.x[a]
            .iter()
            .zip(&self.x[b])
            .map(|(p, q)| (p - q) * (p - q))
            .sum()
    }

    /// The open candidate farthest from everything measured or pending (a
    /// seeded random one when nothing is).
    fn space_filling(&self, rng: &mut SplitMix64) -> Option<usize> {
        let open: Vec<usize> = (0..self.x.len()).filter(|&i| self.open(i)).collect();
        if open.is_empty() {
            return None;
        }
        let taken: Vec<usize> = (0..self.x.len()).filter(|&i| !self.open(i)).collect();
        if taken.is_empty() {
            return Some(open[rng.below(open.len())]);
        }
        let pool: Vec<usize> = if open.len() > SAMPLE {
            (0..SAMPLE).map(|_| open[rng.below(open.len())]).collect()
        } else {
            open
        };
        pool.into_iter().max_by(|&a, &b| {
            let da = taken
                .iter()
                .map(|&t| self.distance2(a, t))
                .fold(f64::INFINITY, f64::min);
            let db = taken
                .iter()
                .map(|&t| self.distance2(b, t))
                .fold(f64::INFINITY, f64::min);
            da.total_cmp(&db)
        })
    }

    /// Candidates to score this round.
    fn pool(&self, rng: &mut SplitMix64) -> Vec<usize> {
        let open: Vec<usize> = (0..self.x.len()).filter(|&i| self.open(i)).collect();
        if open.len() <= EXHAUSTIVE_LIMIT {
            return open;
        }
        let mut pool: Vec<usize> = (0..SAMPLE).map(|_| open[rng.below(open.len())]).collect();
        pool.sort_unstable();
        pool.dedup();
        pool
    }

    /// Open candidates that differ from `centre` on exactly one axis.
    fn neighbours(&self, centre: usize) -> Vec<usize> {
        let key = &self.keys[centre];
        (0..self.x.len())
            .filter(|&i| self.open(i))
            .filter(|&i| self.keys[i].iter().zip(key).filter(|(a, b)| a != b).count() == 1)
            .collect()
    }

    fn model_based(&mut self, rng: &mut SplitMix64) -> Option<usize> {
        let measured: Vec<(usize, f64, bool)> = self
            .observed
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Some(Observation::Measured { score, feasible }) => Some((i, *score, *feasible)),
                _ => None,
            })
            .collect();
        if measured.len() < 2 {
            return self.space_filling(rng);
        }
        let x: Vec<Vec<f64>> = measured
            .iter()
            .map(|(i, _, _)| self.x[*i].clone())
            .collect();
        let y: Vec<f64> = measured.iter().map(|(_, s, _)| *s).collect();
        let gp = Gp::fit(&x, &y, &self.groups);
        // The incumbent: the best posterior mean at a measured feasible
        // point, not the best raw score, which noise inflates (a lucky run
        // would make every honest candidate look hopeless).
        let incumbent = |feasible_only: bool| {
            measured
                .iter()
                .filter(|(_, _, feasible)| *feasible || !feasible_only)
                .map(|(i, _, _)| gp.predict(&self.x[*i]).0)
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let best = incumbent(true);
        let best = if best.is_finite() {
            best
        } else {
            incumbent(false)
        };
        // Evidence for feasibility: every observed trial.
        let evidence: Vec<(usize, bool)> = self
            .observed
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o {
                Some(Observation::Measured { feasible, .. }) => Some((i, *feasible)),
                Some(Observation::Failed) => Some((i, false)),
                None => None,
            })
            .collect();
        let feasibility = Feasibility::fit(
            &evidence
                .iter()
                .map(|(i, _)| self.x[*i].clone())
                .collect::<Vec<_>>(),
            &evidence.iter().map(|(_, f)| *f).collect::<Vec<_>>(),
            &self.groups,
        );
        let pool = self.pool(rng);
        let acquisition = |i: usize| {
            let (mean, sd) = gp.predict(&self.x[i]);
            let ei = expected_improvement(mean, sd, best, MARGIN);
            let pof = feasibility.probability(&self.x[i]);
            (ei * pof, ei, pof)
        };
        let mut scored: Vec<(usize, f64, f64, f64)> = pool
            .into_iter()
            .map(|i| {
                let (a, ei, pof) = acquisition(i);
                (i, a, ei, pof)
            })
            .collect();
        if self.x.len() > EXHAUSTIVE_LIMIT {
            scored.sort_by(|a, b| b.1.total_cmp(&a.1));
            let seen: std::collections::HashSet<usize> = scored.iter().map(|s| s.0).collect();
            let extra: Vec<usize> = scored
                .iter()
                .take(REFINE_TOP)
                .flat_map(|s| self.neighbours(s.0))
                .filter(|i| !seen.contains(i))
                .collect();
            for i in extra {
                let (a, ei, pof) = acquisition(i);
                scored.push((i, a, ei, pof));
            }
        }
        // Configurations almost certain to fail are not worth a trial while
        // others are left, however fast the model guesses they would be.
        if scored.iter().any(|s| s.3 >= MIN_FEASIBILITY) {
            scored.retain(|s| s.3 >= MIN_FEASIBILITY);
        }
        let (choice, value, ei, _) = scored
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
        if let Some(threshold) = self.settings.stop_ei {
            if ei < threshold && value < threshold {
                self.stopped = Some(format!(
                    "no remaining configuration is expected to improve on the best by more than {:.2}%",
                    threshold * 100.0
                ));
                return None;
            }
        }
        Some(choice)
    }
}

impl SearchCore for BayesCore {
    fn propose(&mut self) -> Option<usize> {
        if self.stopped.is_some() {
            return None;
        }
        let known = self.observed.iter().filter(|o| o.is_some()).count()
            + self.pending.iter().filter(|p| **p).count();
        // Drawn afresh from the seed and the number of trials known, so a
        // proposal depends only on what was observed: a resumed search
        // continues exactly as an uninterrupted one would.
        let mut rng = SplitMix64::new(
            self.seed ^ 0x0062_6179_6573 ^ (known as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        );
        let choice = if self.measured_count() < self.settings.initial {
            self.space_filling(&mut rng)
        } else {
            self.model_based(&mut rng)
        }?;
        self.pending[choice] = true;
        Some(choice)
    }

    fn observe(&mut self, index: usize, observation: Observation) {
        self.observed[index] = Some(observation);
        self.pending[index] = false;
    }

    fn remaining(&self) -> usize {
        (0..self.x.len()).filter(|&i| self.open(i)).count()
    }

    fn stop_reason(&self) -> Option<String> {
        self.stopped.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-D grid of 12 × 12 points with one peak.
    fn grid() -> (Vec<Vec<f64>>, impl Fn(&[f64]) -> f64) {
        let x: Vec<Vec<f64>> = (0..144)
            .map(|i| vec![(i / 12) as f64 / 11.0, (i % 12) as f64 / 11.0])
            .collect();
        let f = |p: &[f64]| 5.0 - 8.0 * ((p[0] - 0.7).powi(2) + (p[1] - 0.3).powi(2));
        (x, f)
    }

    fn run(core: &mut BayesCore, f: impl Fn(usize) -> Observation, budget: usize) -> Vec<usize> {
        let mut trace = Vec::new();
        for _ in 0..budget {
            let Some(i) = core.propose() else { break };
            core.observe(i, f(i));
            trace.push(i);
        }
        trace
    }

    #[test]
    fn finds_the_peak_of_a_smooth_function_quickly() {
        let (x, f) = grid();
        let best = (0..144)
            .max_by(|&a, &b| f(&x[a]).total_cmp(&f(&x[b])))
            .unwrap();
        let mut core = BayesCore::new(x.clone(), vec![0, 1], BayesSettings::default(), 1);
        let trace = run(
            &mut core,
            |i| Observation::Measured {
                score: f(&x[i]),
                feasible: true,
            },
            30,
        );
        assert!(
            trace.contains(&best),
            "the optimum was found within 30 of 144 trials"
        );
        let unique: std::collections::HashSet<_> = trace.iter().collect();
        assert_eq!(unique.len(), trace.len(), "no candidate twice");
    }

    #[test]
    fn the_same_seed_gives_the_same_proposals() {
        let (x, f) = grid();
        let obs = |i: usize| Observation::Measured {
            score: f(&x[i]),
            feasible: true,
        };
        let a = run(
            &mut BayesCore::new(x.clone(), vec![0, 1], BayesSettings::default(), 7),
            obs,
            15,
        );
        let b = run(
            &mut BayesCore::new(x.clone(), vec![0, 1], BayesSettings::default(), 7),
            obs,
            15,
        );
        assert_eq!(a, b);
    }

    #[test]
    fn failures_steer_away_from_the_infeasible_region_without_counting_as_zero() {
        // The best values sit next to a corner that always fails.
        let (x, _) = grid();
        let fails = |p: &[f64]| p[0] > 0.75 && p[1] > 0.75;
        let f = |p: &[f64]| p[0] + p[1];
        let obs = |i: usize| {
            if fails(&x[i]) {
                Observation::Failed
            } else {
                Observation::Measured {
                    score: f(&x[i]),
                    feasible: true,
                }
            }
        };
        let mut core = BayesCore::new(x.clone(), vec![0, 1], BayesSettings::default(), 3);
        let trace = run(&mut core, obs, 40);
        let failures = trace.iter().filter(|&&i| fails(&x[i])).count();
        assert!(
            failures <= 12,
            "it learned to avoid the failing corner ({failures} of 40 tries there)"
        );
        // It still found the best feasible value.
        let best_feasible = (0..144)
            .filter(|&i| !fails(&x[i]))
            .map(|i| f(&x[i]))
            .fold(f64::MIN, f64::max);
        let found = trace
            .iter()
            .filter(|&&i| !fails(&x[i]))
            .map(|&i| f(&x[i]))
            .fold(f64::MIN, f64::max);
        assert!(found >= best_feasible - 0.1, "{found} vs {best_feasible}");
    }

    #[test]
    fn observed_rows_are_not_proposed_again_and_resume_continues() {
        let (x, f) = grid();
        let mut core = BayesCore::new(x.clone(), vec![0, 1], BayesSettings::default(), 1);
        for i in [0, 50, 100, 143, 70, 20, 90] {
            core.observe(
                i,
                Observation::Measured {
                    score: f(&x[i]),
                    feasible: true,
                },
            );
        }
        let next = core.propose().unwrap();
        assert!(![0, 50, 100, 143, 70, 20, 90].contains(&next));
        assert_eq!(core.remaining(), 144 - 8);
    }

    #[test]
    fn stops_early_when_nothing_is_expected_to_improve() {
        // A flat function: after the start nothing promises improvement.
        let (x, _) = grid();
        let settings = BayesSettings {
            initial: 6,
            stop_ei: Some(0.01),
        };
        let mut core = BayesCore::new(x, vec![0, 1], settings, 1);
        let trace = run(
            &mut core,
            |_| Observation::Measured {
                score: 1.0,
                feasible: true,
            },
            144,
        );
        assert!(trace.len() < 40, "{}", trace.len());
        assert!(core.stop_reason().unwrap().contains("expected to improve"));
    }
}
