//! How a trial ended, decided by the parent from what it observed: the
//! child's reply, its exit status, whether it was killed for time, and its
//! log.

use super::child::{ChildEnding, ExitKind};
use crate::protocol::{ChildReply, TrialMetrics};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// Every way a trial can end. Each is a row; none stops the sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
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
    /// Exited 0 but its output could not be read as a result (also a row
    /// not read yet).
    #[default]
    Invalid,
    /// Measured, but stopped before all its runs: even its best run so far
    /// was clearly beaten by the best trial so far or broke a constraint
    /// (`early_drop`). Its runs are kept; it is never recommended.
    Dropped,
    /// Measured, but some of its runs only while other processes took the
    /// machine's cores, after waiting for them to stop: its figures are not
    /// comparable with the others', decide nothing (never ranked, never a
    /// bar), and it is measured again after the other trials or, once it
    /// was, when the sweep resumes.
    Busy,
}

impl TrialStatus {
    pub const ALL: [TrialStatus; 8] = [
        TrialStatus::Ok,
        TrialStatus::Failed,
        TrialStatus::Oom,
        TrialStatus::Timeout,
        TrialStatus::Crashed,
        TrialStatus::Invalid,
        TrialStatus::Dropped,
        TrialStatus::Busy,
    ];

    pub fn from_name(name: &str) -> Option<TrialStatus> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            TrialStatus::Ok => "ok",
            TrialStatus::Failed => "failed",
            TrialStatus::Oom => "oom",
            TrialStatus::Timeout => "timeout",
            TrialStatus::Crashed => "crashed",
            TrialStatus::Invalid => "invalid",
            TrialStatus::Dropped => "dropped",
            TrialStatus::Busy => "busy",
        }
    }

    /// Whether llama.cpp ran the trial to a result: measured to the end, or
    /// dropped on what its runs showed.
    pub fn ran(self) -> bool {
        matches!(
            self,
            TrialStatus::Ok | TrialStatus::Dropped | TrialStatus::Busy
        )
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
    "insufficient memory",
    "failed to allocate",
    "unable to allocate",
    "cannot allocate memory",
    "cudamalloc failed",
    "erroroutofdevicememory",
    "std::bad_alloc",
];

/// The first line of an error text (empty without one): what a one-line
/// summary shows of it.
pub fn first_line(error: Option<&str>) -> &str {
    error.unwrap_or("").lines().next().unwrap_or("")
}

pub fn mentions_oom(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    OOM_PATTERNS.iter().any(|p| lower.contains(p))
}

/// Classifies a child's ending from its reply, its exit, the clock, and the
/// end of its log (`log_end`, searched for out-of-memory messages and cut to
/// the last lines for the row). `timeout` is only used in the message.
///
/// A complete reply wins: measurements the child reported are kept even if it
/// then crashed or hung while exiting (noted in the error column).
pub fn classify(ending: ChildEnding, log_end: &str, timeout: Duration) -> TrialOutcome {
    let exit = Some(ending.exit.to_string());
    let (status, error, metrics) = match (ending.reply, ending.timed_out, ending.exit) {
        (Ok(ChildReply::Measured(m)), timed_out, end) => {
            let note = if timed_out {
                Some("the trial reported its measurements, then hung while exiting and was killed".to_string())
            } else if end != ExitKind::Code(0) {
                Some(format!("the trial reported its measurements, then ended abnormally ({end})"))
            } else {
                None
            };
            match &m.dropped {
                _ if m.busy.kept > 0 => (
                    TrialStatus::Busy,
                    Some(format!(
                        "measured while the machine was busy: {} of its runs with other \
                         processes using up to {:.1} of a core, after waiting for them; its \
                         figures decide nothing and it is measured again",
                        m.busy.kept, m.busy.other_cores_max
                    )),
                    Some(m),
                ),
                Some(why) => (TrialStatus::Dropped, Some(why.clone()), Some(m)),
                None => (TrialStatus::Ok, note, Some(m)),
            }
        }
        (Ok(ChildReply::Failed { reason }), _, _) => {
            let status = if mentions_oom(&reason) {
                TrialStatus::Oom
            } else {
                TrialStatus::Failed
            };
            (status, Some(reason), None)
        }
        (_, true, _) => (
            TrialStatus::Timeout,
            Some(format!(
                "no result within the trial timeout of {:.0} s; the trial's process group was killed",
                timeout.as_secs_f64()
            )),
            None,
        ),
        (_, false, ExitKind::Signal(libc::SIGKILL)) => (
            TrialStatus::Oom,
            Some("killed by SIGKILL, not by llama-sweep: most likely the kernel's out-of-memory killer".into()),
            None,
        ),
        (_, false, ExitKind::Signal(_)) | (Err(_), false, ExitKind::Code(1..)) => {
            let status = if mentions_oom(log_end) {
                TrialStatus::Oom
            } else {
                TrialStatus::Crashed
            };
            let site = super::crash_site::find(log_end)
                .and_then(|s| s.describe())
                .map(|s| format!(" {s}"))
                .unwrap_or_default();
            let error = format!(
                "the trial process died ({}){site} without a result",
                ending.exit
            );
            (status, Some(error), None)
        }
        (Err(why), false, ExitKind::Code(_)) => (TrialStatus::Invalid, Some(why), None),
        (Ok(other), false, _) => (
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
        log_tail: last_lines(log_end, LOG_TAIL_LINES),
    }
}

/// Lines of the trial's log kept in its row.
pub const LOG_TAIL_LINES: usize = 8;

/// The end of a log file: its last 64 KiB, enough to hold an error and the
/// backtrace after it.
pub fn log_end(path: &std::path::Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut buf = Vec::new();
    if file
        .seek(SeekFrom::Start(len.saturating_sub(64 << 10)))
        .is_err()
        || file.read_to_end(&mut buf).is_err()
    {
        return String::new();
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// The last `n` non-empty lines of `text`.
pub fn last_lines(text: &str, n: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(n)..].join("\n")
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
            interrupted: false,
            peak_rss_kib: Some(1000),
            wall: Duration::from_secs(1),
        }
    }

    fn metrics() -> TrialMetrics {
        TrialMetrics {
            dropped: None,
            server: None,
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
            request_tps: vec![1.0],
            output_tps: vec![1.0],
            layers_offloaded: 0,
            layers_total: 2,
            flash_attn_resolved: None,
            device_memory_used_bytes: None,
            weights: Vec::new(),
            overridden: Vec::new(),
            at_depth: Vec::new(),
            itl_ms: Vec::new(),
            busy: Default::default(),
        }
    }

    fn status(e: ChildEnding, log: &str) -> TrialStatus {
        classify(e, log, Duration::from_secs(5)).status
    }

    #[test]
    fn every_ending_has_a_class() {
        let failed = |r: &str| Ok(ChildReply::Failed { reason: r.into() });
        let ok = || Ok(ChildReply::Measured(metrics()));
        let none = || Err("none".to_string());
        use ExitKind::{Code, Signal};
        use TrialStatus::{Crashed, Failed, Invalid, Oom, Timeout};
        let cases = [
            (ok(), Code(0), false, "", TrialStatus::Ok),
            (none(), Signal(9), true, "", Timeout),
            (failed("cannot load model"), Code(3), false, "", Failed),
            (
                failed("failed to allocate CPU buffer"),
                Code(3),
                false,
                "",
                Oom,
            ),
            (none(), Signal(libc::SIGSEGV), false, "", Crashed),
            (
                none(),
                Signal(libc::SIGABRT),
                false,
                "CUDA error: out of memory",
                Oom,
            ),
            (none(), Signal(libc::SIGKILL), false, "", Oom),
            (none(), Code(101), false, "", Crashed),
            (Err("garbage".into()), Code(0), false, "", Invalid),
            (
                Ok(ChildReply::Quantized(crate::protocol::QuantizeReport {
                    output_bytes: 1,
                    seconds: 1.0,
                })),
                Code(0),
                false,
                "",
                Invalid,
            ),
        ];
        for (reply, exit, timed_out, log, expected) in cases {
            let label = format!("{reply:?} {exit} timed_out={timed_out}");
            assert_eq!(
                status(ending(reply, exit, timed_out), log),
                expected,
                "{label}"
            );
        }
    }

    #[test]
    fn oom_is_found_above_a_long_backtrace() {
        let mut log = String::from(
            "ggml_backend_cuda_buffer_type_alloc_buffer: allocating 9000 MiB on device 0: cudaMalloc failed: out of memory\n",
        );
        for i in 0..40 {
            log.push_str(&format!(
                "#{i} 0x00007f... in ggml_abort () from libggml-base.so\n"
            ));
        }
        let o = classify(
            ending(Err("none".into()), ExitKind::Signal(libc::SIGABRT), false),
            &log,
            Duration::from_secs(5),
        );
        assert_eq!(o.status, TrialStatus::Oom);
        assert_eq!(
            o.log_tail.lines().count(),
            LOG_TAIL_LINES,
            "the row keeps only the last lines"
        );
    }

    #[test]
    fn measurements_reported_before_a_bad_exit_are_kept() {
        for (exit, timed_out) in [
            (ExitKind::Signal(libc::SIGSEGV), false),
            (ExitKind::Signal(9), true),
            (ExitKind::Code(1), false),
        ] {
            let o = classify(
                ending(Ok(ChildReply::Measured(metrics())), exit, timed_out),
                "",
                Duration::from_secs(5),
            );
            assert_eq!(o.status, TrialStatus::Ok);
            assert!(o.metrics.is_some());
            assert!(o.error.unwrap().contains("reported its measurements"));
        }
    }

    #[test]
    fn outcome_keeps_exit_and_reason() {
        let o = classify(
            ending(Err("none".into()), ExitKind::Signal(libc::SIGSEGV), false),
            "first\n\nlast\n",
            Duration::from_secs(5),
        );
        assert_eq!(o.exit.as_deref(), Some("signal 11 (SIGSEGV)"));
        assert!(o.error.unwrap().contains("SIGSEGV"));
        assert_eq!(o.log_tail, "first\nlast");
    }

    #[test]
    fn log_end_and_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::fs::write(&p, "a\nb\n\nc\nd\n").unwrap();
        assert_eq!(last_lines(&log_end(&p), 2), "c\nd");
        assert_eq!(log_end(&dir.path().join("missing")), "");
    }
}
