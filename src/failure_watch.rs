//! Noticing a systematic failure. When the first trials a run measures, of
//! different configurations, all end the same way (same status, same exit,
//! same first line of error) and nothing of the plan ever worked, the cause
//! is common to all of them — the build, the machine, the model files —
//! and grinding through the rest of the plan and its retries would only
//! record it again. The sweep stops with a diagnosis; the trials that
//! showed it are marked, and run again when the sweep is resumed after the
//! cause is fixed.

use crate::runner::outcome::first_line;
use crate::store::row::TrialRow;

/// Trials that must all fail the same way before the sweep stops.
pub const TRIALS: usize = 3;

/// How a trial ended, for comparing endings.
#[derive(Debug, Clone, PartialEq)]
struct Ending {
    status: String,
    exit: Option<String>,
    error: String,
}

/// The diagnosis of a systematic failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnosis {
    /// The trials that showed it (they run again on resume).
    pub trial_ids: Vec<String>,
    /// What they share, in words, with the first one's log.
    pub text: String,
}

/// Watches the first trials of a run.
#[derive(Debug, Clone)]
pub struct FailureWatch {
    first: Vec<(String, Ending)>,
    /// Something of the plan worked (now or in an earlier run): the watch
    /// is off.
    worked: bool,
}

impl FailureWatch {
    /// `worked_before`: a row of the plan recorded earlier is ok.
    pub fn new(worked_before: bool) -> FailureWatch {
        FailureWatch {
            first: Vec::new(),
            worked: worked_before,
        }
    }

    /// Takes a recorded row (`ran`: false for a trial recorded as failed
    /// without running, e.g. of a model that could not be made). Returns
    /// the diagnosis once the first [`TRIALS`] trials that ran all failed
    /// the same way.
    pub fn observe(&mut self, row: &TrialRow, ran: bool) -> Option<Diagnosis> {
        if self.worked || !ran || self.first.iter().any(|(id, _)| *id == row.trial_id) {
            return None;
        }
        // A dropped trial ran to a result too.
        if row.status.ran() {
            self.worked = true;
            return None;
        }
        if self.first.len() >= TRIALS {
            return None;
        }
        let ending = Ending {
            status: row.status.name().to_string(),
            exit: row.exit.clone(),
            error: first_line(row.error.as_deref()).to_string(),
        };
        if self.first.iter().any(|(_, e)| *e != ending) {
            // Different endings: not one cause. Stop watching.
            self.worked = true;
            return None;
        }
        self.first.push((row.trial_id.clone(), ending.clone()));
        if self.first.len() < TRIALS {
            return None;
        }
        let first_log = format!("{}/{}.log", crate::store::LOGS, self.first[0].0);
        Some(Diagnosis {
            trial_ids: self.first.iter().map(|(id, _)| id.clone()).collect(),
            text: format!(
                "the first {TRIALS} trials, of different configurations, all ended the same way: {}{} — {}. \
                 That points at a cause they share (the llama.cpp build, this machine, the model \
                 files), not at their settings, so the sweep stopped instead of running the rest. \
                 See {first_log}, and `llama-sweep doctor` checks llama.cpp on this machine; once \
                 the cause is fixed, run the same command again: these trials run again",
                ending.status,
                ending.exit.map(|e| format!(" ({e})")).unwrap_or_default(),
                if ending.error.is_empty() {
                    "no error text"
                } else {
                    &ending.error
                }
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{TrialStatus, mock};
    use crate::test_support::row;

    fn crashed(id: &str) -> TrialRow {
        let mut r = row(id, &mock::failed(TrialStatus::Crashed, "died of SIGSEGV"));
        r.exit = Some("signal 11 (SIGSEGV)".into());
        r
    }

    #[test]
    fn three_identical_failures_fire_once_with_their_ids() {
        let mut w = FailureWatch::new(false);
        assert_eq!(w.observe(&crashed("a"), true), None);
        assert_eq!(
            w.observe(&crashed("a"), true),
            None,
            "a retry is the same trial"
        );
        assert_eq!(w.observe(&crashed("b"), true), None);
        let d = w.observe(&crashed("c"), true).unwrap();
        assert_eq!(d.trial_ids, ["a", "b", "c"]);
        assert!(
            d.text
                .contains("crashed (signal 11 (SIGSEGV)) — died of SIGSEGV"),
            "{}",
            d.text
        );
        assert!(d.text.contains("logs/a.log"), "{}", d.text);
        assert_eq!(w.observe(&crashed("d"), true), None);
    }

    #[test]
    fn an_ok_row_different_endings_or_earlier_success_keep_it_quiet() {
        let mut w = FailureWatch::new(false);
        w.observe(&crashed("a"), true);
        w.observe(&row("b", &mock::measured(10.0, 10.0)), true);
        assert_eq!(w.observe(&crashed("c"), true), None);
        assert_eq!(w.observe(&crashed("d"), true), None);

        let mut w = FailureWatch::new(false);
        w.observe(&crashed("a"), true);
        w.observe(
            &row("b", &mock::failed(TrialStatus::Oom, "out of memory")),
            true,
        );
        assert_eq!(w.observe(&crashed("c"), true), None);
        assert_eq!(w.observe(&crashed("d"), true), None);

        let mut w = FailureWatch::new(true);
        for id in ["a", "b", "c", "d"] {
            assert_eq!(w.observe(&crashed(id), true), None);
        }
        let mut w = FailureWatch::new(false);
        for id in ["a", "b", "c", "d"] {
            assert_eq!(
                w.observe(&crashed(id), false),
                None,
                "not run: not a symptom"
            );
        }
    }
}
