//! Runs one child process (`llama-sweep trial`) under the parent's clock.
//!
//! The child gets its own process group, so a timeout kills it and anything
//! it started; it dies with the parent (`PR_SET_PDEATHSIG`), so a killed sweep
//! leaves no orphan holding the GPU. The job goes in as one JSON line on
//! stdin; stdout is collected and its last line parsed as the reply; stderr
//! (llama.cpp's log) goes straight to the trial's log file. Peak RSS comes
//! from `wait4`'s rusage.

use crate::protocol::{ChildJob, ChildReply, ChildRequest, TestFault};
use anyhow::Context;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How often the wait for a child looks at the clock and for a stop request.
const POLL: Duration = Duration::from_millis(100);

/// Replies larger than this are not a reply.
const MAX_STDOUT: u64 = 16 << 20;

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for ExitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ExitKind::Code(c) => write!(f, "exit code {c}"),
            ExitKind::Signal(s) => write!(f, "signal {s} ({})", signal_name(s)),
        }
    }
}

pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "unknown signal",
    }
}

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
        let log = File::create(log_path)
            .with_context(|| format!("cannot create log {}", log_path.display()))?;
        let started = Instant::now();
        let mut command = Command::new(&self.exe);
        command
            .arg("trial")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .process_group(0);
        // SAFETY: getpid, prctl and getppid are async-signal-safe; nothing
        // else runs between fork and exec.
        let parent = unsafe { libc::getpid() };
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // The parent died before prctl took effect.
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {} trial", self.exe.display()))?;
        let pid = child.id() as libc::pid_t;

        let mut stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let request = ChildRequest {
            job: job.clone(),
            test_fault: self.test_fault,
        };
        let job_line = serde_json::to_string(&request).expect("jobs serialize") + "\n";
        // A child that exits before reading its job gives EPIPE: that is an
        // ending to classify, not an error of the parent.
        let _ = stdin.write_all(job_line.as_bytes());
        drop(stdin);

        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            let _ = (&mut stdout).take(MAX_STDOUT).read_to_end(&mut out);
            out
        });
        let (exited_tx, exited_rx) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let exited = wait_for_exit_without_reaping(pid);
            let _ = exited_tx.send(exited);
        });

        // Wait in short slices, so that a stop request is acted on at once.
        let deadline = started + timeout;
        let (mut timed_out, mut interrupted) = (false, false);
        loop {
            let slice = deadline.saturating_duration_since(Instant::now()).min(POLL);
            match exited_rx.recv_timeout(slice) {
                Ok(Ok(())) => break,
                Ok(Err(e)) => {
                    kill_group(pid);
                    return Err(e).context("cannot wait for the trial process");
                }
                Err(_) if crate::interrupt::requested() => {
                    kill_group(pid);
                    interrupted = true;
                    let _ = exited_rx.recv();
                    break;
                }
                Err(_) if Instant::now() >= deadline => {
                    kill_group(pid);
                    timed_out = true;
                    let _ = exited_rx.recv();
                    break;
                }
                Err(_) => {}
            }
        }
        waiter.join().expect("waiter thread does not panic");
        // The child has exited but is not reaped yet, so its pid (and process
        // group id) cannot be reused: killing leftovers of the group is safe.
        kill_group(pid);
        let (exit, peak_rss_kib) =
            reap(pid).context("cannot collect the trial process's exit status")?;
        let wall = started.elapsed();
        let stdout = reader.join().expect("reader thread does not panic");
        Ok(ChildEnding {
            reply: parse_reply(&stdout),
            exit,
            timed_out,
            interrupted,
            peak_rss_kib,
            wall,
        })
    }
}

fn kill_group(pid: libc::pid_t) {
    // SAFETY: plain syscall; ESRCH (group already gone) is fine.
    unsafe {
        libc::killpg(pid, libc::SIGKILL);
    }
}

/// Blocks until `pid` has exited, leaving it a zombie so its pid stays taken.
fn wait_for_exit_without_reaping(pid: libc::pid_t) -> std::io::Result<()> {
    loop {
        // SAFETY: siginfo is plain data, filled by the kernel.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaps `pid` with `wait4`, returning how it ended and its peak RSS.
fn reap(pid: libc::pid_t) -> std::io::Result<(ExitKind, Option<u64>)> {
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data, filled by the kernel.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            let exit = if libc::WIFSIGNALED(status) {
                ExitKind::Signal(libc::WTERMSIG(status))
            } else {
                ExitKind::Code(libc::WEXITSTATUS(status))
            };
            let rss = u64::try_from(usage.ru_maxrss).ok().filter(|&kib| kib > 0);
            return Ok((exit, rss));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
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
        assert_eq!(
            std::fs::read_to_string(dir.path().join("t.log")).unwrap(),
            "{\"job\":\"probe\"}\n"
        );
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
