//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llama-sweep"))
}

/// The demo model, which CI fetches before running the tests.
pub fn demo_model() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(
        path.is_file(),
        "the demo model is missing: run scripts/fetch-demo-model.sh (expected {})",
        path.display()
    );
    path
}

/// The tiny random-weight mixture-of-experts model (qwen3moe, 4 layers, 8
/// experts) that scripts/make-moe-model.sh writes.
pub fn moe_model() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/test-moe.gguf");
    assert!(
        path.is_file(),
        "the test MoE model is missing: run scripts/make-moe-model.sh (expected {})",
        path.display()
    );
    path
}

/// Runs `llama-sweep <args>`, returning its output.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("llama-sweep runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A small sweep.toml around `model` in `dir`, with `extra` appended to the
/// [space] table; outputs go to `dir/reports`, derived models to `dir/models`.
pub fn sweep_file(dir: &Path, models: &str, space: &str, extra: &str) -> PathBuf {
    // Early drops leave a slower trial without all its tests: only the
    // tests about them drop trials. The tests run beside each other, each
    // the other's "busy machine": only the tests about a busy machine let
    // its runs wait for a quiet one ([trial] busy_cores_max).
    let mut trial = Vec::new();
    if !extra.contains("early_drop") {
        trial.push("early_drop = 0");
    }
    if !extra.contains("busy_cores_max") {
        trial.push("busy_cores_max = 1000");
    }
    let trial = trial.join("\n");
    let extra = if extra.contains("[trial]") {
        extra.replacen("[trial]", &format!("[trial]\n{trial}"), 1)
    } else {
        format!("{extra}\n[trial]\n{trial}")
    };
    let text = format!(
        r#"[sweep]
name = "it"
output_dir = "{out}"
model_cache = "{cache}"
seed = 1

{models}

[space]
n_gpu_layers = 0
n_ctx = 256
n_batch = 64
{space}

[workload]
prompt_tokens = 32
gen_tokens = 8
repetitions = 2
warmup = 1
request_prompt_tokens = 32
request_max_tokens = 8

{extra}
{quality}
{confirm}
"#,
        out = dir.join("reports").display(),
        cache = dir.join("models").display(),
        // Quality takes a minute per variant on the default text: only the
        // tests about quality measure it.
        quality = if extra.contains("[quality]") {
            ""
        } else {
            "[quality]\nmeasure = false"
        },
        // The confirmation round measures the best three again three times,
        // most of a small sweep's time: only the tests that name [confirm]
        // run it.
        confirm = if extra.contains("[confirm]") {
            ""
        } else {
            "[confirm]\ntop = 0"
        },
    );
    let path = dir.join("sweep.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub fn model_table(name: &str, path: &Path, extra: &str) -> String {
    format!(
        "[[model]]\nname = \"{name}\"\npath = \"{}\"\n{extra}\n",
        path.display()
    )
}

pub fn read_rows(folder: &Path) -> Vec<llama_sweep::store::row::TrialRow> {
    llama_sweep::store::read_rows(folder).expect("results.csv reads")
}

/// Waits up to `seconds` for `condition`; false if it never held.
pub fn wait_for(seconds: f64, mut condition: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    while std::time::Instant::now() < until {
        if condition() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    condition()
}

/// Whether a trial child has started in `folder` (its log has appeared).
pub fn a_trial_started(folder: &Path) -> bool {
    std::fs::read_dir(folder.join("logs")).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name() != "probe.log" && e.metadata().is_ok_and(|m| m.len() > 0))
    })
}

/// Sends `signal` to a process.
pub fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: a plain kill(2) on our own child.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

/// Waits for a child, at most `seconds`; its exit code (None: killed by a
/// signal or still running, then killed).
pub fn wait_exit(child: &mut std::process::Child, seconds: f64) -> Option<i32> {
    let done = wait_for(seconds, || child.try_wait().ok().flatten().is_some());
    if !done {
        let _ = child.kill();
    }
    child.wait().ok().and_then(|s| s.code())
}

/// `llama-sweep export` of one trial in one format, to stdout.
pub fn export(folder: &Path, trial: &str, format: &str) -> String {
    let out = run(&[
        "export",
        folder.to_str().unwrap(),
        "--trial",
        trial,
        "--format",
        format,
        "-o",
        "-",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// A runtime the app tests need, or `None` (the test returns early) with a
/// note on how to get it. CI builds them and sets
/// LLAMA_SWEEP_TEST_RUNTIMES=required, which makes their absence a failure.
fn runtime(path: PathBuf, how: &str) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    let message = format!("{} is missing: {how}", path.display());
    if std::env::var("LLAMA_SWEEP_TEST_RUNTIMES").as_deref() == Ok("required") {
        panic!("{message}");
    }
    eprintln!("SKIPPED (no runtime): {message}");
    None
}

/// llama-cpp-python's interpreter, as scripts/check-llama-cpp-python.sh
/// installs it (LLAMA_SWEEP_PY_VENV, else ~/.cache/llama-sweep/llama-cpp-python-venv).
pub fn app_python() -> Option<PathBuf> {
    let venv = std::env::var_os("LLAMA_SWEEP_PY_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/llama-sweep/llama-cpp-python-venv")
        });
    runtime(
        venv.join("bin/python"),
        "run scripts/check-llama-cpp-python.sh",
    )
}

/// The llama-server scripts/build-llama-tools.sh builds from llama-sweep's
/// own llama.cpp source.
pub fn llama_server() -> Option<PathBuf> {
    let work = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/llama-bench");
    let built = ["build", "build-full", "build-pypi"]
        .iter()
        .map(|d| work.join(d).join("bin/llama-server"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| work.join("build/bin/llama-server"));
    runtime(built, "run scripts/build-llama-tools.sh llama-server")
}

/// Runs one job in a `llama-sweep trial` child (with a test fault, if
/// any): its reply, `None` when it died without one.
pub fn child_reply(
    job: llama_sweep::protocol::ChildJob,
    fault: Option<llama_sweep::protocol::TestFault>,
) -> Option<llama_sweep::protocol::ChildReply> {
    use std::io::Write;
    let request = llama_sweep::protocol::ChildRequest {
        job,
        test_fault: fault,
        scratch: None,
    };
    let mut child = bin()
        .arg("trial")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    writeln!(
        child.stdin.take().unwrap(),
        "{}",
        serde_json::to_string(&request).unwrap()
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last()?).ok()
}

/// Whether llama.cpp's kernels crash (or compute garbage) on this machine
/// with repacking on, its default: its AMX kernels do on some Xeons
/// (ggml-org/llama.cpp#20824). Found once per test run by the backend
/// self-test child on the demo model, as a sweep finds it. Tests of
/// llama.cpp's default path then check what a sweep does there: route
/// around it, and say so.
pub fn repack_crashes_here() -> bool {
    use llama_sweep::knobs::Params;
    use llama_sweep::protocol::{ChildJob, ChildReply, ModelVariant, SelfTestJob};
    static CRASHES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CRASHES.get_or_init(|| {
        let job = ChildJob::SelfTest(SelfTestJob {
            model: ModelVariant {
                name: "smol".into(),
                variant: "Q4_1".into(),
                path: demo_model(),
                identity: "file:demo".into(),
            },
            params: Params::default(),
            prompt_tokens: 64,
            gen_tokens: 4,
            seed: 0,
        });
        let works = matches!(child_reply(job, None), Some(ChildReply::SelfTested(_)));
        if !works {
            eprintln!(
                "note: llama.cpp's kernels fail on this machine with repacking on (its AMX \
                 kernels?): tests of its default path check the route around it"
            );
        }
        !works
    })
}
