//! The parent side of a trial: run a [`TrialSpec`] somewhere and return its
//! [`TrialOutcome`]. The [`Executor`] trait lets the sweep loop, the store and
//! the summary be tested with a [`mock::MockExecutor`] instead of a model.

pub mod child;
pub mod crash_site;
pub mod mock;
pub mod outcome;
pub mod process;
pub mod resident;

use crate::protocol::{ChildJob, TestFault, TrialSpec};
pub use child::{ChildEnding, ChildRunner};
pub use outcome::{TrialOutcome, TrialStatus};
use std::path::Path;
use std::time::Duration;

/// Runs jobs in child processes: the one boundary between the sweep and
/// llama.cpp. Probing, quantizing, the backend self-test, quality and
/// measurement all go through it, so everything around them can be tested
/// with [`mock::MockChildren`].
pub trait Children {
    /// Runs `job` with its log at `log_path`, killed after `timeout`. Errors
    /// only when the child cannot be started or watched.
    fn run(
        &mut self,
        job: &ChildJob,
        log_path: &Path,
        timeout: Duration,
    ) -> anyhow::Result<ChildEnding>;

    /// The fault every child injects (`run --test-fault`), if any.
    fn test_fault(&self) -> Option<TestFault> {
        None
    }
}

impl Children for ChildRunner {
    fn run(
        &mut self,
        job: &ChildJob,
        log_path: &Path,
        timeout: Duration,
    ) -> anyhow::Result<ChildEnding> {
        ChildRunner::run(self, job, log_path, timeout)
    }

    fn test_fault(&self) -> Option<TestFault> {
        self.test_fault
    }
}

/// A trial loaded once in its own child, measured one block at a time on
/// command (a confirmation subject).
pub trait Resident {
    /// One block of its objective's test; the error is why it failed (the
    /// child is then gone).
    fn block(&mut self) -> Result<crate::protocol::BlockFigures, String>;

    /// The processes that measure, whose CPU time is not another process's.
    fn pids(&self) -> Vec<u32>;
}

/// Starts resident children.
pub trait Residents {
    /// Loads `job` in a resident child logging to `log`: the child, or why it
    /// could not load. `Err` only when nothing can be started at all.
    fn start(
        &mut self,
        job: &crate::protocol::ResidentJob,
        log: &Path,
    ) -> anyhow::Result<Result<Box<dyn Resident>, String>>;
}

/// How an execution ended: with an outcome to record, or cut short by a stop
/// request (nothing to record; the trial runs again on resume).
// One value per trial, moved once: boxing the outcome would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Execution {
    Done(TrialOutcome),
    Interrupted,
}

/// Measures trials. `Err` means the sweep itself cannot go on (the
/// executable cannot be started, the log cannot be written); every ending
/// of a trial is an `Ok`.
pub trait Executor {
    fn execute(&mut self, spec: &TrialSpec, log_path: &Path) -> anyhow::Result<Execution>;
}

/// Measures each trial as a child job, classifying how it ended.
pub struct ProcessExecutor<'a> {
    pub children: &'a mut dyn Children,
    pub timeout: Duration,
}

impl Executor for ProcessExecutor<'_> {
    fn execute(&mut self, spec: &TrialSpec, log_path: &Path) -> anyhow::Result<Execution> {
        let ending = self
            .children
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
