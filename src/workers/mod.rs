//! Several workers on one sweep folder: the folder is the coordination point.
//! plan.json says what to measure; `claims/` says who measures what
//! ([`claims`]); each worker appends its rows to its own
//! `workers/<name>.csv` and says how far it got in `workers/<name>.json`;
//! every reader merges the rows (`store::read_rows`). Every row names the
//! host, the worker and the machine's fingerprint, so numbers from different
//! hardware are never ranked against each other.

pub mod claims;
pub mod fingerprint;
#[cfg(test)]
mod many_workers;
pub mod slurm;

use serde::{Deserialize, Serialize};
use std::path::Path;

pub use crate::store::writers::{Origin, WORKERS, rows_file, rows_files};

/// A worker's name: the one given, else SLURM's array task, else host and
/// process id. Only letters, digits, `-`, `_` and `.` (it names files).
pub fn worker_name(given: Option<&str>, host: &str) -> String {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let name = match given {
        Some(name) => name.to_string(),
        None => match (env("SLURM_ARRAY_JOB_ID"), env("SLURM_ARRAY_TASK_ID")) {
            (Some(job), Some(task)) => format!("slurm-{job}_{task}"),
            _ => match env("SLURM_JOB_ID") {
                Some(job) => format!("slurm-{job}"),
                None => format!("{host}-{}", std::process::id()),
            },
        },
    };
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `workers/<name>.json`: how far a worker got, for `status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerState {
    pub worker: String,
    pub host: String,
    pub pid: u32,
    pub machine_id: String,
    pub machine: String,
    pub started_at: String,
    pub updated_at: String,
    /// Trials this worker recorded (the live claims say what it measures now).
    pub recorded: usize,
    /// running, finished, stopped, failed
    pub state: String,
}

pub fn write_state(folder: &Path, state: &WorkerState) -> anyhow::Result<()> {
    let path = folder.join(WORKERS).join(format!("{}.json", state.worker));
    crate::store::write_atomically(&path, &serde_json::to_vec_pretty(state)?)
}

/// Every worker's state in a folder, by name.
pub fn read_states(folder: &Path) -> Vec<WorkerState> {
    let mut states: Vec<WorkerState> = crate::store::writers::worker_files(folder, "json")
        .into_iter()
        .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
        .collect();
    states.sort_by(|a, b| a.worker.cmp(&b.worker));
    states
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_file_names() {
        assert_eq!(worker_name(Some("gpu 0/a"), "h"), "gpu_0_a");
        let default = worker_name(None, "node1");
        assert!(
            default.starts_with("node1-") || default.starts_with("slurm-"),
            "{default}"
        );
    }
}
