//! Fakes of the child boundary, for testing everything around it without a
//! model or a child process: [`MockChildren`] answers every kind of child
//! job from a function of the job (`ended`, `died` build its endings);
//! [`MockExecutor`] answers measurements with outcomes (`measured` and
//! `failed` build them; wrap them in `Execution::Done`).

use super::child::{ChildEnding, ExitKind};
use super::{Children, Execution, Executor, TrialOutcome, TrialStatus};
use crate::protocol::{ChildJob, ChildReply, ModelFacts, TestFault, TrialMetrics, TrialSpec};
use std::path::Path;
use std::time::Duration;

/// Answers child jobs with `answer`, recording each job it was given.
pub struct MockChildren<F: FnMut(&ChildJob) -> ChildEnding> {
    answer: F,
    pub jobs: Vec<ChildJob>,
    pub fault: Option<TestFault>,
}

impl<F: FnMut(&ChildJob) -> ChildEnding> MockChildren<F> {
    pub fn new(answer: F) -> Self {
        MockChildren {
            answer,
            jobs: Vec::new(),
            fault: None,
        }
    }
}

impl<F: FnMut(&ChildJob) -> ChildEnding> Children for MockChildren<F> {
    fn run(&mut self, job: &ChildJob, log_path: &Path, _: Duration) -> anyhow::Result<ChildEnding> {
        std::fs::write(log_path, format!("mock log of {}\n", job.describe()))?;
        self.jobs.push(job.clone());
        Ok((self.answer)(job))
    }

    fn test_fault(&self) -> Option<TestFault> {
        self.fault
    }
}

/// A child that answered `reply` and exited 0 (3 for a failure).
pub fn ended(reply: ChildReply) -> ChildEnding {
    let code = if matches!(reply, ChildReply::Failed { .. }) {
        3
    } else {
        0
    };
    ChildEnding {
        reply: Ok(reply),
        exit: ExitKind::Code(code),
        timed_out: false,
        interrupted: false,
        peak_rss_kib: Some(100 * 1024),
        wall: Duration::from_millis(200),
    }
}

/// A child killed by `signal` before it answered.
pub fn died(signal: i32) -> ChildEnding {
    ChildEnding {
        reply: Err("the trial process wrote no result".into()),
        exit: ExitKind::Signal(signal),
        timed_out: false,
        interrupted: false,
        peak_rss_kib: Some(50 * 1024),
        wall: Duration::from_millis(100),
    }
}

pub struct MockExecutor<F: FnMut(&TrialSpec) -> Execution> {
    answer: F,
    /// Trial ids in the order they were executed.
    pub executed: Vec<String>,
}

impl<F: FnMut(&TrialSpec) -> Execution> MockExecutor<F> {
    pub fn new(answer: F) -> Self {
        MockExecutor {
            answer,
            executed: Vec::new(),
        }
    }
}

impl<F: FnMut(&TrialSpec) -> Execution> Executor for MockExecutor<F> {
    fn execute(&mut self, spec: &TrialSpec, log_path: &Path) -> anyhow::Result<Execution> {
        std::fs::write(log_path, format!("mock log of {}\n", spec.trial_id))?;
        self.executed.push(spec.trial_id.clone());
        Ok((self.answer)(spec))
    }
}

/// A successful outcome with constant samples: `tg` and `pp` t/s, and
/// latencies derived from them.
pub fn measured(tg: f64, pp: f64) -> TrialOutcome {
    TrialOutcome {
        status: TrialStatus::Ok,
        error: None,
        metrics: Some(TrialMetrics {
            dropped: None,
            server: None,
            model: ModelFacts {
                description: "mock 1M Q4_1".into(),
                n_params: 1_000_000,
                size_bytes: 1 << 20,
                n_layer: 4,
            },
            n_batch_actual: 512,
            n_ubatch_actual: 512,
            n_ctx_actual: 2048,
            load_ms: 10.0,
            pp_tps: vec![pp, pp * 1.01, pp * 0.99],
            tg_tps: vec![tg, tg * 1.01, tg * 0.99],
            ttft_ms: vec![1000.0 * 256.0 / pp; 3],
            e2e_ms: vec![1000.0 * (256.0 / pp + 64.0 / tg); 3],
            // The request generates as fast as tg.
            request_tps: vec![tg, tg * 1.01, tg * 0.99],
            output_tps: vec![64.0 / (256.0 / pp + 64.0 / tg); 3],
            layers_offloaded: 0,
            layers_total: 5,
            flash_attn_resolved: None,
            device_memory_used_bytes: None,
            weights: Vec::new(),
            overridden: Vec::new(),
            at_depth: Vec::new(),
            itl_ms: Vec::new(),
            busy: Default::default(),
        }),
        exit: Some("exit code 0".into()),
        peak_rss_kib: Some(200 * 1024),
        wall: Duration::from_millis(500),
        log_tail: String::new(),
    }
}

/// A failed outcome with a reason.
pub fn failed(status: TrialStatus, reason: &str) -> TrialOutcome {
    TrialOutcome {
        status,
        error: Some(reason.into()),
        metrics: None,
        exit: Some("exit code 3".into()),
        peak_rss_kib: Some(50 * 1024),
        wall: Duration::from_millis(100),
        log_tail: reason.into(),
    }
}
