//! `verify` and `run` with `[app]`: the recommendation measured in a real
//! llama-cpp-python and a real llama-server (CI builds both; see
//! support::app_python and support::llama_server), a real gap made by
//! confining the app's interpreter to one CPU while the configuration
//! starts two threads, and the ways a runtime can be wrong: a Python
//! without llama_cpp, a binary that is not a llama-server, a server that
//! never answers. Every such failure is exit status 10 with a one-line
//! reason, and leaves the sweep's rows as they were.

use crate::support::{self, demo_model, model_table, run, stderr, stdout, sweep_file};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The sweep every test here starts from: one trial of the demo model at
/// two threads, a baseline at one, run once for all of them.
fn swept() -> &'static Path {
    static FOLDER: OnceLock<PathBuf> = OnceLock::new();
    FOLDER.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let sweep = sweep_file(
            &dir,
            &model_table("demo", &demo_model(), ""),
            "n_threads = 2",
            "[baseline]\nmodel = \"demo\"\nn_gpu_layers = 0\nn_ctx = 256\nn_threads = 1\n\n\
             [confirm]\ntop = 0\n\n[drift]\nevery = 0\n\n[trial]\ntimeout_s = 120\n",
        );
        let out = run(&["run", sweep.to_str().unwrap()]);
        assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
        dir.join("reports/it")
    })
}

/// A copy of the swept folder, so that tests do not see each other's
/// verification.
fn copy_of_swept() -> tempfile::TempDir {
    let copy = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", swept().display()))
        .arg(copy.path())
        .status()
        .unwrap();
    assert!(status.success());
    copy
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn verification(folder: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(folder.join("verify.json")).unwrap()).unwrap()
}

#[test]
fn verify_with_no_runtime_named_is_bad_input() {
    let folder = copy_of_swept();
    let out = run(&["verify", folder.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no runtime to verify in: name the app's Python (--python PATH)"),
        "{}",
        stderr(&out)
    );
}

/// Runs verify with `flags`, expecting exit status 10 and `reason` on
/// stdout, and the folder's rows untouched.
fn fails_with(flags: &[&str], reason: &str) {
    let folder = copy_of_swept();
    let results = std::fs::read(folder.path().join("results.csv")).unwrap();
    let mut args = vec!["verify", folder.path().to_str().unwrap(), "--rounds", "1"];
    args.extend(flags);
    let out = run(&args);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(10), "{text}");
    assert!(text.contains(reason), "expected {reason:?} in:\n{text}");
    assert_eq!(
        std::fs::read(folder.path().join("results.csv")).unwrap(),
        results,
        "rows untouched"
    );
    let config = std::fs::read_to_string(folder.path().join("config.yaml")).unwrap();
    assert!(
        config.contains("# not verified in your app: llama-sweep verify"),
        "{config}"
    );
}

#[test]
fn a_python_without_llama_cpp_is_named_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    // A real interpreter without site-packages: no llama_cpp wherever it is installed.
    let python = script(dir.path(), "python", "exec python3 -I -S \"$@\"");
    fails_with(
        &["--python", python.to_str().unwrap()],
        "cannot import llama_cpp",
    );
}

#[test]
fn a_binary_that_is_not_a_llama_server_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = script(dir.path(), "llama-server", "echo 'Python 3.11.7'");
    fails_with(
        &["--server", fake.to_str().unwrap()],
        "is not a llama-server",
    );
}

#[test]
fn a_server_that_never_answers_is_given_up_on() {
    let dir = tempfile::tempdir().unwrap();
    // Says it is llama.cpp's, then listens on its port and never answers.
    let fake = script(
        dir.path(),
        "llama-server",
        r#"case "$1" in
  --version) echo 'version: 1 (fake)'; exit 0 ;;
  --list-devices) echo 'Available devices:'; echo '  (none)'; exit 0 ;;
esac
while [ $# -gt 0 ]; do [ "$1" = --port ] && port=$2; shift; done
exec python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(); time.sleep(600)' "$port""#,
    );
    let folder = copy_of_swept();
    // [app] timeout_s bounds each session; the sweep file is the folder's.
    let sweep = folder.path().join("sweep.toml");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(folder.path().join("manifest.json")).unwrap(),
    )
    .unwrap();
    let original = PathBuf::from(manifest["sweep"]["file"].as_str().unwrap());
    let text = std::fs::read_to_string(&original).unwrap() + "\n[app]\ntimeout_s = 3\n";
    std::fs::write(&sweep, &text).unwrap();
    let mut m = manifest.clone();
    m["sweep"]["file"] = sweep.display().to_string().into();
    std::fs::write(folder.path().join("manifest.json"), m.to_string()).unwrap();
    let started = std::time::Instant::now();
    let out = run(&[
        "verify",
        folder.path().to_str().unwrap(),
        "--rounds",
        "1",
        "--server",
        fake.to_str().unwrap(),
    ]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(10), "{text}");
    assert!(
        text.contains("llama-server did not become ready on port"),
        "{text}"
    );
    assert!(started.elapsed().as_secs() < 120, "gave up in time: {text}");
}

#[test]
fn the_recommendation_is_verified_in_real_llama_cpp_python_and_llama_server() {
    let (Some(python), Some(server)) = (support::app_python(), support::llama_server()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("demo", &demo_model(), ""),
        "n_threads = 2",
        &format!(
            "[baseline]\nmodel = \"demo\"\nn_gpu_layers = 0\nn_ctx = 256\nn_threads = 1\n\n\
             [confirm]\ntop = 0\n\n[drift]\nevery = 0\n\n\
             [app]\npython = \"{}\"\nserver = \"{}\"\nrounds = 2\nrepetitions = 2\n",
            python.display(),
            server.display()
        ),
    );
    let out = run(&["run", sweep.to_str().unwrap()]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    let folder = dir.path().join("reports/it");
    let v = verification(&folder);
    let results = v["results"].as_array().unwrap();
    // The baseline is verified too, unless it is what the sweep recommends
    // (on a busy 2-core machine one thread can win).
    let baseline_won = !results.iter().any(|r| r["role"] == "baseline");
    let configurations = if baseline_won { 1 } else { 2 };
    assert_eq!(results.len(), 2 * configurations, "{v:#}");
    for r in results {
        assert!(r["error"].is_null(), "{r:#}");
        assert!(r["app_gen_tps"].as_f64().unwrap() > 0.0, "{r:#}");
        assert!(r["ratio"]["ratio"].as_f64().unwrap() > 0.0, "{r:#}");
        assert_eq!(r["rounds_paired"], 2, "{r:#}");
    }
    for runtime in ["python", "server"] {
        assert!(
            results
                .iter()
                .any(|r| r["runtime"] == runtime && r["role"].is_null()),
            "{v:#}"
        );
    }
    // Every session of every round, raw, with what the runtime ran.
    let sessions = v["sessions"].as_array().unwrap();
    assert_eq!(
        sessions.len(),
        2 * configurations * 3,
        "2 rounds x configurations x 3 runtimes"
    );
    // The recommendation's own session in llama-cpp-python ran the threads
    // it was measured with (round 1 may start with the baseline's).
    let recommended = results.iter().find(|r| r["role"].is_null()).unwrap();
    let python_session = sessions
        .iter()
        .find(|s| s["runtime"] == "python" && s["trial_id"] == recommended["trial_id"])
        .unwrap();
    let threads = if baseline_won { 1 } else { 2 };
    assert_eq!(
        python_session["outcome"]["measured"]["n_threads"], threads,
        "{python_session:#}"
    );
    assert_eq!(
        python_session["outcome"]["measured"]["generated"][0], 8,
        "end of text suppressed: {python_session:#}"
    );
    let kinds: Vec<&str> = v["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sweep", "python", "server"]);
    assert!(
        v["runtimes"][1]["version"]
            .as_str()
            .unwrap()
            .starts_with("llama-cpp-python 0.3."),
        "{v:#}"
    );
    assert_eq!(v["runtimes"][2]["supports_gpu_offload"], false);
    // Where the user looks: the terminal, config.yaml, the report, the manifest.
    assert!(text.contains("in llama-cpp-python 0.3."), "{text}");
    let config = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    assert!(
        config.contains("# verified in your app (32 prompt + 8 generated tokens, temperature 0.7"),
        "{config}"
    );
    assert!(config.contains("llama-server"), "{config}");
    let report = std::fs::read_to_string(folder.join("report.html")).unwrap();
    assert!(
        report.contains("<h2 id=\"app\">In your app</h2>")
            && report.contains("llama-cpp-python 0.3."),
        "report"
    );
    let manifest = std::fs::read_to_string(folder.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"app_verification\""), "{manifest}");
}

#[test]
fn an_interpreter_confined_to_one_cpu_is_measured_and_named_as_the_cause() {
    let Some(python) = support::app_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The app's interpreter, started on one CPU while its config says two threads.
    let confined = script(
        dir.path(),
        "python",
        &format!("exec taskset -c 0 {} \"$@\"", python.display()),
    );
    let folder = copy_of_swept();
    // The two-thread trial is the one to verify, whichever the busy
    // machine ranked first: the folder's recommendation says so.
    let row = support::read_rows(folder.path())
        .into_iter()
        .find(|r| r.is_ok() && r.params.int(llama_sweep::knobs::N_THREADS) == 2)
        .expect("a two-thread trial");
    let two_threads = row.trial_id;
    // A recommendation of this machine under the current rules (verify,
    // like run, uses no other).
    std::fs::write(
        folder.path().join("recommendation.json"),
        serde_json::json!({"rules": llama_sweep::confirm::DECISION_RULES,
                           "machine_id": row.machine_id,
                           "trial_id": two_threads, "metric": "request_tps", "value": 1.0,
                           "runs": 0, "runner_up": null, "verdict": "pinned by the test"})
        .to_string(),
    )
    .unwrap();
    let out = run(&[
        "verify",
        folder.path().to_str().unwrap(),
        "--python",
        confined.to_str().unwrap(),
        "--rounds",
        "3",
        "--repetitions",
        "2",
    ]);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{text}");
    let v = verification(folder.path());
    let recommended = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"].is_null())
        .unwrap();
    assert_eq!(recommended["trial_id"], two_threads.as_str());
    let causes: Vec<&str> = recommended["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(causes.first(), Some(&"fewer-cpus"), "{recommended:#}");
    assert!(
        text.contains("could run on 1 CPU(s) but starts 2 threads"),
        "{text}"
    );
    // The one-thread baseline fits its one CPU: nothing to name there.
    if let Some(baseline) = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["role"] == "baseline")
    {
        let kinds: Vec<&str> = baseline["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap())
            .collect();
        assert!(!kinds.contains(&"fewer-cpus"), "{baseline:#}");
    }
    // The measured gap, for the log (a timing is never asserted).
    eprintln!("confined to one CPU: {}", recommended["ratio"]);
}
