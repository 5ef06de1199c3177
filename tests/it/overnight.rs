//! What a night-long sweep meets from outside its trials: being killed at any
//! moment, Ctrl-C, a second sweep on the same folder, a changed sweep file,
//! budgets, a full disk, an unwritable folder — and `status` throughout.

use crate::support::*;
use llama_sweep::runner::TrialStatus;
use std::collections::{BTreeMap, HashSet};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

/// A sweep of the demo model with `space` whose children answer at once with
/// made-up figures (no model is loaded): for testing the parent alone.
fn instant_sweep(dir: &Path, space: &str) -> std::path::PathBuf {
    sweep_file(dir, &model_table("smol", &demo_model(), ""), space, "")
}

fn instant(args: &[&str]) -> std::process::Output {
    bin()
        .args(args)
        .args(["--test-fault", "instant"])
        .output()
        .unwrap()
}

#[test]
fn killed_ten_times_at_random_and_resumed_it_ends_with_the_rows_of_an_uninterrupted_run() {
    let space = "n_threads = [1, 2]\nflash_attn = [\"on\", \"off\"]";
    let models = model_table("smol", &demo_model(), "quantize = [\"Q8_0\"]");

    let reference = tempfile::tempdir().unwrap();
    let sweep = sweep_file(reference.path(), &models, space, "");
    let out = run(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let expected: BTreeMap<String, TrialStatus> = read_rows(&reference.path().join("reports/it"))
        .into_iter()
        .map(|r| (r.trial_id, r.status))
        .collect();
    assert_eq!(expected.len(), 9, "8 trials and llama.cpp's defaults");

    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(dir.path(), &models, space, "");
    // Deterministic "random" kill times between 0.05 and 2 s.
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut kills = 0;
    for _ in 0..10 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = 0.05 + (state % 1950) as f64 / 1000.0;
        let mut child = bin()
            .args(["run", sweep.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_secs_f64(delay));
        if child.try_wait().unwrap().is_none() {
            signal(&child, libc::SIGKILL);
            kills += 1;
        }
        child.wait().unwrap();
        // Whatever the moment, what is on disk reads.
        let folder = dir.path().join("reports/it");
        if folder.join("results.csv").exists() {
            llama_sweep::store::read_rows(&folder).expect("results.csv parses after a kill");
        }
    }
    assert!(kills >= 5, "most runs were killed mid-way ({kills})");
    let out = run(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let ids: Vec<&str> = rows.iter().map(|r| r.trial_id.as_str()).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "no trial recorded twice: {ids:?}"
    );
    let got: BTreeMap<String, TrialStatus> = rows
        .iter()
        .map(|r| (r.trial_id.clone(), r.status))
        .collect();
    assert_eq!(got, expected, "the same trials, with the same endings");
    let parquet = llama_sweep::store::parquet_file::read(&folder.join("results.parquet")).unwrap();
    assert_eq!(parquet.height(), 9);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("models"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".partial-"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "no partial quantization left: {leftovers:?}"
    );
}

#[test]
fn ctrl_c_stops_the_running_trial_keeps_what_was_recorded_and_says_how_to_resume() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = [1, 2]",
        "[trial]\ntimeout_s = 120",
    );
    let folder = dir.path().join("reports/it");
    let mut child = bin()
        .args(["run", sweep.to_str().unwrap()])
        .args(["--test-fault", "hang"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_for(30.0, || a_trial_started(&folder)),
        "a trial started"
    );
    let stopped = std::time::Instant::now();
    signal(&child, libc::SIGINT);
    let code = wait_exit(&mut child, 20.0);
    assert_eq!(code, Some(5), "interrupted");
    assert!(
        stopped.elapsed().as_secs() < 10,
        "the hanging trial was not waited for"
    );
    let mut out = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    assert!(
        out.contains("Interrupted: 0 of 2 trials recorded, 2 left"),
        "{out}"
    );
    assert!(
        out.contains(&format!("Resume with: llama-sweep run {}", sweep.display())),
        "{out}"
    );
    assert!(
        read_rows(&folder).is_empty(),
        "the interrupted trial is not a row"
    );
    assert!(!llama_sweep::store::lock::is_held(&folder));
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = 1",
        "[trial]\ntimeout_s = 120",
    );
    let folder = dir.path().join("reports/it");
    let mut child = bin()
        .args(["run", sweep.to_str().unwrap()])
        .args(["--test-fault", "hang"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(30.0, || a_trial_started(&folder)));
    // Two of the same signal sent back to back can merge into one pending
    // signal; SIGINT then SIGTERM are always two stop requests.
    signal(&child, libc::SIGINT);
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, 10.0), Some(130));
    assert!(read_rows(&folder).is_empty());
}

#[test]
fn one_sweep_per_folder_and_a_killed_sweep_leaves_no_stale_lock() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = [1, 2]",
        "[trial]\ntimeout_s = 120",
    );
    let folder = dir.path().join("reports/it");
    let mut first = bin()
        .args(["run", sweep.to_str().unwrap()])
        .args(["--test-fault", "hang"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(30.0, || a_trial_started(&folder)));

    let second = instant(&["run", sweep.to_str().unwrap()]);
    assert_eq!(second.status.code(), Some(3), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("another sweep is writing"),
        "{}",
        stderr(&second)
    );
    assert!(
        stderr(&second).contains(&format!("pid {}", first.id())),
        "{}",
        stderr(&second)
    );

    let status = run(&["status", folder.to_str().unwrap()]);
    let text = stdout(&status);
    assert!(
        text.contains(&format!("running (pid {}", first.id())),
        "{text}"
    );
    assert!(text.contains("Trials: 2 planned, 0 recorded"), "{text}");

    signal(&first, libc::SIGKILL);
    first.wait().unwrap();
    let third = instant(&["run", sweep.to_str().unwrap()]);
    assert_eq!(
        third.status.code(),
        Some(0),
        "the lock died with its holder: {}",
        stderr(&third)
    );
    let text = stdout(&run(&["status", folder.to_str().unwrap()]));
    assert!(
        text.contains("not running") && text.contains("2 recorded (2 ok), 0 left"),
        "{text}"
    );
}

#[test]
fn a_changed_workload_is_refused_unless_told_and_fresh_moves_old_results_aside() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = instant_sweep(dir.path(), "n_threads = [1, 2]");
    let sweep_str = sweep.to_str().unwrap();
    assert_eq!(instant(&["run", sweep_str]).status.code(), Some(0));
    let changed = std::fs::read_to_string(&sweep)
        .unwrap()
        .replace("prompt_tokens = 32", "prompt_tokens = 48");
    std::fs::write(&sweep, changed).unwrap();

    let refused = instant(&["run", sweep_str]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("the workload (was"),
        "{}",
        stderr(&refused)
    );
    assert!(stderr(&refused).contains("--fresh"), "{}", stderr(&refused));
    let folder = dir.path().join("reports/it");
    // 2 trials and llama.cpp's defaults.
    assert_eq!(read_rows(&folder).len(), 3, "nothing recorded was touched");

    let allowed = instant(&["run", sweep_str, "--allow-changed"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", stderr(&allowed));
    assert_eq!(read_rows(&folder).len(), 6, "old and new rows side by side");
    assert!(
        stderr(&allowed).contains("3 rows in"),
        "old rows are not ranked: {}",
        stderr(&allowed)
    );

    let fresh = instant(&["run", sweep_str, "--fresh"]);
    assert_eq!(fresh.status.code(), Some(0), "{}", stderr(&fresh));
    assert_eq!(read_rows(&folder).len(), 3);
    let aside: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("it."))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the old folder was moved aside, not deleted"
    );
    assert_eq!(read_rows(&aside[0].path()).len(), 6);
}

#[test]
fn a_budget_stops_with_trials_left_and_the_next_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = instant_sweep(dir.path(), "n_threads = [1, 2, 3, 4]");
    let out = instant(&["run", sweep.to_str().unwrap(), "--max-trials", "2"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Budget reached (max_trials = 2 reached): 2 trials not run"),
        "{}",
        stdout(&out)
    );
    let folder = dir.path().join("reports/it");
    // llama.cpp's defaults are measured outside the budget.
    assert_eq!(read_rows(&folder).len(), 3);
    assert!(
        folder.join("config.yaml").exists(),
        "the best so far is still exported"
    );
    let out = instant(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(read_rows(&folder).len(), 5);
}

#[test]
fn a_full_disk_ends_the_sweep_with_status_4_and_loses_no_recorded_row() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = instant_sweep(dir.path(), "n_threads = [1, 2, 3]");
    // A 12 KiB file size limit: the CSV (a header and a row) fits, the
    // Parquet file does not.
    let mut command = bin();
    command
        .args(["run", sweep.to_str().unwrap()])
        .args(["--test-fault", "instant"]);
    // SAFETY: setrlimit between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 12 * 1024,
                rlim_max: 12 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("results.parquet"), "{}", stderr(&out));
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    assert_eq!(
        rows.len(),
        1,
        "the row recorded before the failure is intact"
    );
    // With room again, the sweep resumes and completes.
    let out = instant(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // 3 trials and llama.cpp's defaults.
    assert_eq!(read_rows(&folder).len(), 4);
    let parquet = llama_sweep::store::parquet_file::read(&folder.join("results.parquet")).unwrap();
    assert_eq!(parquet.height(), 4);
}

#[test]
fn an_unwritable_output_folder_is_refused_with_status_3() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = instant_sweep(dir.path(), "n_threads = 1");
    std::fs::write(
        dir.path().join("reports"),
        b"a file where the folder should be",
    )
    .unwrap();
    let out = instant(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot create the output folder"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn progress_is_one_plain_line_per_trial_off_a_terminal_and_in_sweep_log() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = instant_sweep(dir.path(), "n_threads = [1, 2, 3]");
    let out = instant(&["run", sweep.to_str().unwrap()]);
    let err = stderr(&out);
    // llama.cpp's defaults and the 3 trials, counted together.
    for k in 1..=4 {
        assert!(err.contains(&format!("[{k}/4] ")), "{err}");
    }
    let log = std::fs::read_to_string(dir.path().join("reports/it/sweep.log")).unwrap();
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("] ") && l.contains(" → ok"))
            .count(),
        4,
        "3 trials and llama.cpp's defaults: {log}"
    );
}

#[test]
fn trials_recorded_only_on_another_machine_are_measured_on_this_one() {
    let dir = tempfile::tempdir().unwrap();
    // A confirmation round, so that there is a decision to be not this
    // machine's.
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = [1, 2]",
        "[confirm]\ntop = 2\nrounds = 1\nmax_rounds = 1",
    );
    let out = instant(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let folder = dir.path().join("reports/it");
    // Those rows were measured on other hardware (a worker on another node
    // wrote them to the shared folder).
    let csv = folder.join("results.csv");
    let mut rows = llama_sweep::store::csv_file::read(&csv).unwrap();
    assert_eq!(rows.len(), 3, "2 trials and llama.cpp's defaults");
    for r in &mut rows {
        r.machine_id = Some("0123456789ab".into());
        r.machine = Some("another machine".into());
    }
    llama_sweep::store::csv_file::write_all(&csv, &rows).unwrap();
    // ... and its confirmation round decided there.
    let decision = folder.join("recommendation.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&decision).unwrap()).unwrap();
    json["machine_id"] = "0123456789ab".into();
    std::fs::write(&decision, json.to_string()).unwrap();

    let out = instant(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("3 trial(s) have rows only from other machines (0123456789ab)"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("confirmed earlier"),
        "the other machine's confirmation is not this one's: {}",
        stderr(&out)
    );
    let rows = read_rows(&folder);
    let here: Vec<_> = rows
        .iter()
        .filter(|r| r.machine_id.as_deref() != Some("0123456789ab"))
        .collect();
    assert_eq!(here.len(), 3, "every trial measured here too: {rows:#?}");
    assert_eq!(rows.len(), 6, "the other machine's rows are kept beside");
    assert!(folder.join("config.yaml").exists());
}

#[test]
fn rows_made_under_a_test_fault_are_measured_again_by_a_real_run_and_never_exported() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = 1",
        "[confirm]\ntop = 0\n\n[drift]\nevery = 0",
    );
    let out = instant(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let folder = dir.path().join("reports/it");
    assert!(read_rows(&folder).iter().all(|r| r.is_test_fault()));
    // `export` (no test fault) has no measurement to export.
    let export = run(&["export", folder.to_str().unwrap()]);
    assert_ne!(export.status.code(), Some(0), "{}", stdout(&export));

    let out = run(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 row(s) were made under --test-fault"),
        "{}",
        stderr(&out)
    );
    let rows = read_rows(&folder);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(
        rows.iter().all(|r| !r.is_test_fault() && r.is_ok()),
        "measured for real: {rows:#?}"
    );
    let config = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    assert!(!config.contains("test fault"), "{config}");
}
