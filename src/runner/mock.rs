//! A fake executor that answers each trial from a function of its spec, for
//! testing everything around the runner without a model or a child process.
//! `measured` and `failed` build outcomes; wrap them in `Execution::Done`.

use super::{Execution, Executor, TrialOutcome, TrialStatus};
use crate::protocol::{ModelFacts, TrialMetrics, TrialSpec};
use std::path::Path;
use std::time::Duration;

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
            layers_offloaded: 0,
            layers_total: 5,
            flash_attn_resolved: None,
            device_memory_used_bytes: None,
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
