//! Trials in the app's own llama-cpp-python (`[sweep] runtime = "python"`):
//! the real llama-cpp-python CI builds (support::app_python) sweeps the demo
//! model, every figure from the app's request on the app's clock with
//! llama.cpp's counters beside; a knob `Llama()` has no argument for is
//! refused before anything runs, and so is an interpreter without
//! llama_cpp; an interpreter that crashes in a trial is that trial's row
//! and the sweep goes on.

use crate::support::*;
use llama_sweep::runner::TrialStatus;
use std::path::{Path, PathBuf};

/// A sweep of the demo model whose trials run in `python`.
fn python_sweep(dir: &Path, python: &Path, space: &str) -> PathBuf {
    let sweep = sweep_file(
        dir,
        &model_table("demo", &demo_model(), ""),
        space,
        &format!(
            "[drift]\nevery = 0\n\n[app]\npython = \"{}\"\n\n[trial]\ntimeout_s = 120",
            python.display()
        ),
    );
    let text = std::fs::read_to_string(&sweep)
        .unwrap()
        .replacen("[sweep]\n", "[sweep]\nruntime = \"python\"\n", 1)
        .replace("request_prompt_tokens = 32", "request_prompt_tokens = 64")
        .replace("request_max_tokens = 8", "request_max_tokens = 16");
    std::fs::write(&sweep, text).unwrap();
    sweep
}

fn executable(path: &Path, body: &str) -> PathBuf {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

#[test]
fn trials_run_in_the_apps_llama_cpp_python_and_a_crash_is_a_row() {
    let Some(python) = app_python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The app's interpreter, except that it dies of SIGSEGV when asked for
    // flash attention off: the crash of one trial.
    let crashing = executable(
        &dir.path().join("python"),
        &format!(
            "read -r job\ncase \"$job\" in *'\"flash_attn\":false'*) kill -SEGV $$ ;; esac\n\
             {{ printf '%s\\n' \"$job\"; exec cat; }} | exec {} \"$@\"",
            python.display()
        ),
    );
    let sweep = python_sweep(
        dir.path(),
        &crashing,
        "n_threads = [1, 2]\nflash_attn = [\"on\", \"off\"]",
    );
    // The best two confirmed side by side, each resident in its own
    // interpreter.
    let text = std::fs::read_to_string(&sweep).unwrap().replace(
        "[confirm]\ntop = 0",
        "[confirm]\ntop = 2\npairs = 10\nmax_pairs = 10",
    );
    std::fs::write(&sweep, text).unwrap();
    let out = run(&["run", sweep.to_str().unwrap()]);
    let (so, se) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout:\n{so}\nstderr:\n{se}");
    assert!(
        se.contains("trials run in the app's llama-cpp-python "),
        "what measures is said: {se}"
    );
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let swept: Vec<_> = rows.iter().filter(|r| r.seq < 4).collect();
    assert_eq!(swept.len(), 4, "{rows:#?}");
    for row in &rows {
        assert_eq!(row.runtime.as_deref(), Some("llama-cpp-python"), "{row:#?}");
        assert!(
            row.build.contains("trials in llama-cpp-python "),
            "{row:#?}"
        );
        // Llama() cannot be told to route around llama-sweep's kernels:
        // nothing is forced on a trial in it.
        assert!(row.forced.is_empty(), "{row:#?}");
    }
    let on = swept
        .iter()
        .find(|r| {
            r.params.flash_attn() == llama_sweep::knobs::FlashAttn::On
                && r.params.int(llama_sweep::knobs::N_THREADS) == 2
        })
        .unwrap();
    assert_eq!(on.status, TrialStatus::Ok, "{on:#?}");
    for figure in [
        on.request_tps_mean,
        on.ttft_ms_mean,
        on.e2e_ms_mean,
        on.tg_tps_mean,
        on.pp_tps_mean,
        on.itl_ms_p95,
    ] {
        assert!(figure.is_some_and(|v| v > 0.0), "{on:#?}");
    }
    // The request's speed on the app's clock: 15 tokens after the first
    // over the time from the first to the last, each repetition.
    let request = llama_sweep::store::row::split_samples(&on.request_tps_samples);
    assert_eq!(request.len(), 2, "{on:#?}");
    let log = std::fs::read_to_string(folder.join(&on.log_file)).unwrap();
    assert!(
        log.contains("llama-cpp-python| "),
        "the interpreter's log is the trial's: {log}"
    );
    for off in swept
        .iter()
        .filter(|r| r.params.flash_attn() == llama_sweep::knobs::FlashAttn::Off)
    {
        assert!(!off.is_ok(), "{off:#?}");
        assert!(
            off.error.as_deref().is_some_and(|e| e.contains("SIGSEGV")),
            "the crash is named: {off:#?}"
        );
    }
    // Both flash-attention-on trials, resident in their interpreters, one
    // request per block.
    assert!(
        se.contains("confirmation: measuring the best 2 side by side"),
        "{se}"
    );
    assert!(se.contains("10 pairs of blocks"), "{se}");
    let confirm = std::fs::read_to_string(folder.join("confirm.csv")).unwrap();
    assert!(confirm.lines().count() > 20, "{confirm}");
    // The recommendation was measured where the app runs: not asked again.
    assert!(
        so.contains("is not asked again: every trial of this sweep ran in it"),
        "{so}"
    );
    let config = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    assert!(config.contains("flash_attn: true"), "{config}");
}

#[test]
fn knobs_llama_cannot_take_and_an_interpreter_without_llama_cpp_are_refused_before_a_trial() {
    let dir = tempfile::tempdir().unwrap();
    let python = executable(&dir.path().join("python"), "exec python3 -I -S \"$@\"");
    for (space, says) in [
        (
            "repack = [true, false]",
            "repack cannot be measured in llama-cpp-python",
        ),
        (
            "n_parallel = [1, 2]",
            "n_parallel above 1 cannot be measured in llama-cpp-python",
        ),
    ] {
        let sweep = python_sweep(dir.path(), &python, space);
        let out = run(&["plan", sweep.to_str().unwrap()]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        assert!(text.contains(says), "{text}");
        assert!(text.contains("runtime = \""), "what to use instead: {text}");
    }
    // No [app] python at all.
    let sweep = python_sweep(dir.path(), &python, "n_threads = 1");
    let text = std::fs::read_to_string(&sweep).unwrap();
    let without = text.replace(&format!("python = \"{}\"", python.display()), "");
    std::fs::write(&sweep, without).unwrap();
    let out = run(&["plan", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("python = \"path/to/venv/bin/python\""),
        "{}",
        stderr(&out)
    );

    let sweep = python_sweep(dir.path(), &python, "n_threads = 1");
    let out = run(&["run", sweep.to_str().unwrap()]);
    let text = stderr(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("cannot import llama_cpp"), "{text}");
    let folder = dir.path().join("reports/it");
    assert!(
        read_rows(&folder).is_empty(),
        "no trial ran: {:?}",
        read_rows(&folder)
    );
}
