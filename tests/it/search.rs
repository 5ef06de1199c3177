//! Search strategies through the real binary: a Bayesian sweep of the real
//! demo model under a trial budget, resumed, with its confirmation round;
//! `replay` against the recorded grids in tests/fixtures; a mistyped
//! strategy.

use crate::support::*;
use llama_sweep::confirm::{CONFIRM_CSV, read_recommendation};
use std::collections::HashSet;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn a_bayesian_sweep_of_the_demo_model_stops_at_its_budget_confirms_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let space = "n_threads = [1, 2]\nflash_attn = [\"on\", \"off\"]\ntype_k = [\"f16\", \"q8_0\"]";
    let extra =
        "[confirm]\nmode = \"rounds\"\ntop = 2\nrounds = 2\nmax_rounds = 2\nrepetitions = 2";
    let models = model_table("smol", &demo_model(), "");
    let sweep = sweep_file(dir.path(), &models, space, extra);
    let text = std::fs::read_to_string(&sweep)
        .unwrap()
        .replace("seed = 1", "seed = 1\nstrategy = \"bayes\"");
    std::fs::write(&sweep, text).unwrap();
    let folder = dir.path().join("reports/it");

    let out = run(&["run", sweep.to_str().unwrap(), "--max-trials", "4"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("bayes search: 8 trials planned"), "{err}");
    // 4 trials of the plan, and llama.cpp's defaults outside the budget.
    let first: Vec<_> = read_rows(&folder);
    assert_eq!(first.len(), 5);
    assert!(
        first
            .iter()
            .all(|r| r.status == llama_sweep::runner::TrialStatus::Ok),
        "{first:?}"
    );
    assert_eq!(
        first
            .iter()
            .map(|r| &r.trial_id)
            .collect::<HashSet<_>>()
            .len(),
        5
    );

    // The confirmation round measured the best two again, interleaved,
    // with llama.cpp's defaults (unless it is one of them).
    let runs = std::fs::read_to_string(folder.join(CONFIRM_CSV)).unwrap();
    let recommendation = read_recommendation(&folder).expect("recommendation.json");
    assert_eq!(recommendation.candidates.len(), 2);
    let subjects: HashSet<&String> = recommendation
        .candidates
        .iter()
        .chain(&recommendation.references)
        .collect();
    assert_eq!(runs.lines().count(), 1 + 2 * subjects.len(), "{runs}");
    assert!(err.contains("confirmed: "), "{err}");
    let yaml = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    assert!(yaml.contains("# confirmed: "), "{yaml}");
    assert!(yaml.contains(&recommendation.trial_id), "{yaml}");

    // Resumed with more budget: the first rows stay, the search goes on
    // from them and never runs a trial twice.
    let out = run(&["run", sweep.to_str().unwrap(), "--max-trials", "6"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let second = read_rows(&folder);
    assert_eq!(second.len(), 7);
    assert_eq!(&second[..5], &first[..]);
    assert_eq!(
        second
            .iter()
            .map(|r| &r.trial_id)
            .collect::<HashSet<_>>()
            .len(),
        7
    );
}

#[test]
fn replay_compares_strategies_on_a_recorded_grid() {
    let out = run(&[
        "replay",
        fixture("synthetic-gpu-offload").to_str().unwrap(),
        "--seeds",
        "2",
        "--budget",
        "40",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("grid: 288 configurations (77 failed"),
        "{text}"
    );
    for strategy in ["grid", "random", "bayes"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(strategy)),
            "{strategy}: {text}"
        );
    }

    let out = run(&[
        "replay",
        fixture("synthetic-cpu-threads").to_str().unwrap(),
        "--strategy",
        "bayes",
        "--seeds",
        "2",
        "--budget",
        "30",
        "--csv",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let csv = stdout(&out);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("strategy,within_pct,median"), "{csv}");
    assert_eq!(lines.len(), 1 + 3, "one line per threshold: {csv}");
    assert!(lines[1].starts_with("bayes,1,"), "{csv}");
}

#[test]
fn replay_refuses_what_it_cannot_replay() {
    let out = run(&[
        "replay",
        fixture("real-demo-grid").to_str().unwrap(),
        "--strategy",
        "annealing",
    ]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("unknown strategy \"annealing\""),
        "{}",
        stderr(&out)
    );
    let out = run(&["replay", "/nonexistent/results.csv"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("/nonexistent/results.csv"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_mistyped_strategy_is_refused_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = 1",
        "",
    );
    let text = std::fs::read_to_string(&sweep)
        .unwrap()
        .replace("seed = 1", "seed = 1\nstrategy = \"bayesian\"");
    std::fs::write(&sweep, text).unwrap();
    let out = run(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("did you mean \"bayes\""),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("reports").exists());
}
