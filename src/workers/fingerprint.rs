//! The fingerprint of the hardware and software a row was measured on: the
//! CPU model and core count, the accelerators llama.cpp sees (name,
//! description, memory), llama.cpp's build and the environment variables
//! that change its speed (but those that only pick devices). Two rows with
//! different fingerprints are not ranked against each other.

use crate::machine::Machine;
use crate::protocol::ProbeReport;

/// The description of a machine and its short id (12 hex digits).
pub fn of(machine: &Machine, probe: &ProbeReport) -> (String, String) {
    let accelerators: Vec<String> = probe
        .accelerators()
        .map(|d| {
            format!(
                "{} {} ({} MiB)",
                d.name,
                d.description,
                d.memory_total_bytes >> 20
            )
        })
        .collect();
    let mut description = format!(
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
    let env: Vec<&str> = machine
        .speed_env
        .iter()
        .map(String::as_str)
        .filter(|e| !crate::machine::selects_devices(e))
        .collect();
    if !env.is_empty() {
        description.push_str(&format!(" | {}", env.join(" ")));
    }
    use sha2::{Digest, Sha256};
    let id = crate::digest::hex(&Sha256::digest(description.as_bytes()))[..12].to_string();
    (id, description)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::DeviceInfo;

    fn gpu(name: &str) -> DeviceInfo {
        DeviceInfo {
            name: name.into(),
            description: "NVIDIA H100 80GB HBM3".into(),
            backend: "CUDA".into(),
            kind: "gpu".into(),
            memory_total_bytes: 80 << 30,
            memory_free_bytes: 79 << 30,
        }
    }

    /// What a process sees: two GPUs, or one (CUDA_VISIBLE_DEVICES).
    fn seeing(devices: Vec<DeviceInfo>) -> ProbeReport {
        ProbeReport {
            llama_cpp_build: "b8000 (abc)".into(),
            system_info: String::new(),
            supports_gpu_offload: true,
            supports_mmap: true,
            backends: vec!["CPU".into(), "CUDA".into()],
            devices,
            cpu_extra_buffer_types: vec![],
            defaults: crate::test_support::defaults(),
        }
    }

    #[test]
    fn a_process_that_sees_every_gpu_is_another_machine_than_a_worker_on_one() {
        let machine = Machine::detect();
        let worker0 = of(&machine, &seeing(vec![gpu("CUDA0")]));
        let worker1 = of(&machine, &seeing(vec![gpu("CUDA0")]));
        let sees_both = of(&machine, &seeing(vec![gpu("CUDA0"), gpu("CUDA1")]));
        // Equal GPUs, one each: the workers are the same machine.
        assert_eq!(worker0, worker1);
        // A run that sees both would split a trial over them: not the same
        // machine, so the finishing run measures on the first worker's GPU
        // (cmd::run::spread) and ranks the workers' rows with its own.
        assert_ne!(worker0.0, sees_both.0);
    }

    #[test]
    fn a_variable_that_changes_speed_is_part_of_the_machine_but_device_picking_is_not() {
        let mut machine = Machine::detect();
        machine.speed_env.clear();
        let plain = of(&machine, &seeing(vec![gpu("CUDA0")]));
        machine.speed_env = vec!["CUDA_VISIBLE_DEVICES=1".into()];
        assert_eq!(of(&machine, &seeing(vec![gpu("CUDA0")])), plain);
        machine.speed_env = vec!["OMP_THREAD_LIMIT=1".into()];
        let limited = of(&machine, &seeing(vec![gpu("CUDA0")]));
        assert_ne!(limited.0, plain.0);
        assert!(limited.1.ends_with("| OMP_THREAD_LIMIT=1"), "{}", limited.1);
    }
}
