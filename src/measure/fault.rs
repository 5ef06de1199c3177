//! A test hook: `LLAMA_SWEEP_TEST_FAULT` makes every measuring trial child
//! misbehave on purpose (probe and quantize jobs are left alone), so the
//! parent's fault handling can be tested, and its own overhead measured, on
//! the real binary. It is read from the environment only (a sweep.toml
//! cannot set it) and does nothing when unset.
//!
//! Values: `crash` (abort), `segfault` (SIGSEGV), `hang` (sleep forever),
//! `garbage` (print an unreadable result and exit 0), `exit` (exit 1 without
//! a result), `instant` (answer at once with made-up measurements, without
//! loading the model), `sleep:<seconds>` (the same after sleeping).

use crate::protocol::{ChildReply, ModelFacts, TrialMetrics};
use std::io::Write;

pub const ENV: &str = "LLAMA_SWEEP_TEST_FAULT";

pub fn inject_if_requested(reply_out: &mut impl Write) {
    let Ok(fault) = std::env::var(ENV) else {
        return;
    };
    eprintln!("llama-sweep trial: {ENV}={fault}: injecting a fault on purpose");
    match fault.as_str() {
        "crash" => std::process::abort(),
        // Rust's own SIGSEGV handler (stack-overflow detection) would
        // swallow a raised signal: restore the default action first.
        // SAFETY: raising a signal against ourselves is the point.
        "segfault" => unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        },
        "hang" => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        "garbage" => {
            let _ = writeln!(reply_out, "{{not json").and_then(|_| reply_out.flush());
            std::process::exit(0);
        }
        "exit" => std::process::exit(1),
        "instant" => answer_made_up(reply_out, 0.0),
        other => match other
            .strip_prefix("sleep:")
            .and_then(|s| s.parse::<f64>().ok())
        {
            Some(seconds) => answer_made_up(reply_out, seconds),
            None => eprintln!("llama-sweep trial: unknown {ENV} value {other:?}, ignored"),
        },
    }
}

/// Replies with fixed measurements after `seconds`, and exits.
fn answer_made_up(reply_out: &mut impl Write, seconds: f64) -> ! {
    std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
    let reply = ChildReply::Measured(TrialMetrics {
        model: ModelFacts {
            description: "made up by LLAMA_SWEEP_TEST_FAULT".into(),
            n_params: 1,
            size_bytes: 1,
            n_layer: 1,
        },
        n_ctx_actual: 512,
        n_batch_actual: 512,
        n_ubatch_actual: 512,
        load_ms: 1.0,
        pp_tps: vec![1000.0, 1000.0],
        tg_tps: vec![100.0, 100.0],
        ttft_ms: vec![10.0, 10.0],
        e2e_ms: vec![100.0, 100.0],
        layers_offloaded: 0,
        layers_total: 2,
        flash_attn_resolved: None,
        device_memory_used_bytes: None,
    });
    let json = serde_json::to_string(&reply).expect("replies serialize");
    let _ = writeln!(reply_out, "{json}").and_then(|_| reply_out.flush());
    std::process::exit(0)
}
