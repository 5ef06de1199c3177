//! A machine that is not quiet (issue 34): on the real demo model, with a
//! process spinning on a core beside the sweep, every run it disturbs is
//! measured again after a wait, a trial the machine kept busy is recorded as
//! such and decides nothing (not ranked, not recommended), the terminal says
//! what was using the machine, and the trial runs again when the sweep
//! resumes.

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
    // Nothing measured on a quiet machine: nothing to recommend.
    assert_eq!(out.status.code(), Some(7), "stdout:\n{so}\nstderr:\n{se}");
    assert!(
        so.contains("measured while other processes kept the machine busy: not ranked"),
        "{so}"
    );
    assert!(se.contains("other processes disturbed its runs"), "{se}");
    assert!(
        se.contains("the machine is busy: ") && se.contains("waiting"),
        "the terminal says what keeps it busy: {se}"
    );
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    assert_eq!(rows.len(), 3, "2 trials and llama.cpp's defaults");
    for r in &rows {
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
    }
    assert!(!folder.join("config.yaml").exists(), "nothing recommended");
    let log = std::fs::read_to_string(folder.join(&rows[0].log_file)).unwrap();
    assert!(
        log.contains("measured while the machine was busy"),
        "the trial's log says which runs: {log}"
    );

    // Resumed: the busy trials are measured again (this test cannot make
    // the machine quiet beside the other tests, so only that they ran again
    // is checked, not how they ended).
    let again = run(&["run", sweep.to_str().unwrap()]);
    let se = stderr(&again);
    for r in &rows {
        assert!(
            se.contains(&format!("{} smol", r.trial_id))
                || se.contains(&format!("{} ", r.trial_id)),
            "{} measured again: {se}",
            r.trial_id
        );
    }
    assert!(se.contains("[3/3]"), "{se}");
}
