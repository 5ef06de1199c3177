//! A real one-node SLURM (Debian's slurm-wlm and munge, started and stopped
//! by the test with scripts/slurm-local.sh): a 2-task job array of workers
//! over a small grid of the demo model, one task cancelled mid-trial, then
//! the finishing job. Every planned trial is recorded exactly once.

use crate::support::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The daemons of a one-node cluster, stopped when dropped.
struct Cluster {
    state: PathBuf,
    conf: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local.sh")
}

impl Cluster {
    fn start(state: &Path) -> Cluster {
        let out = Command::new(script())
            .args(["start", state.to_str().unwrap()])
            .output()
            .expect("scripts/slurm-local.sh runs");
        assert!(
            out.status.success(),
            "a one-node SLURM must start here (scripts/setup.sh installs slurm-wlm and munge): {}",
            stderr(&out)
        );
        Cluster {
            state: state.to_path_buf(),
            conf: state.join("slurm.conf"),
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// The jobs squeue still lists.
    fn queued(&self) -> String {
        let out = self
            .command("squeue")
            .args(["--noheader", "--array", "--format=%i %T"])
            .output()
            .unwrap();
        stdout(&out)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", self.state.to_str().unwrap()])
            .status();
    }
}

/// Workers whose claim is in `folder/claims` now.
fn claimants(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder.join("claims"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_job_array_with_a_cancelled_task_records_every_trial_once() {
    let dir = tempfile::Builder::new()
        .prefix("ls")
        .tempdir_in("/tmp")
        .unwrap();
    let cluster = Cluster::start(&dir.path().join("s"));
    let models = model_table("smol", &demo_model(), "");
    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = [1, 2]\nn_ubatch = [32, 64]",
        "[confirm]\ntop = 2\npairs = 3\nmax_pairs = 3",
    );
    let folder = dir.path().join("reports/it");
    let out = cluster
        .command(env!("CARGO_BIN_EXE_llama-sweep"))
        .args(["slurm", sweep.to_str().unwrap(), "--tasks", "2"])
        .args(["--throttle", "1", "--exclusive", "--submit"])
        .output()
        .unwrap();
    let printed = stdout(&out);
    assert!(out.status.success(), "{printed}{}", stderr(&out));
    let job = printed
        .lines()
        .find(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no job id printed: {printed}"))
        .to_string();
    let first = format!("slurm-{job}_0");

    // Task 0 is cancelled while it measures a trial.
    assert!(
        wait_for(180.0, || claimants(&folder)
            .iter()
            .any(|c| c.contains(&first))),
        "task 0 never claimed a trial; squeue: {}",
        cluster.queued()
    );
    let status = cluster
        .command("scancel")
        .arg(format!("{job}_0"))
        .status()
        .unwrap();
    assert!(status.success());

    assert!(
        wait_for(600.0, || cluster.queued().trim().is_empty()),
        "the jobs did not end; squeue: {}",
        cluster.queued()
    );
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("plan.json")).unwrap()).unwrap();
    let mut expected: BTreeSet<String> = plan["trial_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for r in plan["references"].as_array().unwrap() {
        expected.insert(r["trial_id"].as_str().unwrap().to_string());
    }
    let rows = read_rows(&folder);
    let recorded: BTreeSet<String> = rows.iter().map(|r| r.trial_id.clone()).collect();
    let logs: Vec<String> = std::fs::read_dir(folder.join("slurm"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "out"))
        .map(|e| {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            format!("==== {}\n{text}", e.path().display())
        })
        .collect();
    eprintln!("{}", logs.join("\n"));
    assert_eq!(recorded, expected, "{}", logs.join("\n"));
    let cancelled = logs
        .iter()
        .find(|l| l.contains(&format!("worker-{job}_0")))
        .unwrap();
    assert!(
        cancelled.contains("stop requested") || cancelled.contains("CANCELLED"),
        "task 0 was stopped mid-trial: {cancelled}"
    );
    // No trial measured twice: the files together hold one row per trial.
    let mut in_files = 0;
    for file in std::fs::read_dir(folder.join("workers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .chain([folder.join("results.csv")])
    {
        in_files += llama_sweep::store::csv_file::read(&file).unwrap().len();
    }
    assert_eq!(in_files, expected.len(), "{}", logs.join("\n"));
    let second = format!("slurm-{job}_1");
    assert!(
        rows.iter()
            .any(|r| r.worker.as_deref() == Some(second.as_str())),
        "task 1 measured trials"
    );
    assert!(
        rows.iter()
            .all(|r| r.machine_id.is_some() && r.host.is_some())
    );
    // The finishing job confirmed the finalists and wrote the outputs.
    for file in [
        "config.yaml",
        "report.html",
        "confirm.csv",
        "results.parquet",
    ] {
        assert!(folder.join(file).is_file(), "{file}\n{}", logs.join("\n"));
    }
    let status = stdout(&run(&["status", folder.to_str().unwrap()]));
    assert!(status.contains(&second), "{status}");
    drop(cluster);
}
