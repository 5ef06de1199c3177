//! How a trial ended, decided by the parent from what it observed: the
//! child's reply, its exit status, whether it was killed for time, and its
//! log.

use super::child::{ChildEnding, ExitKind};
use crate::protocol::{ChildReply, TrialMetrics};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Every way a trial can end. Each is a row; none stops the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialStatus {
    /// Measured.
    Ok,
    /// The child reported an error (model would not load, context could not
    /// be created, ...).
    Failed,
    /// Host or device memory ran out (reported, logged, or the kernel's OOM
    /// killer).
    Oom,
    /// No result within the trial timeout; the process group was killed.
    Timeout,
    /// Killed by a signal or exited non-zero without a result.
    Crashed,
    /// Exited 0 but its output could not be read as a result.
    Invalid,
}

impl TrialStatus {
    pub fn name(self) -> &'static str {
        match self {
            TrialStatus::Ok => "ok",
            TrialStatus::Failed => "failed",
            TrialStatus::Oom => "oom",
            TrialStatus::Timeout => "timeout",
            TrialStatus::Crashed => "crashed",
            TrialStatus::Invalid => "invalid",
        }
    }
}

impl fmt::Display for TrialStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The parent's record of one trial.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialOutcome {
    pub status: TrialStatus,
    pub error: Option<String>,
    pub metrics: Option<TrialMetrics>,
    /// `exit code N` or `signal N (NAME)`.
    pub exit: Option<String>,
    pub peak_rss_kib: Option<u64>,
    pub wall: Duration,
    /// The last lines of the trial's log.
    pub log_tail: String,
}

/// Log phrases with which llama.cpp and its backends report exhausted memory.
const OOM_PATTERNS: &[&str] = &[
    "out of memory",
    "failed to allocate",
    "unable to allocate",
    "cannot allocate memory",
    "cudamalloc failed",
    "erroroutofdevicememory",
    "std::bad_alloc",
];

pub fn mentions_oom(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    OOM_PATTERNS.iter().any(|p| lower.contains(p))
}

/// Classifies a child's ending. `timeout` is only used in the message.
pub fn classify(ending: ChildEnding, log_tail: String, timeout: Duration) -> TrialOutcome {
    let exit = Some(ending.exit.to_string());
    let (status, error, metrics) = match (ending.timed_out, ending.reply, ending.exit) {
        (true, _, _) => (
            TrialStatus::Timeout,
            Some(format!(
                "no result within the trial timeout of {:.0} s; the trial's process group was killed",
                timeout.as_secs_f64()
            )),
            None,
        ),
        (false, Ok(ChildReply::Measured(m)), ExitKind::Code(0)) => (TrialStatus::Ok, None, Some(m)),
        (false, Ok(ChildReply::Failed { reason }), _) => {
            let status = if mentions_oom(&reason) {
                TrialStatus::Oom
            } else {
                TrialStatus::Failed
            };
            (status, Some(reason), None)
        }
        (false, _, ExitKind::Signal(libc::SIGKILL)) => (
            TrialStatus::Oom,
            Some("killed by SIGKILL, not by llama-sweep: most likely the kernel's out-of-memory killer".into()),
            None,
        ),
        (false, _, ExitKind::Signal(_)) | (false, Err(_), ExitKind::Code(1..)) => {
            let status = if mentions_oom(&log_tail) {
                TrialStatus::Oom
            } else {
                TrialStatus::Crashed
            };
            (status, Some(format!("the trial process died ({}) without a result", ending.exit)), None)
        }
        (false, Err(why), ExitKind::Code(_)) => (TrialStatus::Invalid, Some(why), None),
        (false, Ok(other), _) => (
            TrialStatus::Invalid,
            Some(format!("the trial process gave an unexpected reply: {other:?}")),
            None,
        ),
    };
    TrialOutcome {
        status,
        error,
        metrics,
        exit,
        peak_rss_kib: ending.peak_rss_kib,
        wall: ending.wall,
        log_tail,
    }
}

/// The last `lines` lines of a log file, at most the last 8 KiB of it.
pub fn log_tail(path: &std::path::Path, lines: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(8192);
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ModelFacts;

    fn ending(reply: Result<ChildReply, String>, exit: ExitKind, timed_out: bool) -> ChildEnding {
        ChildEnding {
            reply,
            exit,
            timed_out,
            peak_rss_kib: Some(1000),
            wall: Duration::from_secs(1),
        }
    }

    fn metrics() -> TrialMetrics {
        TrialMetrics {
            model: ModelFacts {
                description: "m".into(),
                n_params: 1,
                size_bytes: 1,
                n_layer: 1,
            },
            n_batch_actual: 512,
            n_ubatch_actual: 512,
            n_ctx_actual: 512,
            load_ms: 1.0,
            pp_tps: vec![1.0],
            tg_tps: vec![1.0],
            ttft_ms: vec![1.0],
            e2e_ms: vec![1.0],
            layers_offloaded: 0,
            layers_total: 2,
            flash_attn_resolved: None,
            device_memory_used_bytes: None,
        }
    }

    fn status(e: ChildEnding, log: &str) -> TrialStatus {
        classify(e, log.into(), Duration::from_secs(5)).status
    }

    #[test]
    fn every_ending_has_a_class() {
        let failed = |r: &str| Ok(ChildReply::Failed { reason: r.into() });
        let ok = Ok(ChildReply::Measured(metrics()));
        assert_eq!(
            status(ending(ok.clone(), ExitKind::Code(0), false), ""),
            TrialStatus::Ok
        );
        assert_eq!(
            status(ending(ok, ExitKind::Signal(9), true), ""),
            TrialStatus::Timeout
        );
        assert_eq!(
            status(
                ending(failed("cannot load model"), ExitKind::Code(3), false),
                ""
            ),
            TrialStatus::Failed
        );
        assert_eq!(
            status(
                ending(
                    failed("failed to allocate CPU buffer"),
                    ExitKind::Code(3),
                    false
                ),
                ""
            ),
            TrialStatus::Oom
        );
        assert_eq!(
            status(
                ending(Err("none".into()), ExitKind::Signal(libc::SIGSEGV), false),
                ""
            ),
            TrialStatus::Crashed
        );
        assert_eq!(
            status(
                ending(Err("none".into()), ExitKind::Signal(libc::SIGABRT), false),
                "CUDA error: out of memory"
            ),
            TrialStatus::Oom
        );
        assert_eq!(
            status(
                ending(Err("none".into()), ExitKind::Signal(libc::SIGKILL), false),
                ""
            ),
            TrialStatus::Oom
        );
        assert_eq!(
            status(ending(Err("none".into()), ExitKind::Code(101), false), ""),
            TrialStatus::Crashed
        );
        assert_eq!(
            status(ending(Err("garbage".into()), ExitKind::Code(0), false), ""),
            TrialStatus::Invalid
        );
        assert_eq!(
            status(
                ending(
                    Ok(ChildReply::Measured(metrics())),
                    ExitKind::Code(1),
                    false
                ),
                ""
            ),
            TrialStatus::Invalid
        );
    }

    #[test]
    fn outcome_keeps_exit_and_reason() {
        let o = classify(
            ending(Err("none".into()), ExitKind::Signal(libc::SIGSEGV), false),
            "last".into(),
            Duration::from_secs(5),
        );
        assert_eq!(o.exit.as_deref(), Some("signal 11 (SIGSEGV)"));
        assert!(o.error.unwrap().contains("SIGSEGV"));
        assert_eq!(o.log_tail, "last");
    }

    #[test]
    fn log_tail_keeps_last_nonempty_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, "a\nb\n\nc\nd\n").unwrap();
        assert_eq!(log_tail(&p, 2), "c\nd");
        assert_eq!(log_tail(&dir.path().join("missing"), 2), "");
    }
}
