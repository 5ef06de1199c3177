//! The fingerprint of the hardware and software a row was measured on: the
//! CPU model and core count, the accelerators llama.cpp sees (name,
//! description, memory) and llama.cpp's build. Two rows with different
//! fingerprints are not ranked against each other.

use crate::machine::Machine;
use crate::protocol::ProbeReport;

/// The description of a machine and its short id (12 hex digits).
pub fn of(machine: &Machine, probe: &ProbeReport) -> (String, String) {
    let accelerators: Vec<String> = probe
        .devices
        .iter()
        .filter(|d| d.kind != "cpu")
        .map(|d| {
            format!(
                "{} {} ({} MiB)",
                d.name,
                d.description,
                d.memory_total_bytes >> 20
            )
        })
        .collect();
    let description = format!(
        "{} ×{} | {} | {}",
        machine.cpu_model,
        machine.logical_cores,
        if accelerators.is_empty() {
            "no accelerator".to_string()
        } else {
            accelerators.join(", ")
        },
        probe.llama_cpp_build.lines().next().unwrap_or_default()
    );
    use sha2::{Digest, Sha256};
    let id = crate::digest::hex(&Sha256::digest(description.as_bytes()))[..12].to_string();
    (id, description)
}
