//! The ETA of a running sweep: the trials its budget has left (not the
//! whole space), at the pace of the trials so far, then the confirmation
//! round; never past the end of the time budget.

use crate::config::SweepConfig;
use std::fmt;
use std::time::Duration;

/// What bounds the trials and what follows them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Schedule {
    /// `max_hours`: no trial starts that would end after it. Counted here
    /// from the first trial (the sweep counts from the search's first, after
    /// the reference trials: a little more time than this).
    pub max_time: Option<Duration>,
    /// The confirmation round's runs, in trials' time (0: no round).
    pub confirmation_trials: f64,
}

impl Schedule {
    /// A sweep's: the best `confirm.top` trials and the `references`
    /// measured again, side by side (each loaded once, then a block of one
    /// run of a test per pair) or in each of the confirmation's rounds. A
    /// worker runs no round (the finishing run does).
    pub fn of(config: &SweepConfig, references: usize, worker: bool) -> Schedule {
        let confirm = &config.confirm;
        let subjects = confirm.subjects(references) as f64;
        let first_look = confirm.first_look() as f64;
        let confirmation_trials = if worker {
            0.0
        } else if confirm.resident() {
            // Loading and warming up is about half a trial; a block is one
            // of a trial's runs of its three tests, up to the first look.
            let w = &config.workload;
            let runs = f64::from((w.warmup + w.repetitions).max(1) * 3);
            subjects * (0.5 + first_look / runs)
        } else {
            // A run repeats the workload `confirm.repetitions` times, twice
            // the sweep's unless set.
            let longer = confirm.repetitions.map_or(2.0, |r| {
                f64::from(r) / f64::from(config.workload.repetitions.max(1))
            });
            // The rounds before the first look; undecided, more follow
            // (up to max_rounds), which the ETA learns only then.
            first_look * subjects * longer
        };
        Schedule {
            max_time: config.sweep.max_time,
            confirmation_trials,
        }
    }
}

/// About how long the run has left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eta {
    pub left: Duration,
    /// Whether `left` counts the confirmation round.
    pub with_confirmation: bool,
}

/// After `done` of `total` trials, `elapsed` since the first started: the
/// trials left at the pace so far, then the confirmation round. Where the
/// time budget ends first, its end: the round does not run then.
pub fn eta(schedule: &Schedule, done: usize, total: usize, elapsed: Duration) -> Eta {
    let per_trial = elapsed.as_secs_f64() / done.max(1) as f64;
    let trials = per_trial * total.saturating_sub(done) as f64;
    if let Some(max) = schedule.max_time {
        let budget_left = max.saturating_sub(elapsed).as_secs_f64();
        if trials > budget_left {
            return Eta {
                left: Duration::from_secs_f64(budget_left),
                with_confirmation: false,
            };
        }
    }
    let confirmation = per_trial * schedule.confirmation_trials;
    Eta {
        left: Duration::from_secs_f64(trials + confirmation),
        with_confirmation: confirmation > 0.0,
    }
}

/// `36m 33s`, or `36m 33s incl. confirmation`.
impl fmt::Display for Eta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = Duration::from_secs(self.left.as_secs());
        write!(f, "{}", humantime::format_duration(whole))?;
        if self.with_confirmation {
            f.write_str(" incl. confirmation")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn counts_the_trials_the_budget_has_left_then_the_confirmation_round() {
        let plain = Schedule::default();
        // 4 of 10 trials in 4 minutes: 6 minutes left.
        assert_eq!(eta(&plain, 4, 10, 4 * MINUTE).to_string(), "6m");
        // The last trial of the budget: nothing left.
        assert_eq!(eta(&plain, 10, 10, 10 * MINUTE).to_string(), "0s");

        let confirming = Schedule {
            max_time: None,
            confirmation_trials: 3.0 * 5.0 * 2.0,
        };
        assert_eq!(
            eta(&confirming, 10, 10, 10 * MINUTE).to_string(),
            "30m incl. confirmation"
        );
        assert_eq!(
            eta(&confirming, 4, 10, 4 * MINUTE).to_string(),
            "36m incl. confirmation"
        );
    }

    #[test]
    fn a_sweep_file_gives_its_time_budget_and_its_round() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.gguf"), b"GGUF").unwrap();
        let config = |extra: &str| {
            let text = format!(
                "[sweep]\nname = \"s\"\nmax_hours = 2\n[[model]]\npath = \"m.gguf\"\n{extra}"
            );
            crate::config::parse(&dir.path().join("s.toml"), &text).unwrap()
        };
        // The best 3 and 2 references side by side: each loaded once (half
        // a trial), then 10 blocks, each one of a trial's 18 runs (1 warm-up
        // and 5 repetitions of 3 tests).
        let schedule = Schedule::of(&config(""), 2, false);
        assert_eq!(schedule.max_time, Some(120 * MINUTE));
        assert!((schedule.confirmation_trials - 5.0 * (0.5 + 10.0 / 18.0)).abs() < 1e-9);
        // In rounds: 3 rounds of runs twice as long.
        let rounds = Schedule::of(&config("[confirm]\nmode = \"rounds\"\n"), 2, false);
        assert_eq!(rounds.confirmation_trials, 30.0);
        assert_eq!(Schedule::of(&config(""), 2, true).confirmation_trials, 0.0);
        let none = config("[confirm]\ntop = 0\n");
        assert_eq!(Schedule::of(&none, 2, false).confirmation_trials, 0.0);
    }

    #[test]
    fn the_time_budget_ends_it_first_without_a_round() {
        let schedule = Schedule {
            max_time: Some(20 * MINUTE),
            confirmation_trials: 30.0,
        };
        // 74 trials at a minute would take past the budget's end.
        assert_eq!(eta(&schedule, 10, 84, 10 * MINUTE).to_string(), "10m");
        // Within the budget the round follows.
        assert_eq!(
            eta(&schedule, 10, 12, 10 * MINUTE).to_string(),
            "32m incl. confirmation"
        );
    }
}
