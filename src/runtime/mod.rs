//! The runtimes a configuration runs in. llama-sweep measures llama.cpp as it
//! links it (its own `trial` child, [`sweep_child`]); the user's app runs
//! another llama.cpp: llama-cpp-python imported by the app's interpreter
//! ([`python`]) or a llama-server binary ([`server`]). Each is a
//! [`Runtime`]: it says what it is ([`RuntimeInfo`]: version, the llama.cpp
//! it carries, its backends, whether it can offload) and runs a
//! [`SessionJob`] (load one configuration exactly as exported, send the
//! app's request shape, streaming) as a child process with its log kept,
//! returning a [`Session`] or a one-line reason. `verify` drives them;
//! `doctor` probes them. [`clients`] are the app's streaming clients of a
//! llama-server, shared by [`server`] and the sweep's trials through one
//! (`measure::server_trial`, `[sweep] runtime = "server"`), which echoes
//! the server's log into the trial's as it is written ([`log_echo`]).

pub mod clients;
pub mod http;
pub mod log_echo;
pub mod prompts;
pub mod python;
pub mod server;
pub mod sweep_child;

pub use crate::config::AppRuntimes;
/// Defined with the protocol, which names the runtime of a trial.
pub use crate::protocol::RuntimeKind;
use crate::store::row::TrialRow;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The runtimes `apps` names, llama-cpp-python first.
pub fn named(apps: &AppRuntimes) -> Vec<Box<dyn Runtime>> {
    let mut all: Vec<Box<dyn Runtime>> = Vec::new();
    if let Some(python) = &apps.python {
        all.push(Box::new(python::PythonRuntime::new(python)));
    }
    if let Some(server) = &apps.server {
        all.push(Box::new(server::ServerRuntime::new(server)));
    }
    all
}

/// What a runtime is and can do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuntimeInfo {
    pub kind: RuntimeKind,
    /// The interpreter or binary, as named.
    pub program: String,
    /// Its own version, e.g. `llama-cpp-python 0.3.36` or llama-server's
    /// `version: 6500 (abc1234)`.
    pub version: String,
    /// The llama.cpp it carries, as it reports it.
    pub llama_cpp: String,
    /// Its compiled-in ggml backends besides the CPU, e.g. `CUDA`.
    pub backends: Vec<String>,
    /// Whether it can put layers on a GPU at all.
    pub supports_gpu_offload: bool,
    /// The GPU devices it sees, as it lists them.
    pub devices: Vec<String>,
    /// llama.cpp's system info line (CPU features, backends), when given.
    #[serde(default)]
    pub system_info: String,
}

impl RuntimeInfo {
    /// `llama-cpp-python 0.3.36 (llama.cpp 0.0.1-b6500; CPU only)`.
    pub fn describe(&self) -> String {
        let offload = if self.supports_gpu_offload {
            match self.devices.len() {
                0 => format!("GPU offload: {}", self.backends.join(", ")),
                n => format!("{n} GPU(s): {}", self.devices.join("; ")),
            }
        } else {
            "CPU only: cannot offload".into()
        };
        let llama_cpp = self.llama_cpp.trim_start_matches("llama.cpp ");
        format!("{} (llama.cpp {llama_cpp}; {offload})", self.version)
    }
}

/// One configuration to load and the requests to send it: the same job in
/// every runtime of a round.
pub struct SessionJob<'a> {
    /// The trial, as stored: each runtime takes its exported form.
    pub row: &'a TrialRow,
    /// Prompt token ids, one per request: `warmup` first, then
    /// `concurrent` per repetition, each unique so that no prompt cache
    /// flatters a runtime.
    pub prompts: Vec<Vec<i32>>,
    pub warmup: usize,
    /// Requests sent at once, as the configuration's users (its
    /// n_parallel): a round of them is one repetition.
    pub concurrent: usize,
    /// Tokens each request generates (end of text suppressed).
    pub max_tokens: u32,
    /// The app's sampling temperature (config.yaml's).
    pub temperature: f64,
    pub seed: u64,
    /// The whole session, load included, must end within this.
    pub timeout: Duration,
}

impl SessionJob<'_> {
    /// The measured requests' prompts.
    pub fn measured_prompts(&self) -> &[Vec<i32>] {
        &self.prompts[self.warmup.min(self.prompts.len())..]
    }

    /// The measured repetitions: rounds of `concurrent` requests.
    pub fn repetitions(&self) -> usize {
        self.measured_prompts().len() / self.concurrent.max(1)
    }
}

/// What one session measured: one value per measured request, and what the
/// runtime did with the configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// From sending the request to the first generated token, ms.
    pub ttft_ms: Vec<f64>,
    /// Generation t/s on the client's clock: tokens after the first over
    /// the time from the first token to the last.
    pub gen_tps: Vec<f64>,
    /// Generation t/s by the runtime's own counters (llama.cpp's perf
    /// counters, llama-server's `timings`); for llama-sweep, its
    /// llama-bench-style tg figure.
    #[serde(default)]
    pub runtime_gen_tps: Vec<f64>,
    /// Tokens each request generated.
    #[serde(default)]
    pub generated: Vec<u32>,
    /// Layers the runtime's llama.cpp offloaded (from its log), of the total.
    pub layers_offloaded: Option<u32>,
    pub layers_total: Option<u32>,
    /// The threads the runtime's llama.cpp ran with.
    pub n_threads: Option<i32>,
    /// The CPUs the runtime's process was allowed to run on.
    pub cpus_allowed: Option<u32>,
    /// Loading the model and creating the context, ms.
    pub load_ms: Option<f64>,
}

/// A runtime's failure: one line, and the log that has the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeError {
    pub reason: String,
    pub log: Option<PathBuf>,
}

impl RuntimeError {
    pub fn new(reason: impl Into<String>, log: Option<&Path>) -> RuntimeError {
        RuntimeError {
            reason: reason.into(),
            log: log.map(Path::to_path_buf),
        }
    }
}

impl std::fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.log {
            Some(log) => write!(f, "{} (log: {})", self.reason, log.display()),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for RuntimeError {}

/// A place a configuration runs.
pub trait Runtime {
    fn kind(&self) -> RuntimeKind;

    /// The interpreter or binary, as named.
    fn program(&self) -> String;

    /// What it is and can do; its log goes to `log`.
    fn probe(&self, log: &Path) -> Result<RuntimeInfo, RuntimeError>;

    /// Loads `job`'s configuration and runs its requests; the runtime's log
    /// goes to `log`.
    fn session(&self, job: &SessionJob, log: &Path) -> Result<Session, RuntimeError>;
}

/// The CPUs process `pid` may run on (its `Cpus_allowed_list`).
pub fn cpus_allowed(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let list = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    count_cpu_list(list.trim())
}

/// How many CPUs a list such as `0-3,8,10-11` names.
pub fn count_cpu_list(list: &str) -> Option<u32> {
    let mut n = 0;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => b.trim().parse::<u32>().ok()? - a.trim().parse::<u32>().ok()? + 1,
            None => {
                part.trim().parse::<u32>().ok()?;
                1
            }
        };
    }
    Some(n)
}

/// The last `n` non-empty lines of a log, joined with " | ", for a
/// one-line error.
pub fn log_tail(log: &Path, n: usize) -> String {
    let text = crate::runner::outcome::log_end(log);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list("x"), None);
        assert!(cpus_allowed(std::process::id()).unwrap() >= 1);
    }
}
