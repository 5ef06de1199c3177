//! llama-server as the app runs it: the binary the user names, started with
//! the exported arguments (the server-args export, the same list) on a free
//! loopback port, waited for on `/health`, sent the requests on
//! `/completion` as streaming clients, and stopped. Its version and devices
//! come from `--version` and `--list-devices`. A server that will not start,
//! exits, never becomes healthy or stops answering is a one-line
//! [`RuntimeError`] with its log kept; the process group is killed on every
//! way out.

use super::{Runtime, RuntimeError, RuntimeInfo, RuntimeKind, Session, SessionJob, clients, http};
use crate::export::llama_args::llama_args;
use crate::runner::process;
use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const PROBE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one answer may pause before the server counts as hung.
const STALL: Duration = Duration::from_secs(60);

pub struct ServerRuntime {
    binary: PathBuf,
}

impl ServerRuntime {
    pub fn new(binary: &Path) -> ServerRuntime {
        ServerRuntime {
            binary: binary.to_path_buf(),
        }
    }

    /// Runs the binary with `args` to its end; its stdout and stderr.
    fn output_of(&self, args: &[&str], log: &Path) -> Result<String, RuntimeError> {
        let mut command = Command::new(&self.binary);
        command.args(args);
        let ended = process::run_to_end(command, b"", log, PROBE_TIMEOUT).map_err(|e| {
            RuntimeError::new(
                format!("cannot run {}: {}", self.binary.display(), e.root_cause()),
                None,
            )
        })?;
        if ended.timed_out {
            return Err(RuntimeError::new(
                format!(
                    "{} {} did not end within {} s: is it a llama-server?",
                    self.binary.display(),
                    args.join(" "),
                    PROBE_TIMEOUT.as_secs()
                ),
                Some(log),
            ));
        }
        Ok(String::from_utf8_lossy(&ended.stdout).into_owned()
            + &std::fs::read_to_string(log).unwrap_or_default())
    }

    fn measure(
        &self,
        server: &mut Started,
        job: &SessionJob,
        log: &Path,
    ) -> Result<Session, RuntimeError> {
        server.wait_until_ready(job.timeout, log)?;
        let cpus_allowed = super::cpus_allowed(server.child.id());
        let mut session = Session {
            load_ms: Some(server.started.elapsed().as_secs_f64() * 1000.0),
            cpus_allowed,
            ..Session::default()
        };
        // Rounds of `concurrent` requests sent at once, each by its own
        // client, as the app's users send them.
        let n = job.concurrent.max(1);
        for (k, prompts) in job.prompts.chunks(n).enumerate() {
            if crate::interrupt::requested() {
                return Err(RuntimeError::new("interrupted", Some(log)));
            }
            let answers = server.round(job, prompts, job.seed + (k * n) as u64, log)?;
            if k * n < job.warmup {
                continue;
            }
            for answer in answers {
                session.ttft_ms.push(answer.ttft_ms);
                if let Some(tps) = answer.gen_tps() {
                    session.gen_tps.push(tps);
                }
                session
                    .runtime_gen_tps
                    .extend(answer.server.predicted_per_second);
                session.generated.push(answer.tokens());
            }
        }
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let offloaded = crate::llama_log::offloaded_layers(&text);
        session.layers_offloaded = Some(offloaded.map_or(0, |(n, _)| n));
        session.layers_total = offloaded.map(|(_, total)| total);
        session.n_threads = crate::llama_log::threads_in_log(&text);
        Ok(session)
    }
}

impl ServerRuntime {
    /// The flags the binary's `--help` lists.
    pub fn accepted_flags(&self, log: &Path) -> Result<HashSet<String>, RuntimeError> {
        Ok(flags_in_help(&self.output_of(&["--help"], log)?))
    }
}

/// The flags a llama.cpp tool's `--help` lists: each option line starts
/// with its spellings, `-c,    --ctx-size N`, before the columns of its
/// explanation. A flag llama.cpp lists only to say it was removed (`--draft-max
/// N   the argument has been removed. use --spec-draft-n-max ...`), which
/// the tool refuses, is not one.
fn flags_in_help(help: &str) -> HashSet<String> {
    help.lines()
        .map(str::trim_start)
        .filter(|line| line.starts_with('-') && !line.contains("has been removed"))
        .flat_map(|line| {
            // Spellings are aligned after their commas (`-lm,   --load-mode`):
            // the explanation starts at the first wide gap after the last.
            let joined = line
                .split(',')
                .map(str::trim_start)
                .collect::<Vec<_>>()
                .join(",");
            let spellings = joined.split("  ").next().unwrap_or("").to_string();
            spellings
                .split(',')
                .filter_map(|s| s.split_whitespace().next())
                .filter(|flag| {
                    let name = flag.strip_prefix("--").or_else(|| flag.strip_prefix('-'));
                    name.is_some_and(|n| n.starts_with(|c: char| c.is_ascii_alphanumeric()))
                })
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

impl Runtime for ServerRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Server
    }

    fn program(&self) -> String {
        self.binary.display().to_string()
    }

    fn probe(&self, log: &Path) -> Result<RuntimeInfo, RuntimeError> {
        let text = self.output_of(&["--version"], log)?;
        let Some(version) = version_line(&text) else {
            let said = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("nothing");
            return Err(RuntimeError::new(
                format!(
                    "{} is not a llama-server: `--version` printed {:?}, not llama.cpp's \"version: N (commit)\"",
                    self.binary.display(),
                    said.chars().take(120).collect::<String>()
                ),
                Some(log),
            ));
        };
        let devices_log = log.with_extension("devices.log");
        let devices = devices_of(&self.output_of(&["--list-devices"], &devices_log)?);
        let mut backends: Vec<String> = devices.iter().map(|d| backend_of_device(d)).collect();
        backends.dedup();
        Ok(RuntimeInfo {
            kind: RuntimeKind::Server,
            program: self.program(),
            version: format!("llama-server {version}"),
            llama_cpp: version,
            backends,
            supports_gpu_offload: !devices.is_empty(),
            devices,
            system_info: String::new(),
        })
    }

    fn session(&self, job: &SessionJob, log: &Path) -> Result<Session, RuntimeError> {
        let args = llama_args(job.row)
            .into_iter()
            .flat_map(|arg| std::iter::once(arg.flag.to_string()).chain(arg.value));
        let mut server = Started::start(&self.binary, args, log)?;
        let measured = self.measure(&mut server, job, log);
        server.stop();
        measured
    }
}

/// A running server on a loopback port, its output in its log; killed
/// with its process group when dropped (and by the kernel when the process
/// that started it dies).
pub(crate) struct Started {
    child: Child,
    pub(crate) port: u16,
    pub(crate) started: Instant,
}

impl Started {
    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Starts `binary` with `args` and a free loopback port.
    pub(crate) fn start(
        binary: &Path,
        args: impl IntoIterator<Item = String>,
        log: &Path,
    ) -> Result<Started, RuntimeError> {
        let port = free_port()
            .map_err(|e| RuntimeError::new(format!("no free loopback port: {e}"), None))?;
        let mut command = Command::new(binary);
        command.args(args);
        command.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
        let child = process::spawn_logged(command, log, false).map_err(|e| {
            RuntimeError::new(
                format!("cannot start {}: {}", binary.display(), e.root_cause()),
                Some(log),
            )
        })?;
        Ok(Started {
            child,
            port,
            started: Instant::now(),
        })
    }

    /// The exit status, once it has exited.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// Waits for `/health` to answer 200; fails when the server exits or
    /// `timeout` passes first.
    pub(crate) fn wait_until_ready(
        &mut self,
        timeout: Duration,
        log: &Path,
    ) -> Result<(), RuntimeError> {
        let deadline = self.started + timeout;
        loop {
            if let Some(status) = self.exited() {
                return Err(RuntimeError::new(
                    format!(
                        "llama-server exited ({status}) before it was ready: {}",
                        super::log_tail(log, 3)
                    ),
                    Some(log),
                ));
            }
            if crate::interrupt::requested() {
                return Err(RuntimeError::new("interrupted", Some(log)));
            }
            if Instant::now() >= deadline {
                return Err(RuntimeError::new(
                    format!(
                        "llama-server did not become ready on port {} within {} s (no 200 from /health)",
                        self.port,
                        timeout.as_secs()
                    ),
                    Some(log),
                ));
            }
            if let Ok(r) = http::get(self.port, "/health", Duration::from_secs(2)) {
                // Another process may have taken the port between its
                // choice and this server's bind (another worker's server):
                // only this server's answer counts.
                if r.status == 200 && listens_on(self.child.id(), self.port) != Some(false) {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Requests sent at once, one client each, streamed: llama-server's
    /// native `/completion` with the prompts as token ids, no prompt cache,
    /// end of text ignored.
    fn round(
        &mut self,
        job: &SessionJob,
        prompts: &[Vec<i32>],
        seed: u64,
        log: &Path,
    ) -> Result<Vec<clients::Reply>, RuntimeError> {
        let requests: Vec<clients::Request> = prompts
            .iter()
            .enumerate()
            .map(|(j, prompt)| clients::Request {
                prompt: prompt.clone(),
                max_tokens: job.max_tokens,
                temperature: job.temperature,
                seed: seed + j as u64,
                cache_prompt: false,
            })
            .collect();
        let limits = clients::Limits {
            timeout: job.timeout,
            stall: STALL,
        };
        clients::round(self.port, &requests, limits)
            .map(|round| round.replies)
            .map_err(|why| {
                let exited = self
                    .exited()
                    .map(|s| format!(" (it exited: {s})"))
                    .unwrap_or_default();
                RuntimeError::new(format!("{why}{exited}"), Some(log))
            })
    }

    /// SIGTERM, a few seconds to end, then SIGKILL to the whole group.
    pub(crate) fn stop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        process::signal_group(pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        process::kill_group(pid);
        let _ = self.child.wait();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// Whether process `pid` holds the socket listening on loopback `port`
/// (from /proc/net/tcp and its open files); `None` where /proc cannot
/// tell.
fn listens_on(pid: u32, port: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let inodes = listening_inodes(&table, port);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    let held = fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok());
    let held: Vec<String> = held.map(|l| l.to_string_lossy().into_owned()).collect();
    Some(
        inodes
            .iter()
            .any(|inode| held.iter().any(|l| *l == format!("socket:[{inode}]"))),
    )
}

/// The inodes of the sockets /proc/net/tcp's `table` lists as listening
/// (state 0A) on `port`.
fn listening_inodes(table: &str, port: u16) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *f.get(3)? == "0A").then(|| f.get(9).map(|i| i.to_string()))?
        })
        .collect()
}

/// llama.cpp's `version: 6500 (abc1234)`, without its label.
fn version_line(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("version: "))
        .map(|v| v.trim().to_string())
}

/// The devices `--list-devices` names (`  CUDA0: NVIDIA ... (24000 MiB, ...)`).
fn devices_of(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| !l.starts_with("Available devices:"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "(none)" && l.contains(':'))
        .map(str::to_string)
        .collect()
}

/// `CUDA0: NVIDIA ...` → `CUDA`.
fn backend_of_device(device: &str) -> String {
    device
        .split(':')
        .next()
        .unwrap_or("")
        .trim_end_matches(|c: char| c.is_ascii_digit())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 36, item 9: between the choice of a free port and the server's
    /// bind, another process (another worker's server) can take it; its
    /// healthy answer is not this server's.
    #[test]
    fn a_healthy_answer_from_another_process_on_the_port_is_not_ready() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                let mut request = [0u8; 1024];
                let _ = std::io::Read::read(&mut conn, &mut request);
                let _ = std::io::Write::write_all(
                    &mut conn,
                    b"HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}",
                );
            }
        });
        // "The server": a process that never listens.
        let mut started = Started {
            child: Command::new("sleep").arg("30").spawn().unwrap(),
            port,
            started: Instant::now(),
        };
        let dir = tempfile::tempdir().unwrap();
        let err = started
            .wait_until_ready(Duration::from_millis(1500), &dir.path().join("log"))
            .unwrap_err();
        assert!(err.reason.contains("did not become ready"), "{err}");
        assert_eq!(listens_on(started.pid(), port), Some(false));
        assert_eq!(listens_on(std::process::id(), port), Some(true));
        started.stop();
    }

    /// Issue 36, item 1: a configuration that serves n users is verified
    /// with n concurrent clients, as it was measured.
    #[test]
    fn a_round_sends_its_requests_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        {
            let (open, most) = (open.clone(), most.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    let Ok(mut conn) = conn else { break };
                    let (open, most) = (open.clone(), most.clone());
                    std::thread::spawn(move || {
                        let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        let mut request = [0u8; 8192];
                        let _ = std::io::Read::read(&mut conn, &mut request);
                        std::thread::sleep(Duration::from_millis(300));
                        let answer = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n\
                                      data: {\"content\":\"a\",\"stop\":false}\n\n\
                                      data: {\"content\":\"b\",\"stop\":false}\n\n\
                                      data: {\"content\":\"\",\"stop\":true}\n\n";
                        let _ = std::io::Write::write_all(&mut conn, answer.as_bytes());
                        open.fetch_sub(1, Ordering::SeqCst);
                    });
                }
            });
        }
        let mut started = Started {
            child: Command::new("sleep").arg("30").spawn().unwrap(),
            port,
            started: Instant::now(),
        };
        let mut row = crate::test_support::row("t", &crate::runner::mock::measured(100.0, 400.0));
        row.params
            .set(crate::knobs::N_PARALLEL, crate::knobs::Value::Int(4));
        let prompts = vec![vec![1, 2, 3]; 4];
        let job = SessionJob {
            row: &row,
            prompts: prompts.clone(),
            warmup: 0,
            concurrent: 4,
            max_tokens: 2,
            temperature: 0.0,
            seed: 1,
            timeout: Duration::from_secs(10),
        };
        let dir = tempfile::tempdir().unwrap();
        let replies = started
            .round(&job, &prompts, 1, &dir.path().join("log"))
            .unwrap();
        assert_eq!(replies.len(), 4);
        assert_eq!(most.load(Ordering::SeqCst), 4, "four clients at once");
        started.stop();
    }

    #[test]
    fn listening_sockets_are_read_from_proc_net_tcp() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0\n\
   1: 0100007F:1F90 0100007F:A0B2 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0\n";
        assert_eq!(listening_inodes(table, 8080), ["4242"]);
        assert!(listening_inodes(table, 8081).is_empty());
    }

    #[test]
    fn version_and_devices_are_read_as_llama_cpp_prints_them() {
        let text = "version: 6500 (abc1234)\nbuilt with cc for x86_64-linux-gnu\n";
        assert_eq!(version_line(text).as_deref(), Some("6500 (abc1234)"));
        assert_eq!(version_line("usage: foo"), None);
        assert!(devices_of("Available devices:\n  (none)\n").is_empty());
        let gpus = "load_backend: loaded CUDA backend\nAvailable devices:\n  CUDA0: NVIDIA GeForce RTX 4090 (24080 MiB, 23500 MiB free)\n";
        let devices = devices_of(gpus);
        assert_eq!(
            devices,
            ["CUDA0: NVIDIA GeForce RTX 4090 (24080 MiB, 23500 MiB free)"]
        );
        assert_eq!(backend_of_device(&devices[0]), "CUDA");
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        let path = dir.join("fake-server");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn the_flags_of_a_help_text_are_read() {
        let help = "----- common params -----\n\n\
                    -h,    --help, --usage                  print usage and exit\n\
                    -c,    --ctx-size N                     size of the prompt context (default: 4096)\n\
                    -fa,   --flash-attn [on|off|auto]       set Flash Attention use\n\
                    --spec-draft-n-max N                    number of tokens to draft (default: 3)\n\
                                                            (env: LLAMA_ARG_SPEC_DRAFT_N_MAX)\n\
                    --draft, --draft-n, --draft-max N       the argument has been removed. use --spec-draft-n-max or\n\
                                                            --spec-ngram-mod-n-max\n";
        let flags = flags_in_help(help);
        for flag in [
            "-h",
            "--help",
            "--usage",
            "-c",
            "--ctx-size",
            "-fa",
            "--flash-attn",
            "--spec-draft-n-max",
        ] {
            assert!(flags.contains(flag), "{flag}: {flags:?}");
        }
        assert!(
            !flags.contains("N") && !flags.contains("-----"),
            "{flags:?}"
        );
        assert!(!flags.contains("--draft-max"), "removed: {flags:?}");
    }

    #[test]
    fn a_binary_that_is_not_a_llama_server_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let fake = script(dir.path(), "echo 'Python 3.11.7'");
        let err = ServerRuntime::new(&fake)
            .probe(&dir.path().join("probe.log"))
            .unwrap_err();
        assert!(err.reason.contains("is not a llama-server"), "{err}");
        assert!(err.reason.contains("Python 3.11.7"), "{err}");
    }
}
