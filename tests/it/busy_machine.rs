//! A machine that is not quiet (issue 34): on the real demo model, with a
//! process spinning on a core beside the sweep, every run it disturbs is
//! measured again after a wait, a trial the machine kept busy is recorded as
//! such and decides nothing (not ranked, not recommended), the terminal says
//! what was using the machine, the sweep stops when the machine stays busy
//! past the wait, and the trial runs again when the sweep resumes.

use crate::support::*;
use llama_sweep::runner::TrialStatus;

/// A process spinning on a core until dropped.
struct Spinner(std::process::Child);

impl Spinner {
    fn start() -> Spinner {
        Spinner(
            std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .expect("sh runs"),
        )
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn runs_beside_a_busy_process_decide_nothing_and_run_again_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = [1, 2]",
        "[trial]\nbusy_cores_max = 0.25\nbusy_wait_s = 2\n[drift]\nevery = 0",
    );
    let spinner = Spinner::start();
    let out = run(&["run", sweep.to_str().unwrap()]);
    drop(spinner);
    let (so, se) = (stdout(&out), stderr(&out));
    // The first trial's runs were all disturbed; the machine stayed busy
    // past the wait: the sweep stopped rather than measure beside it.
    assert_eq!(out.status.code(), Some(11), "stdout:\n{so}\nstderr:\n{se}");
    assert!(
        so.contains("Stopped: the machine stayed busy for 2 s (")
            && so.contains("Resume when the machine is quiet"),
        "{so}"
    );
    assert!(se.contains("other processes disturbed its runs"), "{se}");
    assert!(
        se.contains("the machine is busy: ") && se.contains("waiting"),
        "the terminal says what keeps it busy: {se}"
    );
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    assert_eq!(rows.len(), 1, "stopped after the first trial: {rows:?}");
    let r = &rows[0];
    assert_eq!(r.status, TrialStatus::Busy, "{r:?}");
    assert!(r.busy_runs.unwrap() >= 1, "{r:?}");
    assert!(r.other_cores_max.unwrap() > 0.25, "{r:?}");
    assert!(!r.feasible);
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("measured while the machine was busy"),
        "{r:?}"
    );
    assert!(!folder.join("config.yaml").exists(), "nothing recommended");
    let log = std::fs::read_to_string(folder.join(&r.log_file)).unwrap();
    assert!(
        log.contains("measured while the machine was busy"),
        "the trial's log says which runs: {log}"
    );

    // Resumed: the busy trial is measured again. This test cannot make the
    // machine quiet beside the other tests: the resumed sweep either runs
    // every trial or stops again, saying so, as the first one did.
    let again = run(&["run", sweep.to_str().unwrap()]);
    let (so, se) = (stdout(&again), stderr(&again));
    assert!(
        se.contains(&format!("{} smol", r.trial_id)),
        "{} measured again: {se}",
        r.trial_id
    );
    match again.status.code() {
        Some(0) => assert!(se.contains("[3/3]"), "the other trials too: {se}"),
        Some(11) => assert!(so.contains("Stopped: the machine stayed busy"), "{so}"),
        other => panic!("exit {other:?}:\nstdout:\n{so}\nstderr:\n{se}"),
    }
    let rows = read_rows(&folder);
    assert!(
        rows.iter()
            .any(|row| row.trial_id == r.trial_id && row.started_at != r.started_at),
        "a new row of {} was recorded: {rows:?}",
        r.trial_id
    );
}
