//! Early drops through the real binary: on the real demo model, trials that
//! break a latency limit in every run stop before their other tests, are
//! recorded as dropped with the runs they made and never recommended, while
//! the reference trial is measured to the end; `replay --drops` and
//! `replay --repetitions` on the recorded demo grid.

use crate::support::*;
use llama_sweep::runner::TrialStatus;
use std::path::PathBuf;

#[test]
fn trials_that_break_a_latency_limit_in_every_run_are_dropped_but_references_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("smol", &demo_model(), "");
    // Time to first token is the objective, so its test runs first; no
    // request of the demo model is answered within 1 ms.
    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = [1, 2]",
        "[objective]\nmetric = \"ttft_ms\"\nttft_ms_max = 1\n[trial]\nearly_drop = 0.2",
    );
    let out = run(&["run", sweep.to_str().unwrap()]);
    let (so, se) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(7), "nothing feasible:\n{so}\n{se}");
    let folder = dir.path().join("reports/it");
    let planned = llama_sweep::store::plan_file::read(&folder)
        .unwrap()
        .unwrap()
        .trial_ids;
    let rows = read_rows(&folder);
    assert_eq!(rows.len(), 3, "2 trials and llama.cpp's defaults");
    for r in &rows {
        if planned.contains(&r.trial_id) {
            assert_eq!(r.status, TrialStatus::Dropped, "{r:?}");
            let why = r.error.as_deref().unwrap_or("");
            assert!(
                why.starts_with("its best run of ttft_ms after 2 of 2, ")
                    && why.ends_with("is more than 20% above the limit ttft_ms ≤ 1 ms"),
                "{why}"
            );
            // The request's two runs were made; generation and prompt
            // processing were not.
            assert_eq!(r.e2e_ms_samples.split(';').count(), 2, "{r:?}");
            assert_eq!(
                (r.tg_tps_samples.as_str(), r.pp_tps_samples.as_str()),
                ("", "")
            );
            assert!(!r.feasible);
            assert!(
                se.contains(&format!("{} smol", r.trial_id))
                    && se.contains("→ dropped: its best run"),
                "{se}"
            );
        } else {
            // The reference is measured to the end.
            assert_eq!(r.status, TrialStatus::Ok, "{r:?}");
            assert_eq!(r.tg_tps_samples.split(';').count(), 2, "{r:?}");
        }
    }
    assert!(
        so.contains("3 trials: 1 ok (0 within constraints), 2 dropped"),
        "{so}"
    );
    assert!(
        so.contains("2 trials dropped early, clearly beaten: about"),
        "{so}"
    );
    let report = std::fs::read_to_string(folder.join("report.html")).unwrap();
    assert!(
        report.contains("1 completed, 2 dropped early"),
        "the report counts them"
    );
    assert!(
        report.contains("class=\"dropped\""),
        "and shows them as such"
    );
}

#[test]
fn replay_shows_what_each_margin_saves_and_risks_on_the_recorded_demo_grid() {
    let grid = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-demo-grid");
    let out = run(&[
        "replay",
        grid.to_str().unwrap(),
        "--drops",
        "0.05",
        "--seeds",
        "20",
    ]);
    let so = stdout(&out);
    assert!(out.status.success(), "{so}\n{}", stderr(&out));
    assert!(so.starts_with("early drops on 128 measured trials"), "{so}");
    for margin in ["10%", "20%", "30%"] {
        assert!(
            so.lines().any(|l| l.trim_start().starts_with(margin)),
            "{so}"
        );
    }
    let bad = run(&["replay", grid.to_str().unwrap(), "--drops", "2"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}

#[test]
fn replay_compares_fixed_fewer_and_more_repetitions_on_the_recorded_demo_grid() {
    let grid = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-demo-grid");
    let grid = grid.to_str().unwrap();
    let out = run(&["replay", grid, "--repetitions", "0.05", "--seeds", "20"]);
    let so = stdout(&out);
    assert!(out.status.success(), "{so}\n{}", stderr(&out));
    assert!(so.starts_with("repetitions on the recorded grid"), "{so}");
    let policies: Vec<&str> = so
        .lines()
        .skip(2)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(policies, ["fixed", "fewer", "fewer+more"], "{so}");
    assert!(so.contains("fixed                1.00×"), "{so}");
    // One replay at a time.
    let both = run(&["replay", grid, "--repetitions", "0.05", "--drops", "0.05"]);
    assert_eq!(both.status.code(), Some(2), "{}", stderr(&both));
}
