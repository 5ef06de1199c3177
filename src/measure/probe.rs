//! What this build of llama.cpp is and can do: version, compiled backends,
//! devices with their memory, CPU features, and the default value of every
//! parameter of the search space.

use super::bench::{context_params, model_params};
use crate::protocol::{DeviceInfo, EffectiveParams, FlashAttn, KvType, Params, ProbeReport};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::{LlamaBackendDeviceType, list_llama_ggml_backend_devices};
use std::ffi::CStr;

fn c_string(ptr: *const std::ffi::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: llama.cpp returns NUL-terminated static strings.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .trim()
        .to_string()
}

pub fn probe(backend: &LlamaBackend) -> ProbeReport {
    // SAFETY: plain getters of static data.
    let (version, system_info) = unsafe {
        (
            c_string(llama_cpp_sys_2::llama_version()),
            c_string(llama_cpp_sys_2::llama_print_system_info()),
        )
    };
    let backends = (0..unsafe { llama_cpp_sys_2::ggml_backend_reg_count() })
        .map(|i| unsafe {
            c_string(llama_cpp_sys_2::ggml_backend_reg_name(
                llama_cpp_sys_2::ggml_backend_reg_get(i),
            ))
        })
        .collect();
    let devices = list_llama_ggml_backend_devices()
        .into_iter()
        .map(|d| DeviceInfo {
            kind: match d.device_type {
                LlamaBackendDeviceType::Cpu => "cpu",
                LlamaBackendDeviceType::Gpu => "gpu",
                LlamaBackendDeviceType::IntegratedGpu => "igpu",
                LlamaBackendDeviceType::Accelerator => "accel",
                LlamaBackendDeviceType::Unknown => "unknown",
            }
            .into(),
            name: d.name,
            description: d.description,
            backend: d.backend,
            memory_total_bytes: d.memory_total as u64,
            memory_free_bytes: d.memory_free as u64,
        })
        .collect();
    ProbeReport {
        llama_cpp_build: format!(
            "llama.cpp {version} (vendored by llama-cpp-sys-2 {})",
            env!("LLAMA_CPP_SYS_VERSION")
        ),
        system_info,
        supports_gpu_offload: backend.supports_gpu_offload(),
        supports_mmap: backend.supports_mmap(),
        backends,
        devices,
        defaults: defaults(),
    }
}

/// llama.cpp's default for every parameter, read from its default parameter
/// structs (the values a trial gets for the axes a sweep leaves unset).
pub fn defaults() -> EffectiveParams {
    let mp = model_params(&Params::default());
    let cp = context_params(&Params::default());
    let flash_attn = match cp.flash_attention_policy() {
        llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED => FlashAttn::On,
        llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED => FlashAttn::Off,
        _ => FlashAttn::Auto,
    };
    let kv = |t: llama_cpp_2::context::params::KvCacheType| {
        KvType::ALL
            .into_iter()
            .find(|k| super::bench::kv_cache_type(*k) == t)
            .unwrap_or(KvType::F16)
    };
    EffectiveParams {
        n_gpu_layers: mp.n_gpu_layers(),
        n_ctx: cp.n_ctx().map_or(0, |n| n.get()),
        n_batch: cp.n_batch(),
        n_ubatch: cp.n_ubatch(),
        n_threads: cp.n_threads(),
        n_threads_batch: cp.n_threads_batch(),
        flash_attn,
        type_k: kv(cp.type_k()),
        type_v: kv(cp.type_v()),
        use_mmap: mp.use_mmap(),
        offload_kqv: cp.offload_kqv(),
    }
}
