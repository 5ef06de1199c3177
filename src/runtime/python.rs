//! llama-cpp-python as the app runs it: the app's interpreter runs
//! llama-sweep's driver (`llama_cpp_python.py`, embedded), which loads
//! `Llama(**llm)` with the exported keyword arguments (the JSON export,
//! the same list config.yaml's `llm:` holds) and streams the requests.
//! The interpreter is a child process like a trial: a missing module, a
//! crash or a hang is a one-line [`RuntimeError`] with its log kept.

use super::{Runtime, RuntimeError, RuntimeInfo, RuntimeKind, Session, SessionJob};
use crate::runner::process::{self, ProcessEnding};
use serde::Deserialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The driver the interpreter runs (`python -c DRIVER`).
pub const DRIVER: &str = include_str!("llama_cpp_python.py");
const PROBE_TIMEOUT: Duration = Duration::from_secs(120);

pub struct PythonRuntime {
    python: PathBuf,
}

impl PythonRuntime {
    pub fn new(python: &Path) -> PythonRuntime {
        PythonRuntime {
            python: python.to_path_buf(),
        }
    }

    /// Runs the driver with `job`, returning its reply.
    fn run(
        &self,
        job: serde_json::Value,
        log: &Path,
        timeout: Duration,
    ) -> Result<Reply, RuntimeError> {
        let mut command = Command::new(&self.python);
        command.arg("-c").arg(DRIVER);
        let input = job.to_string() + "\n";
        let ended = process::run_to_end(command, input.as_bytes(), log, timeout).map_err(|e| {
            RuntimeError::new(
                format!(
                    "cannot run {}: {}",
                    self.python.display(),
                    crate::runner::outcome::first_line(Some(&format!("{e:#}")))
                ),
                None,
            )
        })?;
        reply_of(&ended, &self.python, log, timeout)
    }
}

impl PythonRuntime {
    /// Loads `job.llm` in the interpreter's llama-cpp-python and times its
    /// requests (verify's sessions and the sweep's trials through it,
    /// `measure::python_trial`); the interpreter's log goes to `log`.
    pub fn timed_session(
        &self,
        job: &DriverJob,
        log: &Path,
        timeout: Duration,
    ) -> Result<Timed, RuntimeError> {
        let request = json!({
            "mode": "session",
            "llm": job.llm,
            "prompts": job.prompts,
            "warmup": job.warmup,
            "max_tokens": job.max_tokens,
            "temperature": job.temperature,
            "seed": job.seed,
        });
        match self.run(request, log, timeout)? {
            Reply::Session(timed) => Ok(timed),
            other => Err(unexpected(&other, log)),
        }
    }
}

/// What the driver answers.
#[derive(Debug, Deserialize)]
#[serde(tag = "reply", rename_all = "lowercase")]
enum Reply {
    Probe {
        version: String,
        llama_cpp: String,
        system_info: String,
        supports_gpu_offload: bool,
    },
    Session(Timed),
    Failed {
        reason: String,
    },
}

/// One `Llama()` session as the driver timed it: the load, and each
/// measured request (the warm-up ones left out).
#[derive(Debug, Clone, Deserialize)]
pub struct Timed {
    pub load_ms: f64,
    pub n_threads: i32,
    pub cpus_allowed: u32,
    pub requests: Vec<TimedRequest>,
}

/// One measured request, as the driver timed it: on the app's clock (sent,
/// first token, last token, the gaps between tokens) and by llama.cpp's
/// own perf counters (the prompt's and the tokens' evaluation).
#[derive(Debug, Clone, Deserialize)]
pub struct TimedRequest {
    pub sent_to_first_ms: f64,
    pub first_to_last_ms: f64,
    #[serde(default)]
    pub gaps_ms: Vec<f64>,
    pub generated: u32,
    pub eval_ms: f64,
    pub n_eval: u32,
    #[serde(default)]
    pub prompt_eval_ms: f64,
    #[serde(default)]
    pub n_prompt_eval: u32,
}

impl TimedRequest {
    /// Its timing, as `crate::request` defines the request's figures.
    pub fn timing(&self) -> crate::request::RequestTiming {
        crate::request::RequestTiming {
            ttft_ms: self.sent_to_first_ms,
            last_token_ms: self.sent_to_first_ms + self.first_to_last_ms,
            tokens: self.generated,
        }
    }

    /// Generation t/s by llama.cpp's counters (llama-bench's tg).
    pub fn counted_gen_tps(&self) -> Option<f64> {
        (self.n_eval > 0 && self.eval_ms > 0.0)
            .then(|| f64::from(self.n_eval) / self.eval_ms * 1000.0)
    }

    /// Prompt t/s by llama.cpp's counters (llama-bench's pp).
    pub fn counted_prompt_tps(&self) -> Option<f64> {
        (self.n_prompt_eval > 0 && self.prompt_eval_ms > 0.0)
            .then(|| f64::from(self.n_prompt_eval) / self.prompt_eval_ms * 1000.0)
    }
}

/// What one session asks the driver: `Llama(**llm)`, then one streamed
/// completion per prompt (token ids), the first `warmup` not measured.
pub struct DriverJob<'a> {
    pub llm: serde_json::Value,
    pub prompts: &'a [Vec<i32>],
    pub warmup: usize,
    pub max_tokens: u32,
    pub temperature: f64,
    pub seed: u64,
}

fn reply_of(
    ended: &ProcessEnding,
    python: &Path,
    log: &Path,
    timeout: Duration,
) -> Result<Reply, RuntimeError> {
    let who = python.display();
    if ended.timed_out {
        return Err(RuntimeError::new(
            format!(
                "{who} did not finish within {} s (killed)",
                timeout.as_secs()
            ),
            Some(log),
        ));
    }
    if ended.interrupted {
        return Err(RuntimeError::new("interrupted", Some(log)));
    }
    let text = String::from_utf8_lossy(&ended.stdout);
    let last = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("{\"reply\""));
    match last.map(serde_json::from_str::<Reply>) {
        Some(Ok(Reply::Failed { reason })) => Err(RuntimeError::new(reason, Some(log))),
        Some(Ok(reply)) => Ok(reply),
        Some(Err(e)) => Err(RuntimeError::new(
            format!("{who} answered something llama-sweep cannot read ({e})"),
            Some(log),
        )),
        None => {
            let tail = super::log_tail(log, 3);
            Err(RuntimeError::new(
                format!(
                    "{who} ended ({}) without an answer{}",
                    ended.exit,
                    if tail.is_empty() {
                        String::new()
                    } else {
                        format!(": {tail}")
                    }
                ),
                Some(log),
            ))
        }
    }
}

impl Runtime for PythonRuntime {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Python
    }

    fn program(&self) -> String {
        self.python.display().to_string()
    }

    fn probe(&self, log: &Path) -> Result<RuntimeInfo, RuntimeError> {
        match self.run(json!({"mode": "probe"}), log, PROBE_TIMEOUT)? {
            Reply::Probe {
                version,
                llama_cpp,
                system_info,
                supports_gpu_offload,
            } => Ok(RuntimeInfo {
                kind: RuntimeKind::Python,
                program: self.program(),
                version: format!("llama-cpp-python {version}"),
                llama_cpp: format!(
                    "{} (llama-cpp-python {version}'s own)",
                    if llama_cpp.is_empty() {
                        "unknown"
                    } else {
                        &llama_cpp
                    }
                ),
                backends: backends_of(&system_info),
                supports_gpu_offload,
                devices: Vec::new(),
                system_info,
            }),
            other => Err(unexpected(&other, log)),
        }
    }

    fn session(&self, job: &SessionJob, log: &Path) -> Result<Session, RuntimeError> {
        let timed = self.timed_session(
            &DriverJob {
                llm: crate::export::json::object(job.row),
                prompts: &job.prompts,
                warmup: job.warmup,
                max_tokens: job.max_tokens,
                temperature: job.temperature,
                seed: job.seed,
            },
            log,
            job.timeout,
        )?;
        let requests = &timed.requests;
        let offloaded =
            crate::llama_log::offloaded_layers(&std::fs::read_to_string(log).unwrap_or_default());
        Ok(Session {
            ttft_ms: requests.iter().map(|r| r.sent_to_first_ms).collect(),
            gen_tps: requests.iter().filter_map(|r| r.timing().tps()).collect(),
            runtime_gen_tps: requests
                .iter()
                .filter_map(TimedRequest::counted_gen_tps)
                .collect(),
            generated: requests.iter().map(|r| r.generated).collect(),
            layers_offloaded: Some(offloaded.map_or(0, |(n, _)| n)),
            layers_total: offloaded.map(|(_, total)| total),
            n_threads: Some(timed.n_threads),
            cpus_allowed: Some(timed.cpus_allowed),
            load_ms: Some(timed.load_ms),
        })
    }
}

fn unexpected(reply: &Reply, log: &Path) -> RuntimeError {
    RuntimeError::new(
        format!("the driver gave an unexpected answer: {reply:?}"),
        Some(log),
    )
}

/// The backends llama.cpp's system info names besides the CPU
/// (`CPU : SSE3 = 1 | ... | CUDA : ARCHS = 890 | ...`).
pub fn backends_of(system_info: &str) -> Vec<String> {
    let mut backends: Vec<String> = system_info
        .split('|')
        .filter_map(|part| {
            part.split_once(" : ")
                .map(|(name, _)| name.trim().to_string())
        })
        .filter(|name| !name.is_empty() && name != "CPU" && !name.contains(' '))
        .collect();
    backends.dedup();
    backends
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_come_from_the_system_info() {
        let cpu = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | OPENMP = 1 | REPACK = 1 | ";
        assert!(backends_of(cpu).is_empty());
        let cuda = "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | PEER_MAX_BATCH_SIZE = 128 | CPU : SSE3 = 1 | AVX = 1 | ";
        assert_eq!(backends_of(cuda), ["CUDA"]);
    }

    #[test]
    fn an_interpreter_without_llama_cpp_is_a_one_line_error_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("python.log");
        // A real interpreter without site-packages, so without llama_cpp
        // wherever it is installed.
        let wrapper = dir.path().join("python");
        std::fs::write(&wrapper, "#!/bin/sh\nexec python3 -I -S \"$@\"\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = PythonRuntime::new(&wrapper).probe(&log).unwrap_err();
        assert!(err.reason.contains("cannot import llama_cpp"), "{err}");
        assert_eq!(err.log.as_deref(), Some(log.as_path()));
    }

    #[test]
    fn a_missing_interpreter_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let python = PythonRuntime::new(Path::new("/nonexistent/venv/bin/python"));
        let err = python.probe(&dir.path().join("p.log")).unwrap_err();
        assert!(err.reason.contains("/nonexistent/venv/bin/python"), "{err}");
    }
}
