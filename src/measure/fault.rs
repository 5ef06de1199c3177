//! The child side of test faults (`protocol::TestFault`): a child injects
//! the fault its request carries, which only `llama-sweep run --test-fault`
//! sends. Faults of measuring children act at their start; the
//! "when repacked" faults act wherever a model was loaded with llama.cpp's
//! extra buffer types on, the way llama.cpp's AMX kernels fail on some
//! Xeons, so the backend self-test and its fallback can be tested on any
//! CPU.

use super::apply::Settings;
use crate::protocol::{ChildReply, ModelFacts, TestFault, TrialMetrics};
use std::io::Write;
use std::sync::OnceLock;

static FAULT: OnceLock<Option<TestFault>> = OnceLock::new();

/// Remembers the request's fault for the rest of the child's life.
pub fn install(fault: Option<TestFault>) {
    let _ = FAULT.set(fault);
    if let Some(f) = fault {
        eprintln!("llama-sweep trial: test fault {f}: injecting a fault on purpose");
    }
}

fn active() -> Option<TestFault> {
    FAULT.get().copied().flatten()
}

/// Injects a fault that acts at the start of a measuring child.
pub fn at_measure_start(reply_out: &mut impl Write) {
    let Some(fault) = active().filter(|f| f.at_measure_start()) else {
        return;
    };
    match fault {
        TestFault::Crash => std::process::abort(),
        TestFault::Segfault => simulated_kernel_crash(),
        TestFault::Hang => loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        },
        TestFault::Garbage => {
            let _ = writeln!(reply_out, "{{not json").and_then(|_| reply_out.flush());
            std::process::exit(0);
        }
        TestFault::Exit => std::process::exit(1),
        TestFault::Instant => answer_made_up(reply_out, 0.0),
        TestFault::Sleep(seconds) => answer_made_up(reply_out, seconds),
        TestFault::CrashWhenRepacked | TestFault::NanWhenRepacked => {}
    }
}

/// After a model was loaded with `settings`: crashes like a broken kernel
/// when the fault says so.
pub fn after_load(settings: &Settings) {
    if active() == Some(TestFault::CrashWhenRepacked) && settings.model.raw.use_extra_bufts {
        simulated_kernel_crash();
    }
}

/// Whether the logits of a model loaded with `settings` are to read as NaN.
pub fn garbles_logits(settings: &Settings) -> bool {
    active() == Some(TestFault::NanWhenRepacked) && settings.model.raw.use_extra_bufts
}

/// Dies of SIGSEGV inside a function of its own, so the crash report names
/// it as it would name a broken kernel.
#[inline(never)]
pub fn simulated_kernel_crash() -> ! {
    // SAFETY: raising a signal against ourselves is the point; the crash
    // handler, or the default action, ends the process.
    unsafe {
        libc::raise(libc::SIGSEGV);
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
    std::process::abort()
}

/// Replies with fixed measurements after `seconds`, and exits.
fn answer_made_up(reply_out: &mut impl Write, seconds: f64) -> ! {
    std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
    let reply = ChildReply::Measured(TrialMetrics {
        dropped: None,
        server: None,
        model: ModelFacts {
            description: "made up by a test fault".into(),
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
        request_tps: vec![100.0, 100.0],
        output_tps: vec![10.0, 10.0],
        layers_offloaded: 0,
        layers_total: 2,
        flash_attn_resolved: None,
        device_memory_used_bytes: None,
        weights: Vec::new(),
        overridden: Vec::new(),
        at_depth: Vec::new(),
        itl_ms: Vec::new(),
        busy: Default::default(),
    });
    let json = serde_json::to_string(&reply).expect("replies serialize");
    let _ = writeln!(reply_out, "{json}").and_then(|_| reply_out.flush());
    std::process::exit(0)
}
