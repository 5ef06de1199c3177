//! A trial measured in the app's own llama-cpp-python (`[sweep] runtime =
//! "python"`): the child runs the app's interpreter with the driver verify
//! uses (`runtime::python`), which loads `Llama(**kwargs)` with the keyword
//! arguments config.yaml exports for this trial (`export::json::object`, so what
//! is measured is what is exported) and streams the app's requests, one at
//! a time as `Llama()` serves them, every prompt unique random tokens as
//! llama-bench draws them. The request's figures are timed on the app's
//! clock (`crate::request`); pp and tg come from llama.cpp's own counters
//! in that process. The interpreter's log is echoed into the trial's as it
//! is written.
//!
//! The session (load, warm-up and every repetition) is one run for the
//! quiet watch: a session other processes disturbed is run again whole,
//! and no trial is dropped early in the middle of one.
//!
//! In the confirmation the trial stays resident in its interpreter
//! ([`serve`]): the driver's serve mode loads `Llama()` once and times one
//! request per block, which the parent alternates with the other
//! subjects' blocks like any resident subject's.

use super::server_trial::read_log_facts;
use crate::models::gguf::GgufHeader;
use crate::objective::Metric;
use crate::protocol::{ChildReply, ResidentJob, TrialMetrics, TrialSpec};
use crate::runtime::log_echo::LogEcho;
use crate::runtime::prompts;
use crate::runtime::python::{DriverJob, PythonRuntime, Timed, TimedRequest};
use crate::store::row::TrialRow;
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The parent's trial timeout bounds the whole; this only keeps a lost
/// interpreter from outliving it.
const SESSION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Measures `spec` in `python`'s llama-cpp-python; the error is the reason
/// it failed.
pub fn measure(spec: &TrialSpec, python: &Path) -> Result<TrialMetrics, String> {
    let path = &spec.model.path;
    let header =
        GgufHeader::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let n_vocab = prompts::vocabulary_size(path).map_err(|e| format!("{e:#}"))?;
    // Nothing forced: Llama() runs its own build's kernels and cannot be
    // told to route around llama-sweep's.
    let (params, defaulted) = spec.params.resolve(&super::apply::defaults());
    let llm = llm_kwargs(spec, &params, &defaulted);
    let w = &spec.workload;
    let prompts = prompts::random_prompts(
        spec.seed,
        n_vocab,
        (w.warmup + w.repetitions) as usize,
        w.request_prompt_tokens,
    );
    let job = DriverJob {
        llm,
        prompts: &prompts,
        warmup: w.warmup as usize,
        max_tokens: w.request_max_tokens,
        temperature: f64::from(spec.sampling.temperature),
        seed: spec.seed,
    };
    let log = super::scratch_dir().join(format!("llama-cpp-python-{}.log", spec.trial_id));
    let echo = LogEcho::start(&log, "llama-cpp-python| ");
    let runtime = PythonRuntime::new(python);
    // Its CPU time is this child's once it has ended: this child measures.
    let mut quiet =
        super::quiet::QuietWatch::new(spec.schedule.quiet, vec![std::process::id()], w.repetitions);
    let session = quiet.run("the session", || {
        eprintln!(
            "llama-sweep: Llama() in {}, {} request(s) after {} warm-up",
            python.display(),
            w.repetitions,
            w.warmup
        );
        runtime
            .timed_session(&job, &log, SESSION)
            .map_err(|e| e.reason)
    });
    echo.finish();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let (timed, _) = session?;
    let mut m = metrics_of(&timed);
    m.busy = quiet.record;
    read_log_facts(&mut m, &header, path, &params, &text);
    Ok(m)
}

/// Keeps `job`'s trial resident in `python`'s llama-cpp-python for the
/// confirmation: loads it in the driver's serve mode, warms it up with the
/// workload's warm-up requests, replies Ready (naming the interpreter as a
/// measurer), then answers each measure command read from `commands` with
/// the figures of one request, until the stop command or the end of the
/// input.
pub fn serve(
    job: &ResidentJob,
    python: &Path,
    commands: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), String> {
    let spec = &job.spec;
    let n_vocab = prompts::vocabulary_size(&spec.model.path).map_err(|e| format!("{e:#}"))?;
    let (params, defaulted) = spec.params.resolve(&super::apply::defaults());
    let mut driver = Driver::start(python, &llm_kwargs(spec, &params, &defaulted))?;
    let w = &spec.workload;
    // Each block's prompt is new random tokens, as every repetition's is.
    let request = |k: u32| {
        let seed = spec.seed.wrapping_add(u64::from(k));
        json!({
            "prompt": prompts::random_prompts(seed, n_vocab, 1, w.request_prompt_tokens)[0],
            "max_tokens": w.request_max_tokens,
            "temperature": f64::from(spec.sampling.temperature),
            "seed": seed,
        })
    };
    for k in 0..w.warmup {
        driver.request(&request(k))?;
    }
    super::resident::reply(
        out,
        &ChildReply::Ready {
            load_ms: driver.load_ms,
            measurers: vec![driver.child.id()],
        },
    )?;
    for block in 0u32.. {
        if !super::resident::measure_asked(commands) {
            break;
        }
        let timed = driver.request(&request(w.warmup + block))?;
        let mut figures = super::resident::request_block(&[timed.timing()], &timed.gaps_ms);
        figures
            .figures
            .extend(timed.counted_gen_tps().map(|v| (Metric::TgTps, v)));
        figures
            .figures
            .extend(timed.counted_prompt_tps().map(|v| (Metric::PpTps, v)));
        eprintln!("llama-sweep: block {} measured", block + 1);
        super::resident::reply(out, &ChildReply::Block(figures))?;
    }
    driver.stop();
    Ok(())
}

/// The driver in serve mode: `Llama()` loaded, one request per line.
struct Driver {
    child: Child,
    to: Option<ChildStdin>,
    from: BufReader<ChildStdout>,
    load_ms: f64,
}

impl Driver {
    fn start(python: &Path, llm: &serde_json::Value) -> Result<Driver, String> {
        let mut command = Command::new(python);
        command
            .arg("-c")
            .arg(crate::runtime::python::DRIVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its log is this child's, which is the trial's log file.
            .stderr(Stdio::inherit());
        crate::runner::process::isolate(&mut command);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
        let mut driver = Driver {
            to: child.stdin.take(),
            from: BufReader::new(child.stdout.take().expect("stdout is piped")),
            child,
            load_ms: 0.0,
        };
        driver.send(&json!({"mode": "serve", "llm": llm}))?;
        let ready = driver.reply()?;
        driver.load_ms = ready["load_ms"].as_f64().unwrap_or_default();
        Ok(driver)
    }

    fn send(&mut self, message: &serde_json::Value) -> Result<(), String> {
        let to = self
            .to
            .as_mut()
            .ok_or("the interpreter's input is closed")?;
        writeln!(to, "{message}")
            .and_then(|_| to.flush())
            .map_err(|_| self.ended())
    }

    /// The next reply (a JSON line with a "reply" key; anything else the
    /// interpreter prints is passed over); a failure or the interpreter's
    /// end is the error.
    fn reply(&mut self) -> Result<serde_json::Value, String> {
        let mut line = String::new();
        loop {
            line.clear();
            if matches!(self.from.read_line(&mut line), Ok(0) | Err(_)) {
                return Err(self.ended());
            }
            let Ok(value) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            match value["reply"].as_str() {
                None => continue,
                Some("failed") => {
                    return Err(value["reason"].as_str().unwrap_or("failed").to_string());
                }
                Some(_) => return Ok(value),
            }
        }
    }

    fn request(&mut self, request: &serde_json::Value) -> Result<TimedRequest, String> {
        self.send(request)?;
        serde_json::from_value(self.reply()?)
            .map_err(|e| format!("the interpreter's request reply is unreadable ({e})"))
    }

    /// Why the interpreter is gone: its ending.
    fn ended(&mut self) -> String {
        self.to = None;
        match self.child.wait() {
            Ok(status) => format!(
                "the app's interpreter ended ({})",
                crate::runner::process::ExitKind::of(status)
                    .map_or("an unknown ending".into(), |e| e.to_string())
            ),
            Err(e) => format!("the app's interpreter ended ({e})"),
        }
    }

    fn stop(mut self) {
        if let Some(mut to) = self.to.take() {
            let _ = writeln!(to, "stop");
        }
        let _ = self.child.wait();
    }
}

/// `Llama()`'s keyword arguments for `spec`, as its row will export them.
fn llm_kwargs(
    spec: &TrialSpec,
    params: &crate::knobs::EffectiveParams,
    defaulted: &[&str],
) -> serde_json::Value {
    let row = TrialRow {
        model_path: spec.model.path.display().to_string(),
        params: params.clone(),
        defaulted: defaulted.join(";"),
        ..Default::default()
    };
    crate::export::json::object(&row)
}

/// The trial's figures from the session's requests: one repetition per
/// request (`Llama()` serves one at a time).
fn metrics_of(timed: &Timed) -> TrialMetrics {
    let mut m = TrialMetrics {
        load_ms: timed.load_ms,
        ..Default::default()
    };
    for request in &timed.requests {
        let figures = crate::request::round(&[request.timing()]);
        m.ttft_ms.extend(figures.ttft_ms);
        m.e2e_ms.extend(figures.e2e_ms);
        m.request_tps.extend(figures.request_tps);
        m.output_tps.extend(figures.output_tps);
        m.itl_ms.extend(request.gaps_ms.iter().copied());
        m.pp_tps.extend(request.counted_prompt_tps());
        m.tg_tps.extend(request.counted_gen_tps());
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{self, FlashAttn, Params, Value};

    #[test]
    fn the_session_is_loaded_with_the_keyword_arguments_its_row_exports() {
        let spec = TrialSpec {
            params: Params::default()
                .with(knobs::N_THREADS, Value::Int(2))
                .with(knobs::FLASH_ATTN, FlashAttn::Off.into()),
            ..crate::test_support::spec("t")
        };
        let (params, defaulted) = spec.params.resolve(&crate::measure::apply::defaults());
        let llm = llm_kwargs(&spec, &params, &defaulted);
        assert_eq!(llm["model_path"], "models/m.gguf");
        assert_eq!(llm["n_threads"], 2);
        assert_eq!(llm["flash_attn"], false);
        assert_eq!(llm["n_batch"], 512);
        // Llama()'s own defaults differ from llama.cpp's: the context and
        // the layers are given whatever the trial left unset.
        assert!(llm.get("n_ctx").is_some() && llm.get("n_gpu_layers").is_some());
        assert_eq!(llm["verbose"], false);
    }

    #[test]
    fn each_request_is_a_repetition_on_the_apps_clock_with_llama_cpps_counters_beside() {
        let request = |ttft: f64, span: f64| TimedRequest {
            sent_to_first_ms: ttft,
            first_to_last_ms: span,
            gaps_ms: vec![span / 63.0; 63],
            generated: 64,
            eval_ms: 600.0,
            n_eval: 63,
            prompt_eval_ms: 500.0,
            n_prompt_eval: 256,
        };
        let timed = Timed {
            load_ms: 900.0,
            n_threads: 2,
            cpus_allowed: 2,
            requests: vec![request(700.0, 630.0), request(800.0, 700.0)],
        };
        let m = metrics_of(&timed);
        assert_eq!(m.ttft_ms, [700.0, 800.0]);
        assert_eq!(m.e2e_ms, [1330.0, 1500.0]);
        // 63 tokens after the first over the time from the first to the
        // last.
        assert!(
            (m.request_tps[0] - 100.0).abs() < 1e-9,
            "{:?}",
            m.request_tps
        );
        assert!(
            (m.request_tps[1] - 90.0).abs() < 1e-9,
            "{:?}",
            m.request_tps
        );
        assert!((m.output_tps[0] - 64.0 / 1.33).abs() < 1e-9);
        assert_eq!(m.itl_ms.len(), 126);
        assert_eq!(m.pp_tps, [512.0, 512.0]);
        assert_eq!(m.tg_tps, [105.0, 105.0]);
        assert_eq!(m.load_ms, 900.0);
    }
}
