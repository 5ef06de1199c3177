//! Runs one child process (`llama-sweep trial`) under the parent's clock
//! ([`super::process`]): the job goes in as one JSON line on stdin; stdout's
//! last line is parsed as the reply; stderr (llama.cpp's log) goes straight
//! to the trial's log file.

use super::process;
pub use super::process::{ExitKind, signal_name};
use crate::protocol::{ChildJob, ChildReply, ChildRequest, TestFault};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Everything the parent observed about one child run.
#[derive(Debug, Clone)]
pub struct ChildEnding {
    /// The parsed reply, or why there was none (empty or unparsable stdout).
    pub reply: Result<ChildReply, String>,
    pub exit: ExitKind,
    /// The parent killed the child because it ran past its timeout.
    pub timed_out: bool,
    /// The parent killed the child because the sweep was asked to stop.
    pub interrupted: bool,
    /// Peak resident set size of the child, KiB (`ru_maxrss`).
    pub peak_rss_kib: Option<u64>,
    pub wall: Duration,
}

/// Spawns `<exe> trial` children.
#[derive(Debug, Clone)]
pub struct ChildRunner {
    pub exe: PathBuf,
    /// A fault every child is asked to inject (`run --test-fault`).
    pub test_fault: Option<TestFault>,
}

impl ChildRunner {
    /// A runner that re-executes this very binary.
    pub fn current() -> anyhow::Result<ChildRunner> {
        let exe = std::env::current_exe().context("cannot locate the llama-sweep executable")?;
        // Whoever started us may have set SIGCHLD to "ignore", which makes
        // the kernel reap children itself and leaves nothing to wait for.
        // SAFETY: restoring a signal's default action.
        unsafe {
            libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        }
        Ok(ChildRunner {
            exe,
            test_fault: None,
        })
    }

    /// Runs `job` in a child, its stderr written to `log_path`, killing its
    /// process group after `timeout`. Errors only when the child cannot be
    /// started or watched; every way the child itself can end is a
    /// [`ChildEnding`].
    pub fn run(
        &self,
        job: &ChildJob,
        log_path: &Path,
        timeout: Duration,
    ) -> anyhow::Result<ChildEnding> {
        let mut command = Command::new(&self.exe);
        command.arg("trial");
        let scratch = Scratch::new()?;
        let request = ChildRequest {
            job: job.clone(),
            test_fault: self.test_fault,
            scratch: Some(scratch.0.clone()),
        };
        let job_line = serde_json::to_string(&request).expect("jobs serialize") + "\n";
        let ended = process::run_to_end(command, job_line.as_bytes(), log_path, timeout)
            .with_context(|| format!("cannot run {} trial", self.exe.display()))?;
        drop(scratch);
        Ok(ChildEnding {
            reply: parse_reply(&ended.stdout),
            exit: ended.exit,
            timed_out: ended.timed_out,
            interrupted: ended.interrupted,
            peak_rss_kib: ended.peak_rss_kib,
            wall: ended.wall,
        })
    }
}

/// A child's scratch folder under the temporary directory, removed with
/// whatever the child left there when dropped (a child killed mid-trial
/// leaves its saved caches behind).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> anyhow::Result<Scratch> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("llama-sweep-child-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| {
            format!("cannot create the child's scratch folder {}", dir.display())
        })?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The reply is the last non-empty stdout line.
fn parse_reply(stdout: &[u8]) -> Result<ChildReply, String> {
    let text = String::from_utf8_lossy(stdout);
    let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) else {
        return Err("the trial process wrote no result".into());
    };
    serde_json::from_str(line).map_err(|e| {
        let shown: String = line.chars().take(200).collect();
        format!("the trial process wrote an unreadable result ({e}): {shown}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_is_the_last_nonempty_line() {
        let out = b"noise\n{\"reply\":\"failed\",\"reason\":\"x\"}\n\n";
        assert_eq!(
            parse_reply(out).unwrap(),
            ChildReply::Failed { reason: "x".into() }
        );
        assert!(parse_reply(b"").unwrap_err().contains("no result"));
        assert!(
            parse_reply(b"{\"reply\":")
                .unwrap_err()
                .contains("unreadable")
        );
    }

    fn sh(script: &str) -> ChildRunner {
        // `sh -c <script> trial` : $0 = trial, so the runner's argument is harmless.
        let dir = tempfile::tempdir().unwrap().keep();
        let exe = dir.join("fake-child");
        std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        ChildRunner {
            exe,
            test_fault: None,
        }
    }

    #[test]
    fn collects_reply_exit_code_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("t.log");
        let runner = sh(
            "cat >/dev/null; echo 'llama log line' >&2; echo '{\"reply\":\"failed\",\"reason\":\"no\"}'; exit 3",
        );
        let end = runner
            .run(&ChildJob::Probe, &log, Duration::from_secs(10))
            .unwrap();
        assert_eq!(end.exit, ExitKind::Code(3));
        assert!(!end.timed_out);
        assert_eq!(
            end.reply.unwrap(),
            ChildReply::Failed {
                reason: "no".into()
            }
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "llama log line\n");
        assert!(end.peak_rss_kib.is_some());
    }

    #[test]
    fn the_job_arrives_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let runner = sh("read line; echo \"$line\" >&2");
        runner
            .run(
                &ChildJob::Probe,
                &dir.path().join("t.log"),
                Duration::from_secs(10),
            )
            .unwrap();
        let line = std::fs::read_to_string(dir.path().join("t.log")).unwrap();
        let request: ChildRequest = serde_json::from_str(&line).unwrap();
        assert_eq!(request.job, ChildJob::Probe);
        assert!(request.scratch.is_some(), "{line}");
    }

    #[test]
    fn a_killed_childs_scratch_folder_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("t.log");
        // The child saves a (fake) KV cache in its scratch folder and hangs.
        let runner = sh(
            "read line; d=$(echo \"$line\" | sed 's/.*\"scratch\":\"\\([^\"]*\\)\".*/\\1/'); \
             echo \"$d\" >&2; head -c 4096 /dev/zero > \"$d/kv.state\"; sleep 30",
        );
        let end = runner
            .run(&ChildJob::Probe, &log, Duration::from_millis(500))
            .unwrap();
        assert!(end.timed_out);
        let scratch = std::fs::read_to_string(&log).unwrap();
        let scratch = std::path::Path::new(scratch.trim());
        assert!(scratch.starts_with(std::env::temp_dir()), "{scratch:?}");
        assert!(!scratch.exists(), "{scratch:?} was left behind");
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("grandchild-survived");
        let runner = sh(&format!("(sleep 2; touch {}) & sleep 30", marker.display()));
        let end = runner
            .run(
                &ChildJob::Probe,
                &dir.path().join("t.log"),
                Duration::from_millis(300),
            )
            .unwrap();
        assert!(end.timed_out);
        assert_eq!(end.exit, ExitKind::Signal(libc::SIGKILL));
        assert!(end.wall < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the grandchild outlived the timeout kill");
    }

    #[test]
    fn a_signal_is_reported_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let end = sh("kill -SEGV $$")
            .run(
                &ChildJob::Probe,
                &dir.path().join("t.log"),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(end.exit, ExitKind::Signal(libc::SIGSEGV));
        assert!(end.reply.is_err());
        assert_eq!(end.exit.to_string(), "signal 11 (SIGSEGV)");
    }
}
