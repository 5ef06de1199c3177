//! A test hook: `LLAMA_SWEEP_TEST_FAULT` makes every measuring trial child
//! misbehave on purpose (probe and quantize jobs are left alone), so the fault-handling of the parent can be tested on the real
//! binary. It is read from the environment only (a sweep.toml cannot set it)
//! and does nothing when unset.
//!
//! Values: `crash` (abort), `segfault` (SIGSEGV), `hang` (sleep forever),
//! `garbage` (print an unreadable result and exit 0), `exit` (exit 1 without
//! a result).

pub const ENV: &str = "LLAMA_SWEEP_TEST_FAULT";

pub fn inject_if_requested(reply_out: &mut impl std::io::Write) {
    let Ok(fault) = std::env::var(ENV) else {
        return;
    };
    eprintln!("llama-sweep trial: {ENV}={fault}: injecting a fault on purpose");
    match fault.as_str() {
        "crash" => std::process::abort(),
        // SAFETY: raising a signal against ourselves is the point.
        // Rust's own SIGSEGV handler (stack-overflow detection) would
        // swallow a raised signal: restore the default action first.
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
        other => eprintln!("llama-sweep trial: unknown {ENV} value {other:?}, ignored"),
    }
}
