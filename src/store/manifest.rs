//! manifest.json: the provenance of a sweep's numbers — machine, llama.cpp
//! build and devices, tool version, the sweep file's hash — so a row can
//! always be traced to what produced it.

use crate::machine::Machine;
use crate::objective::Objective;
use crate::protocol::ProbeReport;
use crate::protocol::Workload;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub tool: ToolInfo,
    pub sweep: SweepInfo,
    pub machine: Machine,
    pub llama_cpp: ProbeReport,
    pub started_at: String,
    pub updated_at: String,
    pub trials_planned: usize,
    pub trials_recorded: usize,
    /// Host memory read bandwidth measured at the start of the run: with a
    /// variant's bytes per token, the ceiling of generation speed.
    #[serde(default)]
    pub memory_bandwidth: Option<crate::bandwidth::Bandwidth>,
    /// What the backend self-test found, and what it forced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_check: Option<crate::selftest::BackendCheck>,
    /// What llama.cpp's `--fit` chose, or why it is not measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<crate::fit::FitSummary>,
    /// The recommendation verified in the app's runtimes (`verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_verification: Option<AppVerification>,
}

/// What the manifest keeps of a verification in the app's runtimes (the
/// whole record is verify.json): when, which runtimes, and the account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppVerification {
    pub verified_at: String,
    /// Each runtime in one line: version, llama.cpp, what it can offload.
    pub runtimes: Vec<String>,
    /// The results, causes and failures, as the terminal showed them.
    pub lines: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
    /// Cargo features compiled in (GPU backends).
    pub features: Vec<String>,
    pub command_line: Vec<String>,
}

impl ToolInfo {
    pub fn current() -> ToolInfo {
        let features = [
            ("cuda", cfg!(feature = "cuda")),
            ("vulkan", cfg!(feature = "vulkan")),
            ("metal", cfg!(feature = "metal")),
            ("dynamic-backends", cfg!(feature = "dynamic-backends")),
        ];
        ToolInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            features: features
                .iter()
                .filter(|f| f.1)
                .map(|f| f.0.to_string())
                .collect(),
            command_line: std::env::args().collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepInfo {
    pub name: String,
    /// The sweep.toml it ran from (a copy is kept beside the manifest).
    pub file: String,
    pub sha256: String,
    pub strategy: String,
    pub objective: Objective,
    /// The workload every row was measured with.
    #[serde(default)]
    pub workload: Option<Workload>,
    /// `[export] temperature`, for config.yaml.
    pub temperature: f64,
}

/// Writes the manifest through a temporary file and a rename.
pub fn write(path: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(manifest)?;
    super::write_atomically(path, json.as_bytes())
}

pub fn read(path: &Path) -> anyhow::Result<Manifest> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a llama-sweep manifest", path.display()))
}
