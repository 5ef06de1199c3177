//! The child side of the trial protocol: read one [`ChildJob`] from stdin, do
//! it with llama.cpp, write one [`ChildReply`] line to the protocol stdout.
//!
//! Before anything else the real stdout is set aside for the reply and fd 1 is
//! pointed at stderr, so whatever llama.cpp or a backend prints can only end up
//! in the trial's log, never in the reply.

mod apply;
/// llama.cpp's default for every knob, as this build links it.
pub use apply::defaults as llama_cpp_defaults;
pub mod bench;
pub mod crash;
mod fault;
mod fit;
pub mod llama;
pub mod log_capture;
pub mod probe;
mod python_trial;
mod quality;
mod quiet;
mod resident;
mod selftest;
mod server_order;
pub mod server_trial;
mod tokens;

use crate::protocol::{ChildJob, ChildReply, ChildRequest};
use std::fs::File;
use std::io::{BufRead, Write};
use std::os::fd::FromRawFd;
use std::process::ExitCode;

/// Exit status of a child that answered with [`ChildReply::Failed`].
pub const EXIT_FAILED: u8 = 3;

/// The child's scratch folder (the parent's, else the temporary directory).
static SCRATCH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

pub(crate) fn scratch_dir() -> std::path::PathBuf {
    SCRATCH.get().cloned().unwrap_or_else(std::env::temp_dir)
}

/// Runs the child: `llama-sweep trial`.
pub fn run_child() -> ExitCode {
    let mut reply_out = match take_stdout() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("llama-sweep trial: cannot set up the protocol stdout: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut line = String::new();
    if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
        eprintln!("llama-sweep trial: cannot read the job from stdin: {e}");
        return ExitCode::FAILURE;
    }
    let request: ChildRequest = match serde_json::from_str(&line) {
        Ok(request) => request,
        Err(e) => {
            eprintln!("llama-sweep trial: the job on stdin is not valid: {e}");
            eprintln!("(this subcommand is run by `llama-sweep run`, not by hand)");
            return ExitCode::from(2);
        }
    };
    crash::install();
    fault::install(request.test_fault);
    if let Some(dir) = request.scratch {
        let _ = SCRATCH.set(dir);
    }
    let job = request.job;
    if matches!(job, ChildJob::Measure(_)) {
        fault::at_measure_start(&mut reply_out);
    }
    if let ChildJob::Resident(job) = &job {
        log_capture::install();
        llama::init_backend();
        let mut commands = std::io::stdin().lock();
        // A trial in the app's llama-cpp-python is kept in its interpreter.
        let served = match &job.spec.python {
            Some(python) => python_trial::serve(job, python, &mut commands, &mut reply_out),
            None => resident::serve(job, &mut commands, &mut reply_out),
        };
        let code = match served {
            Ok(()) => 0,
            Err(reason) => {
                let json = serde_json::to_string(&ChildReply::Failed { reason })
                    .expect("replies serialize");
                let _ = writeln!(reply_out, "{json}").and_then(|_| reply_out.flush());
                i32::from(EXIT_FAILED)
            }
        };
        // SAFETY: ends the process; every reply is flushed.
        unsafe { libc::_exit(code) }
    }
    let reply = do_job(job);
    let code = match reply {
        ChildReply::Failed { .. } => i32::from(EXIT_FAILED),
        _ => 0,
    };
    let json = serde_json::to_string(&reply).expect("replies serialize");
    if writeln!(reply_out, "{json}")
        .and_then(|_| reply_out.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // The reply is out: leave without running llama.cpp's and the GPU
    // drivers' teardown, which can crash or hang and has nothing to add.
    // SAFETY: ends the process; every output that matters is flushed.
    unsafe { libc::_exit(code) }
}

fn do_job(job: ChildJob) -> ChildReply {
    log_capture::install();
    llama::init_backend();
    match job {
        ChildJob::Probe => ChildReply::Probe(probe::probe()),
        ChildJob::Measure(spec) => match match (&spec.server, &spec.python) {
            (Some(server), _) => server_trial::measure(&spec, server),
            (None, Some(python)) => python_trial::measure(&spec, python),
            (None, None) => bench::measure(&spec),
        } {
            Ok(metrics) => ChildReply::Measured(metrics),
            Err(reason) => ChildReply::Failed { reason },
        },
        ChildJob::Quantize(job) => match crate::models::quantize::quantize(&job) {
            Ok(report) => ChildReply::Quantized(report),
            Err(reason) => ChildReply::Failed { reason },
        },
        ChildJob::Quality(job) => match quality::measure(&job) {
            Ok(metrics) => ChildReply::Quality(metrics),
            Err(reason) => ChildReply::Failed { reason },
        },
        ChildJob::SelfTest(job) => match selftest::run(&job) {
            Ok(report) => ChildReply::SelfTested(report),
            Err(reason) => ChildReply::Failed { reason },
        },
        ChildJob::Fit(job) => match fit::fit(&job) {
            Ok(report) => ChildReply::Fitted(report),
            Err(reason) => ChildReply::Failed { reason },
        },
        ChildJob::Resident(_) => ChildReply::Failed {
            reason: "a resident job is served by run_child".into(),
        },
        ChildJob::Tokenize(job) => match count_tokens(&job) {
            Ok(counts) => ChildReply::Tokenized { counts },
            Err(reason) => ChildReply::Failed { reason },
        },
    }
}

/// Each text's tokens by the model's own tokenizer (its vocabulary only
/// loaded), special tokens added as llama.cpp adds them to a prompt.
fn count_tokens(job: &crate::protocol::TokenizeJob) -> Result<Vec<u32>, String> {
    let mut params = llama::ModelParams::default();
    params.raw.vocab_only = true;
    let model = llama::Model::load(&job.model, &params)
        .map_err(|e| bench::failure(&format!("cannot load {}", job.model.display()), e))?;
    job.texts
        .iter()
        .map(|text| {
            model
                .vocab()
                .tokenize(text.as_bytes(), true)
                .map(|t| t.len() as u32)
        })
        .collect()
}

/// Duplicates stdout for the reply and redirects fd 1 to stderr.
fn take_stdout() -> std::io::Result<File> {
    // SAFETY: dup/dup2 on the process's own standard descriptors; the new
    // descriptor is owned by the returned File alone.
    unsafe {
        let reply_fd = libc::dup(1);
        if reply_fd < 0 || libc::dup2(2, 1) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(File::from_raw_fd(reply_fd))
    }
}
