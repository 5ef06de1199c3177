//! The child side of the fit reference: asks llama.cpp's own `--fit`
//! (common_fit_params, what llama-server runs at start-up unless told
//! `--fit off`) where it would put a model's weights given the devices'
//! free memory, and reports the settings it changed in the parameter
//! table's terms. Nothing is loaded: fit simulates the allocations.

use super::{apply, llama, probe};
use crate::knobs::{self, Params, Value, lists};
use crate::protocol::{FitJob, FitReport};
use llama_cpp_sys_2 as sys;
use std::ffi::CString;

/// llama.cpp's defaults for `--fit-target` (1 GiB left free per device) and
/// `--fit-ctx` (the smallest context fit may shrink to).
const MARGIN_BYTES: usize = 1024 * 1024 * 1024;
const N_CTX_MIN: u32 = 4096;

pub fn fit(job: &FitJob) -> Result<FitReport, String> {
    let mut settings = apply::settings(&job.params);
    let path = CString::new(job.model.path.to_string_lossy().as_bytes())
        .map_err(|_| "the model path contains a NUL byte".to_string())?;
    // SAFETY: plain queries.
    let (max_devices, max_overrides) = unsafe {
        (
            sys::llama_max_devices(),
            sys::llama_max_tensor_buft_overrides(),
        )
    };
    let mut tensor_split = vec![0.0f32; max_devices];
    let mut overrides = vec![
        sys::llama_model_tensor_buft_override {
            pattern: std::ptr::null(),
            buft: std::ptr::null_mut(),
        };
        max_overrides
    ];
    let mut margins = vec![MARGIN_BYTES; max_devices];
    let before = (settings.model.raw.n_gpu_layers, settings.context.n_ctx);
    let cparams = &mut settings.context;
    let (status, mparams) = settings.model.with_raw(|mparams| {
        // SAFETY: the buffers have the sizes llama.cpp asks for; fit writes
        // the split and the overrides into them and points mparams there.
        let status = unsafe {
            sys::llama_rs_fit_params(
                path.as_ptr(),
                mparams,
                cparams,
                tensor_split.as_mut_ptr(),
                overrides.as_mut_ptr(),
                margins.as_mut_ptr(),
                N_CTX_MIN,
                std::ptr::null(),
                sys::GGML_LOG_LEVEL_ERROR,
            )
        };
        (status, *mparams)
    })?;
    let status = match status {
        0 => "success",
        1 => "failure",
        _ => "error",
    };
    let mut changed = Params::default();
    if mparams.n_gpu_layers != before.0 {
        changed.set(knobs::N_GPU_LAYERS, Value::Int(mparams.n_gpu_layers.into()));
    }
    if settings.context.n_ctx != before.1 {
        changed.set(knobs::N_CTX, Value::Int(settings.context.n_ctx.into()));
    }
    // Only what fit wrote into its own buffers is its choice; a split or
    // overrides the job set stay as they were.
    if mparams.tensor_split == tensor_split.as_ptr() && tensor_split.iter().any(|p| *p != 0.0) {
        let last = tensor_split.iter().rposition(|p| *p != 0.0).unwrap_or(0);
        let text: Vec<String> = tensor_split[..=last]
            .iter()
            .map(|p| p.to_string())
            .collect();
        let split = lists::tensor_split(&text.join(","))?;
        changed.set(knobs::TENSOR_SPLIT, Value::Text(split));
    }
    if mparams.tensor_buft_overrides == overrides.as_ptr() {
        let rules = read_overrides(mparams.tensor_buft_overrides)?;
        if !rules.is_empty() {
            let text = lists::override_tensor(&rules.join(","))?;
            changed.set(knobs::OVERRIDE_TENSOR, Value::Text(text));
        }
    }
    Ok(FitReport {
        status: status.into(),
        changed,
        devices: probe::devices(),
    })
}

/// The `pattern=BUFFER_TYPE` rules of a NULL-terminated override list.
fn read_overrides(
    mut list: *const sys::llama_model_tensor_buft_override,
) -> Result<Vec<String>, String> {
    let mut rules = Vec::new();
    // SAFETY: fit wrote a list ending in a null pattern; its patterns and
    // buffer types live for the process.
    unsafe {
        while !(*list).pattern.is_null() {
            let pattern = llama::c_string((*list).pattern);
            let buft = llama::c_string(sys::ggml_backend_buft_name((*list).buft));
            if pattern.contains(',') {
                return Err(format!(
                    "llama.cpp's fit chose the tensor pattern {pattern:?}, which has a comma \
                     that llama.cpp's own -ot cannot take"
                ));
            }
            rules.push(format!("{pattern}={buft}"));
            list = list.add(1);
        }
    }
    Ok(rules)
}
