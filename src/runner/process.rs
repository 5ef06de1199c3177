//! A process under the parent's clock. The child gets its own process
//! group, so a timeout kills it and anything it started, and it dies with
//! the parent (`PR_SET_PDEATHSIG`), so a killed sweep leaves no orphan
//! holding the GPU. Its stderr goes to a log file; peak RSS comes from
//! `wait4`'s rusage. The trial children and the app's runtimes (a Python
//! interpreter, llama-server) all run this way.

use anyhow::Context;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
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

impl ExitKind {
    /// How a process waited for ended (`None`: neither a code nor a
    /// signal, which Unix does not give).
    pub fn of(status: std::process::ExitStatus) -> Option<ExitKind> {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (_, Some(signal)) => Some(ExitKind::Signal(signal)),
            (Some(code), _) => Some(ExitKind::Code(code)),
            _ => None,
        }
    }
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

/// Puts the command's process in a group of its own that dies with this
/// process.
pub fn isolate(command: &mut Command) {
    command.process_group(0);
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
}

/// Starts `command` isolated, with its stderr (and stdout, unless piped
/// here) going to `log_path`.
pub fn spawn_logged(
    mut command: Command,
    log_path: &Path,
    pipe_stdout: bool,
) -> anyhow::Result<Child> {
    let log = File::create(log_path)
        .with_context(|| format!("cannot create log {}", log_path.display()))?;
    let stdout = if pipe_stdout {
        Stdio::piped()
    } else {
        Stdio::from(
            log.try_clone()
                .with_context(|| format!("cannot use log {}", log_path.display()))?,
        )
    };
    command
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::from(log));
    isolate(&mut command);
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .spawn()
        .with_context(|| format!("cannot start {program}"))
}

/// How a process run to its end ended.
#[derive(Debug, Clone)]
pub struct ProcessEnding {
    /// What it wrote on stdout (at most 16 MiB).
    pub stdout: Vec<u8>,
    pub exit: ExitKind,
    /// Killed because it ran past its timeout.
    pub timed_out: bool,
    /// Killed because the sweep was asked to stop.
    pub interrupted: bool,
    /// Peak resident set size, KiB (`ru_maxrss`).
    pub peak_rss_kib: Option<u64>,
    pub wall: Duration,
}

/// Runs `command` with `input` on its stdin, its stderr written to
/// `log_path`, killing its process group after `timeout` or when a stop is
/// requested. Errors only when it cannot be started or watched; every way
/// it can end is a [`ProcessEnding`].
pub fn run_to_end(
    command: Command,
    input: &[u8],
    log_path: &Path,
    timeout: Duration,
) -> anyhow::Result<ProcessEnding> {
    let started = Instant::now();
    let mut child = spawn_logged(command, log_path, true)?;
    let pid = child.id() as libc::pid_t;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let mut stdout = child.stdout.take().expect("stdout is piped");
    // A child that exits before reading its input gives EPIPE: that is an
    // ending to classify, not an error of the parent.
    let _ = stdin.write_all(input);
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
                return Err(e).context("cannot wait for the child process");
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
    let (exit, peak_rss_kib) = reap(pid).context("cannot collect the child's exit status")?;
    let wall = started.elapsed();
    let stdout = reader.join().expect("reader thread does not panic");
    Ok(ProcessEnding {
        stdout,
        exit,
        timed_out,
        interrupted,
        peak_rss_kib,
        wall,
    })
}

/// Sends `signal` to the process group led by `pid`.
pub fn signal_group(pid: libc::pid_t, signal: i32) {
    // SAFETY: plain syscall; ESRCH (group already gone) is fine.
    unsafe {
        libc::killpg(pid, signal);
    }
}

pub fn kill_group(pid: libc::pid_t) {
    signal_group(pid, libc::SIGKILL);
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
