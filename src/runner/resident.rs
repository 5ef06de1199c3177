//! The parent side of a resident child (`protocol::ResidentJob`): started
//! once, it loads its trial and stays, measuring one block per command,
//! until dropped. Like every child it runs in a process group of its own
//! that dies with the parent, its stderr is its log, and the parent's
//! clock bounds the load and each block: a child that crashes, hangs or
//! answers nonsense is a reason, and is killed.

use super::process::{self, ExitKind};
use super::{Resident, Residents};
use crate::protocol::{
    BlockFigures, ChildJob, ChildReply, ChildRequest, RESIDENT_MEASURE, RESIDENT_STOP, ResidentJob,
};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Starts resident children of `exe` (this binary), each load and block
/// bounded by `timeout`.
pub struct ResidentRunner {
    pub exe: PathBuf,
    pub timeout: Duration,
}

impl Residents for ResidentRunner {
    fn start(
        &mut self,
        job: &ResidentJob,
        log: &Path,
    ) -> anyhow::Result<Result<Box<dyn Resident>, String>> {
        Ok(ResidentChild::start(&self.exe, job, log, self.timeout)
            .map(|c| Box::new(c) as Box<dyn Resident>))
    }
}

/// One resident child.
pub struct ResidentChild {
    child: Child,
    /// The processes the child runs that measure beside it.
    measurers: Vec<u32>,
    stdin: Option<ChildStdin>,
    replies: mpsc::Receiver<String>,
    timeout: Duration,
    log: PathBuf,
    scratch: PathBuf,
}

impl ResidentChild {
    /// Starts `job` and waits until it has loaded; the error says why it
    /// could not.
    pub fn start(
        exe: &Path,
        job: &ResidentJob,
        log: &Path,
        timeout: Duration,
    ) -> Result<ResidentChild, String> {
        let scratch = std::env::temp_dir().join(format!(
            "llama-sweep-resident-{}-{}",
            std::process::id(),
            job.spec.trial_id
        ));
        std::fs::create_dir_all(&scratch)
            .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
        let mut command = Command::new(exe);
        command.arg("trial");
        let mut child = process::spawn_logged(command, log, true).map_err(|e| format!("{e:#}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if !line.trim().is_empty() && tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut resident = ResidentChild {
            stdin: child.stdin.take(),
            child,
            measurers: Vec::new(),
            replies,
            timeout,
            log: log.to_path_buf(),
            scratch: scratch.clone(),
        };
        let request = ChildRequest {
            job: ChildJob::Resident(job.clone()),
            test_fault: None,
            scratch: Some(scratch),
        };
        resident.send(&serde_json::to_string(&request).expect("jobs serialize"))?;
        match resident.reply()? {
            ChildReply::Ready { measurers, .. } => {
                resident.measurers = measurers;
                Ok(resident)
            }
            other => Err(resident.unexpected(other)),
        }
    }

    fn send(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("the resident child has ended")?;
        writeln!(stdin, "{line}")
            .and_then(|_| stdin.flush())
            .map_err(|_| self.ended("stopped reading its commands"))
    }

    /// The next reply, within the timeout.
    fn reply(&mut self) -> Result<ChildReply, String> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let slice = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100));
            match self.replies.recv_timeout(slice) {
                Ok(line) => {
                    return serde_json::from_str(&line).map_err(|e| {
                        let shown: String = line.chars().take(200).collect();
                        format!("the resident child wrote an unreadable reply ({e}): {shown}")
                    });
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(self.ended("ended without answering"));
                }
                Err(mpsc::RecvTimeoutError::Timeout) if crate::interrupt::requested() => {
                    self.kill();
                    return Err("interrupted".into());
                }
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= deadline => {
                    self.kill();
                    return Err(format!(
                        "timed out: no answer within {} s",
                        self.timeout.as_secs()
                    ));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// Why the child is gone: its exit status and the end of its log.
    fn ended(&mut self, what: &str) -> String {
        let status = match self.child.wait() {
            Ok(s) => ExitKind::of(s).map_or("an unknown ending".into(), |e| e.to_string()),
            Err(e) => format!("an ending that could not be read ({e})"),
        };
        let tail = crate::runtime::log_tail(&self.log, 2);
        let crashed = if status.starts_with("signal") {
            "crashed"
        } else {
            "failed"
        };
        format!("{crashed}: the resident child {what} ({status}): {tail}")
    }

    fn unexpected(&mut self, reply: ChildReply) -> String {
        self.kill();
        match reply {
            ChildReply::Failed { reason } => format!("failed: {reason}"),
            other => format!("the resident child answered {other:?}"),
        }
    }

    fn kill(&mut self) {
        process::kill_group(self.child.id() as libc::pid_t);
        let _ = self.child.wait();
        self.stdin = None;
    }
}

impl Resident for ResidentChild {
    fn block(&mut self) -> Result<BlockFigures, String> {
        self.send(RESIDENT_MEASURE)?;
        match self.reply()? {
            ChildReply::Block(figures) => Ok(figures),
            other => Err(self.unexpected(other)),
        }
    }

    fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.child.id()];
        pids.extend(&self.measurers);
        pids
    }
}

impl Drop for ResidentChild {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.send(RESIDENT_STOP);
            self.stdin = None;
            // A child that does not leave within a second is killed.
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        process::kill_group(self.child.id() as libc::pid_t);
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake child: `script` in sh, as the runner's `trial` subcommand.
    fn fake(script: &str) -> PathBuf {
        let dir = tempfile::tempdir().unwrap().keep();
        let exe = dir.join("fake-child");
        std::fs::write(&exe, format!("#!/bin/sh\n{script}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        exe
    }

    fn job() -> ResidentJob {
        ResidentJob {
            spec: crate::test_support::spec("t"),
            metric: crate::objective::Metric::RequestTps,
        }
    }

    const READY: &str = r#"echo '{"reply":"ready","load_ms":5.0}'"#;
    const BLOCK: &str = r#"echo '{"reply":"block","figures":[["request_tps",90.0]]}'"#;

    #[test]
    fn a_resident_child_answers_a_block_per_command_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("r.log");
        let marker = dir.path().join("stopped");
        let exe = fake(&format!(
            "read job; {READY}; while read cmd; do [ \"$cmd\" = measure ] || break; {BLOCK}; done; touch {}",
            marker.display()
        ));
        let mut child = ResidentChild::start(&exe, &job(), &log, Duration::from_secs(10)).unwrap();
        for _ in 0..3 {
            let block = child.block().unwrap();
            assert_eq!(
                block.value(crate::objective::Metric::RequestTps),
                Some(90.0)
            );
        }
        drop(child);
        assert!(marker.exists(), "the stop command ended it");
    }

    #[test]
    fn a_child_that_crashes_or_hangs_is_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("r.log");
        let exe = fake(&format!(
            "read job; {READY}; read cmd; echo 'ggml: boom' >&2; kill -SEGV $$"
        ));
        let mut child = ResidentChild::start(&exe, &job(), &log, Duration::from_secs(10)).unwrap();
        let err = child.block().unwrap_err();
        assert!(
            err.starts_with("crashed") && err.contains("SIGSEGV"),
            "{err}"
        );
        assert!(err.contains("ggml: boom"), "{err}");

        let exe = fake(&format!("read job; {READY}; read cmd; sleep 30"));
        let mut child =
            ResidentChild::start(&exe, &job(), &log, Duration::from_millis(500)).unwrap();
        let started = Instant::now();
        let err = child.block().unwrap_err();
        assert!(err.starts_with("timed out"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));

        let exe = fake(r#"read job; echo '{"reply":"failed","reason":"cannot load model x"}'"#);
        let err = ResidentChild::start(&exe, &job(), &log, Duration::from_secs(10))
            .err()
            .unwrap();
        assert_eq!(err, "failed: cannot load model x");
    }
}
