//! llama.cpp's kernels that crash or compute garbage on the user's machine
//! (issue 1/5): the backend self-test routes around them and says so, a
//! sweep whose trials all fail the same way stops early and resumes once
//! fixed, crashes name where they happened, and test faults can neither be
//! switched on from the environment nor pass for measurements. The broken
//! kernels are simulated with the hidden `run --test-fault` hook, so these
//! tests run on every CPU.

use crate::support::*;
use llama_sweep::runner::TrialStatus;
use llama_sweep::store::manifest;

fn two_trials(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    sweep_file(
        dir,
        &model_table("smol", &demo_model(), ""),
        "n_threads = [1, 2]",
        extra,
    )
}

fn run_with(sweep: &std::path::Path, fault: Option<&str>, extra: &[&str]) -> std::process::Output {
    let mut command = bin();
    command.args(["run", sweep.to_str().unwrap()]).args(extra);
    if let Some(fault) = fault {
        command.args(["--test-fault", fault]);
    }
    command.output().unwrap()
}

#[test]
fn kernels_that_crash_with_repacking_are_routed_around_and_every_output_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = two_trials(dir.path(), "");
    let out = run_with(&sweep, Some("crash-when-repacked"), &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}\n{}", stdout(&out));
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    assert_eq!(rows.len(), 3, "two trials and llama.cpp's defaults");
    for r in &rows {
        assert_eq!(r.status, TrialStatus::Ok, "{:?}", r.error);
        assert_eq!(r.forced, "repack=false");
        assert!(!r.params.flag(llama_sweep::knobs::REPACK));
        assert!(
            r.build.contains("test fault crash-when-repacked"),
            "{}",
            r.build
        );
    }
    // One plain line: what crashed, where, what runs instead, the key.
    let line = err
        .lines()
        .find(|l| l.contains("backend self-test: smol Q4_1 crashed"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("SIGSEGV"), "{line}");
    assert!(
        line.contains("simulated_kernel_crash"),
        "names the function: {line}"
    );
    assert!(
        line.contains("repack=false") && line.contains("set repack in [space]"),
        "{line}"
    );

    let m = manifest::read(&folder.join("manifest.json")).unwrap();
    let check = m.backend_check.expect("the manifest keeps the self-test");
    assert_eq!(check.variants[0].attempts.len(), 2);
    assert_eq!(check.variants[0].attempts[0].status, "crashed");
    assert!(check.variants[0].attempts[1].is_ok());

    let yaml = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    assert!(
        yaml.contains("# forced by the backend self-test: repack=false"),
        "{yaml}"
    );
    assert!(
        yaml.contains(
            "# repack: false was measured, but llama-cpp-python's Llama() has no argument"
        ),
        "{yaml}"
    );
    // Rows made under a test fault are not measurements: `export` (a
    // command without the fault) refuses them; the run's own report shows
    // what it exported, with the warning.
    let args = run(&[
        "export",
        folder.to_str().unwrap(),
        "--format",
        "server-args",
        "-o",
        "-",
    ]);
    assert_ne!(args.status.code(), Some(0), "{}", stdout(&args));
    assert!(stderr(&args).contains("--test-fault"), "{}", stderr(&args));
    let html = std::fs::read_to_string(folder.join("report.html")).unwrap();
    assert!(html.contains(" --no-repack "), "the server command line");
    assert!(
        html.contains("backend self-test"),
        "the report's machine section says it"
    );
    assert!(
        html.contains("test fault"),
        "the report says the rows are not measurements"
    );
}

#[test]
fn kernels_that_return_nan_are_a_failure_and_are_routed_around_too() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = two_trials(dir.path(), "");
    let out = run_with(&sweep, Some("nan-when-repacked"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let folder = dir.path().join("reports/it");
    let m = manifest::read(&folder.join("manifest.json")).unwrap();
    let first = &m.backend_check.unwrap().variants[0].attempts[0];
    // Where llama.cpp's own repacked kernels crash first (AMX), the sweep
    // routes around that crash the same way.
    if !(repack_crashes_here() && first.status == "crashed") {
        assert_eq!(first.status, "garbage");
        assert!(
            first
                .detail
                .as_deref()
                .unwrap()
                .contains("NaN or infinite logits")
        );
    }
    assert!(
        read_rows(&folder)
            .iter()
            .all(|r| r.is_ok() && r.forced == "repack=false")
    );
}

#[test]
fn trials_that_set_repack_themselves_fail_as_rows_with_their_crash_site() {
    // repack is swept, so the self-test may not force it: the trials with
    // repack on crash (named), the others run, and the sweep recommends one.
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = 2\nrepack = [true, false]",
        "",
    );
    let out = run_with(&sweep, Some("crash-when-repacked"), &["--retries", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = read_rows(&dir.path().join("reports/it"));
    let repacked = rows
        .iter()
        .find(|r| r.params.flag(llama_sweep::knobs::REPACK) && !r.defaulted.contains("repack"))
        .expect("the trial with repack on");
    assert_eq!(repacked.status, TrialStatus::Crashed);
    assert!(
        repacked
            .error
            .as_deref()
            .unwrap()
            .contains("in llama_sweep::measure::fault::simulated_kernel_crash"),
        "{:?}",
        repacked.error
    );
}

#[test]
fn every_trial_failing_the_same_way_stops_early_and_resumes_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = [1, 2]\nn_ubatch = [16, 32, 64]",
        "",
    );
    let out = run_with(&sweep, Some("segfault"), &["--retries", "0"]);
    assert_eq!(out.status.code(), Some(9), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Stopped: the first 3 trials, of different configurations, all ended the same way: crashed"),
        "{}",
        stdout(&out)
    );
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    assert_eq!(
        rows.len(),
        3,
        "stopped after the reference and two trials, not all 7"
    );
    assert!(
        rows.iter().all(|r| r.systematic == Some(true)),
        "nothing recorded is lost"
    );
    let html = std::fs::read_to_string(folder.join("report.html")).unwrap();
    assert!(
        !html.contains("No warnings"),
        "a sweep of crashes does not say all is well"
    );
    assert!(
        html.contains("ended the same way"),
        "it leads with the common cause"
    );

    // The cause fixed (no fault): the same command goes on and measures them.
    let out = run_with(&sweep, None, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = read_rows(&folder);
    assert_eq!(rows.len(), 7);
    assert!(rows.iter().all(|r| r.is_ok() && r.systematic != Some(true)));
}

#[test]
fn the_environment_cannot_switch_a_test_fault_on() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = two_trials(dir.path(), "[confirm]\ntop = 0");
    let out = bin()
        .args(["run", sweep.to_str().unwrap()])
        .env("LLAMA_SWEEP_TEST_FAULT", "instant")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for r in read_rows(&dir.path().join("reports/it")) {
        assert!(!r.build.contains("test fault"), "{}", r.build);
        assert!(
            r.model_description.as_deref().unwrap().starts_with("llama"),
            "measured for real: {:?}",
            r.model_description
        );
    }
}
