//! Derives a quantized model with llama.cpp's own quantizer
//! (`llama_model_quantize`), in a child process. Requantizing an already
//! quantized source is allowed: the result keeps the source's quality, but its
//! speed is the real speed of the new type.

use super::quant_types::QuantType;
use crate::protocol::{QuantizeJob, QuantizeReport};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

pub fn quantize(job: &QuantizeJob) -> Result<QuantizeReport, String> {
    let quant = QuantType::from_name(&job.quant_type)
        .ok_or_else(|| format!("unknown quantization {}", job.quant_type))?;
    let c_path = |p: &std::path::Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| format!("path {} contains a NUL byte", p.display()))
    };
    let (source, output) = (c_path(&job.source)?, c_path(&job.output)?);
    // SAFETY: default params are plain data; the paths outlive the call.
    let rc = unsafe {
        let mut params = llama_cpp_sys_2::llama_model_quantize_default_params();
        params.nthread = job.threads as i32;
        params.ftype = quant.ftype as _;
        params.allow_requantize = true;
        let started = Instant::now();
        let rc = llama_cpp_sys_2::llama_model_quantize(source.as_ptr(), output.as_ptr(), &params);
        (rc, started.elapsed())
    };
    let (rc, elapsed) = rc;
    if rc != 0 {
        return Err(crate::measure::log_capture::failure_reason(
            &format!(
                "llama.cpp's quantizer could not make {} from {}",
                quant.name,
                job.source.display()
            ),
            &format!("llama_model_quantize returned {rc}"),
        ));
    }
    let output_bytes = std::fs::metadata(&job.output)
        .map(|m| m.len())
        .map_err(|e| {
            format!(
                "the quantizer reported success but {} is unreadable: {e}",
                job.output.display()
            )
        })?;
    Ok(QuantizeReport {
        output_bytes,
        seconds: elapsed.as_secs_f64(),
    })
}
