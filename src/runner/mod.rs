//! The parent side of a trial: run a [`TrialSpec`] somewhere and return its
//! [`TrialOutcome`]. The [`Executor`] trait lets the sweep loop, the store and
//! the summary be tested with a [`mock::MockExecutor`] instead of a model.

pub mod child;
pub mod mock;
pub mod outcome;

use crate::protocol::{ChildJob, TrialSpec};
use child::ChildRunner;
pub use outcome::{TrialOutcome, TrialStatus};
use std::path::Path;
use std::time::Duration;

/// How an execution ended: with an outcome to record, or cut short by a stop
/// request (nothing to record; the trial runs again on resume).
// One value per trial, moved once: boxing the outcome would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Execution {
    Done(TrialOutcome),
    Interrupted,
}

/// Runs trials. `Err` means the sweep itself cannot go on (the executable
/// cannot be started, the log cannot be written); every ending of a trial is
/// an `Ok`.
pub trait Executor {
    fn execute(&mut self, spec: &TrialSpec, log_path: &Path) -> anyhow::Result<Execution>;
}

/// Runs each trial in its own `llama-sweep trial` process.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    pub runner: ChildRunner,
    pub timeout: Duration,
}

impl Executor for ProcessExecutor {
    fn execute(&mut self, spec: &TrialSpec, log_path: &Path) -> anyhow::Result<Execution> {
        let ending = self
            .runner
            .run(&ChildJob::Measure(spec.clone()), log_path, self.timeout)?;
        if ending.interrupted {
            return Ok(Execution::Interrupted);
        }
        let log_end = outcome::log_end(log_path);
        Ok(Execution::Done(outcome::classify(
            ending,
            &log_end,
            self.timeout,
        )))
    }
}
