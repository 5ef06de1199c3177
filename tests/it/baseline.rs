//! The baseline: the user's current configuration and llama-server's
//! defaults are measured before the search (once, even across runs), again in the
//! confirmation round, and the recommendation is stated against both.

use crate::support::*;
use llama_sweep::confirm::{CONFIRM_CSV, ConfirmRun, read_recommendation};
use llama_sweep::plan::references::Role;
use llama_sweep::runner::TrialStatus;
use llama_sweep::store::plan_file;

/// A baseline outside the space (n_ctx 256, n_batch 64 there).
const BASELINE: &str =
    "[baseline]\nmodel = \"smol\"\nn_gpu_layers = 0\nn_ctx = 128\nn_batch = 32\nn_threads = 1";

fn confirm_runs(folder: &std::path::Path) -> Vec<ConfirmRun> {
    csv::Reader::from_path(folder.join(CONFIRM_CSV))
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn the_baseline_and_llama_server_defaults_are_measured_once_confirmed_and_compared() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{BASELINE}\n[confirm]\nmode = \"rounds\"\ntop = 2\nrounds = 2\nmax_rounds = 2\nrepetitions = 2"
    );
    let models = model_table("smol", &demo_model(), "");
    let sweep = sweep_file(dir.path(), &models, "n_threads = [1, 2]", &extra);
    let sweep = sweep.to_str().unwrap();
    let folder = dir.path().join("reports/it");

    let plan = run(&["plan", sweep]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let listed = stdout(&plan);
    assert!(listed.contains("Reference trials"), "{listed}");
    assert!(
        listed.contains("n_ctx=128 n_batch=32 n_threads=1"),
        "{listed}"
    );

    // Stopped by a budget after one trial of the plan: the references do
    // not count against it, and were measured first.
    let out = run(&["run", sweep, "--max-trials", "1"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let first = read_rows(&folder);
    assert_eq!(first.len(), 3, "{first:?}");
    let planned = plan_file::read(&folder).unwrap().unwrap();
    assert_eq!(planned.trial_ids.len(), 2);
    let roles: Vec<(Role, &str)> = planned
        .references
        .iter()
        .map(|r| (r.role, r.trial_id.as_str()))
        .collect();
    assert_eq!(roles.len(), 2);
    let (baseline_id, defaults_id) = (roles[0].1, roles[1].1);
    assert_eq!((roles[0].0, roles[1].0), (Role::Baseline, Role::Defaults));
    for (_, id) in &roles {
        assert!(
            !planned.trial_ids.iter().any(|t| t == id),
            "outside the space"
        );
        assert!(listed.contains(id), "plan listed {id}: {listed}");
    }
    assert_eq!(
        [first[0].trial_id.as_str(), first[1].trial_id.as_str()],
        [baseline_id, defaults_id],
        "references are measured before the search"
    );
    let baseline = &first[0];
    assert_eq!(baseline.status, TrialStatus::Ok, "{:?}", baseline.error);
    assert_eq!(
        (
            baseline.params.int(llama_sweep::knobs::N_CTX),
            baseline.params.int(llama_sweep::knobs::N_BATCH),
            baseline.params.int(llama_sweep::knobs::N_THREADS)
        ),
        (128, 32, 1)
    );
    let defaults = &first[1];
    assert_eq!(defaults.status, TrialStatus::Ok, "{:?}", defaults.error);
    for p in ["n_batch", "flash_attn", "n_gpu_layers"] {
        assert!(
            defaults.defaulted.contains(p),
            "{p}: {}",
            defaults.defaulted
        );
    }
    // llama-server's own choices, not the C struct's 4 threads and 512
    // tokens: the physical cores and the model's trained context.
    let machine = llama_sweep::machine::Machine::detect();
    let cores = machine.physical_cores.unwrap_or(machine.logical_cores) as i64;
    assert_eq!(defaults.params.int(llama_sweep::knobs::N_THREADS), cores);
    let trained = llama_sweep::models::gguf::GgufHeader::read(&demo_model())
        .unwrap()
        .n_ctx_train()
        .unwrap();
    assert_eq!(
        defaults.params.int(llama_sweep::knobs::N_CTX),
        i64::from(trained)
    );
    for p in ["n_ctx", "n_threads"] {
        assert!(
            !defaults.defaulted.contains(p),
            "{p}: {}",
            defaults.defaulted
        );
    }

    // Run again without the budget: the plan's other trial only.
    let out = run(&["run", sweep]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("[1/1] "), "one trial left to measure: {err}");
    assert!(!err.contains("[1/2] ") && !err.contains("[2/2] "), "{err}");
    let rows = read_rows(&folder);
    assert_eq!(rows.len(), 4);
    assert_eq!(
        &rows[..3],
        &first[..],
        "recorded rows are kept as they were"
    );

    // The references ran in every confirmation round, and the
    // recommendation is stated against both.
    let runs = confirm_runs(&folder);
    let recommendation = read_recommendation(&folder).expect("recommendation.json");
    let mut subjects: Vec<&String> = recommendation
        .candidates
        .iter()
        .chain(&recommendation.references)
        .collect();
    subjects.sort();
    subjects.dedup();
    let last_round = &runs[runs.len() - 2 * subjects.len()..];
    for id in [baseline_id, defaults_id] {
        let rounds: Vec<usize> = last_round
            .iter()
            .filter(|r| r.trial_id == id)
            .map(|r| r.round)
            .collect();
        assert_eq!(rounds, [1, 2], "{id} in each round: {runs:?}");
    }
    let versus: Vec<(Role, &str)> = recommendation
        .versus
        .iter()
        .map(|v| (v.role, v.trial_id.as_str()))
        .collect();
    assert_eq!(
        versus,
        [(Role::Baseline, baseline_id), (Role::Defaults, defaults_id)]
    );
    for v in &recommendation.versus {
        assert_eq!(v.runs, 2, "{v:?}");
        assert!(v.value > 1.0 && v.ratio > 0.0, "{v:?}");
        if v.trial_id == recommendation.trial_id {
            assert_eq!(v.ratio, 1.0);
        } else {
            assert!(v.ratio_low.unwrap() <= v.ratio && v.ratio <= v.ratio_high.unwrap());
        }
    }
    assert!(
        recommendation.verdict.contains("your baseline")
            && recommendation.verdict.contains("llama-server's defaults"),
        "{}",
        recommendation.verdict
    );

    // Once more: nothing is measured again, the decision is reused.
    let before = runs.len();
    let out = run(&["run", sweep]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("confirmed earlier"),
        "{}",
        stderr(&out)
    );
    assert_eq!(read_rows(&folder), rows);
    assert_eq!(confirm_runs(&folder).len(), before);
}

#[test]
fn a_baseline_with_two_values_for_a_key_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.gguf"), b"GGUF placeholder").unwrap();
    let models = model_table("m", &dir.path().join("model.gguf"), "");
    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = 1",
        "[baseline]\nn_threads = 2\nn_batch = [32, 64]",
    );
    let line = std::fs::read_to_string(&sweep)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("n_batch = [32"))
        .unwrap()
        + 1;
    for command in ["run", "plan"] {
        let out = run(&[command, sweep.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains(&format!("sweep.toml:{line}:")) && err.contains("baseline.n_batch"),
            "{command}: {err}"
        );
        assert!(err.contains("one value, not 2"), "{err}");
        assert!(!dir.path().join("reports").exists(), "nothing written");
    }
}
