//! What this build of llama.cpp is and can do: version, compiled backends,
//! devices with their memory, CPU features, and the default value of every
//! knob of the parameter table.

use super::{apply, llama};
use crate::protocol::{DeviceInfo, ProbeReport};

pub fn probe() -> ProbeReport {
    // SAFETY: plain getters of static data.
    let (version, system_info) = unsafe {
        (
            llama::c_string(llama_cpp_sys_2::llama_version()),
            llama::c_string(llama_cpp_sys_2::llama_print_system_info()),
        )
    };
    let backends = (0..unsafe { llama_cpp_sys_2::ggml_backend_reg_count() })
        .map(|i| unsafe {
            llama::c_string(llama_cpp_sys_2::ggml_backend_reg_name(
                llama_cpp_sys_2::ggml_backend_reg_get(i),
            ))
        })
        .collect();
    ProbeReport {
        llama_cpp_build: format!(
            "llama.cpp {version} (vendored by llama-cpp-sys-2 {})",
            env!("LLAMA_CPP_SYS_VERSION")
        ),
        system_info,
        supports_gpu_offload: llama::supports_gpu_offload(),
        supports_mmap: llama::supports_mmap(),
        backends,
        devices: devices(),
        cpu_extra_buffer_types: llama::cpu_extra_buffer_types(),
        defaults: apply::defaults(),
    }
}

/// Every device llama.cpp offers, with its memory now.
pub fn devices() -> Vec<DeviceInfo> {
    llama::devices()
        .into_iter()
        .map(|d| DeviceInfo {
            kind: d.kind.name().into(),
            name: d.name,
            description: d.description,
            backend: d.backend,
            memory_total_bytes: d.memory_total,
            memory_free_bytes: d.memory_free,
        })
        .collect()
}
