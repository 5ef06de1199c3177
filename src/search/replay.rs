//! Replaying a search strategy against a recorded full grid: every proposal
//! is answered by the recorded row (its mean plus noise drawn from its own
//! spread; failures fail again), and we count how many trials the strategy
//! needed before it had measured a configuration within 1%, 2% and 5% of the
//! grid's best. Over many seeds this is how strategies are compared, and
//! tested, without a model.

use super::core::{Observation, score};
use super::core_for;
use super::encode::{Encoder, point_of_row};
use crate::config::{BayesSettings, StrategyKind};
use crate::objective::{Direction, Measured, Objective};
use crate::rng::SplitMix64;
use crate::store::row::TrialRow;
use std::collections::HashSet;
use std::fmt::Write;
use std::time::{Duration, Instant};

/// Thresholds reported, as fractions of the best value.
pub const WITHIN: [f64; 3] = [0.01, 0.02, 0.05];

/// A recorded grid, ready to answer proposals.
pub struct RecordedGrid {
    x: Vec<Vec<f64>>,
    groups: Vec<usize>,
    /// Per candidate: the recorded mean of the objective's metric, when the
    /// trial ran and meets the constraints.
    feasible_value: Vec<Option<f64>>,
    /// Per candidate: the recorded mean, when it ran at all.
    value: Vec<Option<f64>>,
    /// Per candidate: relative spread (sd / mean), the noise of a replay.
    cv: Vec<f64>,
    objective: Objective,
}

impl RecordedGrid {
    /// One candidate per distinct trial id (the last row wins).
    pub fn from_rows(rows: &[TrialRow], objective: &Objective) -> anyhow::Result<RecordedGrid> {
        let unique = unique_rows(rows);
        if unique.len() < 2 {
            anyhow::bail!(
                "a replay needs a recorded grid of at least 2 trials; found {}",
                unique.len()
            );
        }
        let points: Vec<_> = unique.iter().map(|r| point_of_row(r)).collect();
        let encoder = Encoder::fit(&points);
        let value: Vec<Option<f64>> = unique.iter().map(|r| objective.score(*r)).collect();
        let feasible_value = unique
            .iter()
            .zip(&value)
            .map(|(r, v)| v.filter(|_| objective.violations(*r).is_empty()))
            .collect();
        let cv = unique
            .iter()
            .map(
                |r| match (r.mean_of(objective.metric), r.sd_of(objective.metric)) {
                    (Some(m), Some(sd)) if m > 0.0 => sd / m,
                    _ => 0.0,
                },
            )
            .collect();
        Ok(RecordedGrid {
            x: points.iter().map(|p| encoder.encode(p)).collect(),
            groups: encoder.groups(),
            feasible_value,
            value,
            cv,
            objective: objective.clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.x.len()
    }

    pub fn is_empty(&self) -> bool {
        self.x.is_empty()
    }

    /// The best feasible recorded value.
    pub fn best(&self) -> Option<f64> {
        self.feasible_value
            .iter()
            .flatten()
            .copied()
            .reduce(|a, b| match self.objective.direction {
                Direction::Maximize => a.max(b),
                Direction::Minimize => a.min(b),
            })
    }

    fn answer(&self, i: usize, rng: &mut SplitMix64) -> Observation {
        match self.value[i] {
            None => Observation::Failed,
            Some(v) => Observation::Measured {
                // Log-scale noise of the recorded relative spread.
                score: score(&self.objective, v) + self.cv[i] * rng.normal(),
                feasible: self.feasible_value[i].is_some(),
            },
        }
    }

    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// The candidates that ran and meet the constraints, with their
    /// recorded means.
    pub fn feasible(&self) -> impl Iterator<Item = (usize, f64)> + '_ {
        self.feasible_value
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
    }

    /// Candidate `i`'s recorded mean, when it is feasible.
    pub fn feasible_value(&self, i: usize) -> Option<f64> {
        self.feasible_value[i]
    }

    /// Candidate `i`'s relative spread (sd / mean) of a repetition.
    pub fn cv(&self, i: usize) -> f64 {
        self.cv[i]
    }

    /// Whether `value` is within `fraction` of `best`, in the objective's
    /// direction.
    pub fn within(&self, value: f64, best: f64, fraction: f64) -> bool {
        within(self.objective.direction, value, best, fraction)
    }
}

/// Whether `value` is within `fraction` of `best` in `direction`.
pub fn within(direction: Direction, value: f64, best: f64, fraction: f64) -> bool {
    match direction {
        Direction::Maximize => value >= best * (1.0 - fraction),
        Direction::Minimize => value <= best * (1.0 + fraction),
    }
}

/// One row per distinct trial id, in the order recorded (the last row of
/// a trial wins).
pub fn unique_rows(rows: &[TrialRow]) -> Vec<&TrialRow> {
    let mut seen = HashSet::new();
    let mut unique: Vec<&TrialRow> = rows
        .iter()
        .rev()
        .filter(|r| seen.insert(r.trial_id.clone()))
        .collect();
    unique.reverse();
    unique
}

/// One simulated search: the candidates proposed, in order, and the time
/// each proposal took.
pub struct Trace {
    pub proposed: Vec<usize>,
    pub propose_times: Vec<Duration>,
}

pub fn simulate(
    grid: &RecordedGrid,
    kind: StrategyKind,
    settings: &BayesSettings,
    budget: usize,
    seed: u64,
) -> Trace {
    let mut core = core_for(kind, grid.x.clone(), grid.groups.clone(), settings, seed);
    let mut noise = SplitMix64::new(seed ^ 0x006e_6f69_7365);
    let mut trace = Trace {
        proposed: Vec::new(),
        propose_times: Vec::new(),
    };
    while trace.proposed.len() < budget {
        let started = Instant::now();
        let Some(i) = core.propose() else { break };
        trace.propose_times.push(started.elapsed());
        core.observe(i, grid.answer(i, &mut noise));
        trace.proposed.push(i);
    }
    trace
}

/// Trials needed until one within `fraction` of the grid's best was
/// measured; `None` if it never was.
pub fn trials_to_within(grid: &RecordedGrid, proposed: &[usize], fraction: f64) -> Option<usize> {
    let best = grid.best()?;
    proposed
        .iter()
        .position(|&i| grid.feasible_value[i].is_some_and(|v| grid.within(v, best, fraction)))
        .map(|k| k + 1)
}

/// Results of one strategy over several seeds.
pub struct StrategyResult {
    pub kind: StrategyKind,
    /// Per threshold in [`WITHIN`], per seed.
    pub trials: Vec<Vec<Option<usize>>>,
    pub slowest_propose: Duration,
    /// Observations when the slowest proposal was made.
    pub slowest_at: usize,
}

pub fn compare(
    grid: &RecordedGrid,
    kinds: &[StrategyKind],
    settings: &BayesSettings,
    budget: usize,
    seeds: u64,
) -> Vec<StrategyResult> {
    kinds
        .iter()
        .map(|&kind| {
            let mut trials = vec![Vec::new(); WITHIN.len()];
            let (mut slowest, mut slowest_at) = (Duration::ZERO, 0);
            // The grid is deterministic: one seed says it all.
            let seeds = if kind == StrategyKind::Grid { 1 } else { seeds };
            let traces = on_every_core(seeds, |seed| simulate(grid, kind, settings, budget, seed));
            for trace in traces {
                for (t, fraction) in WITHIN.iter().enumerate() {
                    trials[t].push(trials_to_within(grid, &trace.proposed, *fraction));
                }
                for (k, d) in trace.propose_times.iter().enumerate() {
                    if *d > slowest {
                        (slowest, slowest_at) = (*d, k);
                    }
                }
            }
            StrategyResult {
                kind,
                trials,
                slowest_propose: slowest,
                slowest_at,
            }
        })
        .collect()
}

/// `run(seed)` for seeds `0..seeds`, in order, spread over the machine's
/// cores (each seed's simulation is independent; one core each, so a
/// proposal's time is still its own).
fn on_every_core<T: Send>(seeds: u64, run: impl Fn(u64) -> T + Sync) -> Vec<T> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let next = std::sync::atomic::AtomicU64::new(0);
    let mut done: Vec<(u64, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..cores.min(seeds))
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if seed >= seeds {
                            return mine;
                        }
                        mine.push((seed, run(seed)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a replay thread panicked"))
            .collect()
    });
    done.sort_by_key(|(seed, _)| *seed);
    done.into_iter().map(|(_, t)| t).collect()
}

/// Median and quartiles, counting a threshold never reached as `budget + 1`.
pub fn quartiles(values: &[Option<usize>], budget: usize) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values
        .iter()
        .map(|x| x.unwrap_or(budget + 1) as f64)
        .collect();
    v.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let pos = q * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    (at(0.25), at(0.5), at(0.75))
}

pub fn render(grid: &RecordedGrid, results: &[StrategyResult], budget: usize) -> String {
    let mut out = String::new();
    let best = grid.best().map_or("none".into(), |b| {
        format!("{b:.2} {}", grid.objective.metric.unit())
    });
    let failed = grid.value.iter().filter(|v| v.is_none()).count();
    let infeasible = grid
        .value
        .iter()
        .zip(&grid.feasible_value)
        .filter(|(v, f)| v.is_some() && f.is_none())
        .count();
    let _ = writeln!(
        out,
        "grid: {} configurations ({failed} failed, {infeasible} break the constraints), best {best} ({})",
        grid.len(),
        grid.objective
    );
    let _ = writeln!(
        out,
        "trials until one within x% of the best was measured: median [quartiles] over seeds, budget {budget}"
    );
    let _ = writeln!(
        out,
        "  {:<8} {:>22} {:>22} {:>22}   slowest proposal",
        "strategy", "1%", "2%", "5%"
    );
    for r in results {
        let mut line = format!("  {:<8}", r.kind.name());
        for t in &r.trials {
            let (q1, med, q3) = quartiles(t, budget);
            let missed = t.iter().filter(|x| x.is_none()).count();
            let cell = if t.len() == 1 {
                format!("{med:.0}")
            } else {
                format!("{med:.0} [{q1:.0}–{q3:.0}]")
            };
            let cell = if missed > 0 {
                format!("{cell} ({missed} missed)")
            } else {
                cell
            };
            let _ = write!(line, " {cell:>22}");
        }
        let _ = write!(
            line,
            "   {:.0} ms at {} observations",
            r.slowest_propose.as_secs_f64() * 1000.0,
            r.slowest_at
        );
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The same figures as CSV, one line per strategy and threshold.
pub fn render_csv(grid: &RecordedGrid, results: &[StrategyResult], budget: usize) -> String {
    let mut out = String::from(
        "strategy,within_pct,median,q1,q3,missed,seeds,budget,grid,slowest_propose_ms,slowest_at\n",
    );
    for r in results {
        for (t, fraction) in r.trials.iter().zip(WITHIN) {
            let (q1, med, q3) = quartiles(t, budget);
            let missed = t.iter().filter(|x| x.is_none()).count();
            let _ = writeln!(
                out,
                "{},{},{med},{q1},{q3},{missed},{},{budget},{},{:.1},{}",
                r.kind.name(),
                fraction * 100.0,
                t.len(),
                grid.len(),
                r.slowest_propose.as_secs_f64() * 1000.0,
                r.slowest_at
            );
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::runner::{TrialStatus, mock};
    use crate::store::{csv_file, manifest};
    use crate::test_support::row;

    /// The rows of the tests/fixtures folder `name` and the objective they
    /// were recorded for.
    pub(crate) fn fixture_rows(name: &str) -> (Vec<TrialRow>, Objective) {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name);
        let rows = csv_file::read(&folder.join("results.csv")).unwrap();
        let objective = manifest::read(&folder.join("manifest.json"))
            .unwrap()
            .sweep
            .objective;
        (rows, objective)
    }

    /// A recorded grid of the tests/fixtures folder `name`.
    pub(crate) fn fixture(name: &str) -> RecordedGrid {
        let (rows, objective) = fixture_rows(name);
        RecordedGrid::from_rows(&rows, &objective).unwrap()
    }

    /// Thread counts 1..=n, generation speed peaking at `peak` threads,
    /// every fifth failing.
    fn toy(n: i32, peak: i32) -> Vec<TrialRow> {
        (1..=n)
            .map(|t| {
                let outcome = if t % 5 == 0 {
                    mock::failed(TrialStatus::Crashed, "boom")
                } else {
                    mock::measured(100.0 - ((t - peak) as f64).abs(), 50.0)
                };
                let mut r = row(&format!("t{t}"), &outcome);
                r.params.set(crate::knobs::N_THREADS, (t).into());
                r
            })
            .collect()
    }

    #[test]
    fn trials_are_counted_until_one_within_the_margin_is_measured() {
        let grid = RecordedGrid::from_rows(&toy(30, 12), &Objective::default()).unwrap();
        assert_eq!(grid.len(), 30);
        // tg_tps_mean of the mock is the mean of (v, 1.01 v, 0.99 v) = v.
        assert!((grid.best().unwrap() - 100.0).abs() < 1e-9);
        // In grid order the peak is the 12th trial; within 5% (≥ 95) the 7th.
        let in_order: Vec<usize> = (0..30).collect();
        assert_eq!(trials_to_within(&grid, &in_order, 0.0), Some(12));
        assert_eq!(trials_to_within(&grid, &in_order, 0.05), Some(7));
        // Failed trials never count, whatever was recorded near them.
        assert_eq!(trials_to_within(&grid, &[4, 9, 14], 0.5), None);
        let trace = simulate(&grid, StrategyKind::Grid, &BayesSettings::default(), 30, 1);
        assert_eq!(trace.proposed, in_order);
    }

    #[test]
    fn a_failed_recorded_trial_fails_again_in_the_replay() {
        let grid = RecordedGrid::from_rows(&toy(10, 3), &Objective::default()).unwrap();
        let mut rng = SplitMix64::new(1);
        assert_eq!(grid.answer(4, &mut rng), Observation::Failed);
        assert!(matches!(
            grid.answer(2, &mut rng),
            Observation::Measured { feasible: true, .. }
        ));
    }

    #[test]
    fn replays_are_deterministic_for_a_seed() {
        let grid = fixture("synthetic-cpu-threads");
        let run = |seed| {
            simulate(
                &grid,
                StrategyKind::Bayes,
                &BayesSettings::default(),
                20,
                seed,
            )
            .proposed
        };
        let a = run(3);
        assert_eq!(a.len(), 20);
        assert_eq!(a, run(3));
        assert_ne!(a, run(4));
    }

    #[test]
    fn failures_do_not_derail_the_search() {
        // A quarter of the offload grid runs out of device memory, right
        // next to the fastest configurations. Until it has found one within
        // 2% of the best, the Bayesian search should waste at least a third
        // fewer trials on failures than blind sampling does.
        let grid = fixture("synthetic-gpu-offload");
        let failing = grid.value.iter().filter(|v| v.is_none()).count();
        assert!(failing * 5 > grid.len(), "{failing} of {}", grid.len());
        // Bayes gets 80 trials; should it not find the best in them, all
        // its failures count.
        let failures_until_found = |kind, budget| -> Vec<usize> {
            (0..6)
                .map(|seed| {
                    let trace = simulate(&grid, kind, &BayesSettings::default(), budget, seed);
                    let found = trials_to_within(&grid, &trace.proposed, 0.02)
                        .unwrap_or(trace.proposed.len());
                    trace.proposed[..found]
                        .iter()
                        .filter(|&&i| grid.value[i].is_none())
                        .count()
                })
                .collect()
        };
        let total = |v: Vec<usize>| v.iter().sum::<usize>();
        let random = total(failures_until_found(StrategyKind::Random, grid.len()));
        let bayes = total(failures_until_found(StrategyKind::Bayes, 80));
        assert!(
            bayes * 3 < random * 2,
            "failed trials before finding the best: bayes {bayes}, random {random}"
        );
    }

    #[test]
    fn bayes_needs_fewer_trials_than_random_on_every_recorded_grid() {
        // Median over 8 seeds of the trials to get within 2% of the best.
        // Random may use the whole grid; bayes 40% of it (a miss counts as
        // over budget, so it can only make bayes look worse).
        for name in [
            "real-demo-grid",
            "synthetic-gpu-offload",
            "synthetic-cpu-threads",
        ] {
            let grid = fixture(name);
            let median = |kind, budget| {
                let results = compare(&grid, &[kind], &BayesSettings::default(), budget, 8);
                quartiles(&results[0].trials[1], budget).1
            };
            let random = median(StrategyKind::Random, grid.len());
            let bayes = median(StrategyKind::Bayes, grid.len() * 2 / 5);
            assert!(bayes < random, "{name}: bayes {bayes} vs random {random}");
            assert!(
                bayes <= 0.35 * grid.len() as f64,
                "{name}: bayes {bayes} of {}",
                grid.len()
            );
        }
    }

    #[test]
    fn quartiles_count_misses_as_over_budget() {
        let (q1, med, q3) = quartiles(&[Some(1), Some(3), None, Some(2)], 10);
        assert_eq!((q1, med, q3), (1.75, 2.5, 5.0));
    }
}
