//! Workers on one machine: `run --workers N --cpus ...` starts N pinned
//! `llama-sweep worker` processes over the demo model, then finishes; more
//! than one CPU worker without disjoint cores is refused.

use crate::support::*;
use std::collections::BTreeSet;

#[test]
fn pinned_cpu_workers_share_a_sweep_and_unpinned_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("smol", &demo_model(), "");
    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = 1\nn_ubatch = [16, 32, 64]",
        "[confirm]\ntop = 0",
    );
    let sweep = sweep.to_str().unwrap();
    let refused = run(&["run", sweep, "--workers", "2"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("--cpus"), "{}", stderr(&refused));

    let out = run(&["run", sweep, "--workers", "2", "--cpus", "0/1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let workers: BTreeSet<String> = rows.iter().filter_map(|r| r.worker.clone()).collect();
    assert_eq!(workers.len(), 2, "both workers measured: {workers:?}");
    let ids: BTreeSet<&str> = rows.iter().map(|r| r.trial_id.as_str()).collect();
    assert_eq!(ids.len(), rows.len(), "every trial once");
    assert_eq!(
        rows.len(),
        4,
        "three planned trials and llama-server's defaults"
    );
    assert!(folder.join("config.yaml").is_file());
    // Workers' trials saw one CPU each: the finishing run, pinned like
    // them, ranks them as its own machine's.
    assert!(
        stdout(&out).contains("Recommended configuration"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_worker_that_shares_its_cores_says_so_in_each_row() {
    // `run --workers per-gpu` passes --shares-cores when there are fewer
    // CPUs than GPUs; the rows say so, and still count as this machine's.
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("smol", &demo_model(), "");
    let sweep = sweep_file(dir.path(), &models, "n_threads = [1, 2]", "");
    let sweep = sweep.to_str().unwrap();
    let out = run(&[
        "worker",
        sweep,
        "--name",
        "gpu0",
        "--shares-cores",
        "--test-fault",
        "instant",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = run(&["run", sweep, "--test-fault", "instant"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows = read_rows(&dir.path().join("reports/it"));
    let (shared, own): (Vec<_>, Vec<_>) = rows
        .iter()
        .partition(|r| r.worker.as_deref() == Some("gpu0"));
    assert_eq!(shared.len(), 3, "two trials and the defaults: {rows:#?}");
    assert!(
        own.is_empty(),
        "the worker's rows are this machine's: {rows:#?}"
    );
    for r in shared {
        let machine = r.machine.as_deref().unwrap_or_default();
        assert!(
            machine.ends_with("CPU cores shared with the other GPU workers"),
            "{machine}"
        );
    }
}
