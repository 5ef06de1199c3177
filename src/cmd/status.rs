//! `llama-sweep status`: how far a sweep has got — also while it runs in
//! another terminal. Reads only: results.csv, plan.json, manifest.json,
//! recommendation.json, the workers' states and claims, and the folder's
//! lock.

mod best;

use crate::cli::StatusArgs;
use crate::objective::Objective;
use crate::runner::TrialStatus;
use crate::store::row::TrialRow;
use crate::store::{self, lock, manifest, plan_file};
use std::collections::HashSet;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

pub fn run(args: &StatusArgs) -> anyhow::Result<()> {
    let rows = store::read_rows(&args.folder)?;
    let plan = plan_file::read(&args.folder)?;
    let manifest = manifest::read(&args.folder.join(store::MANIFEST)).ok();
    let objective = manifest
        .as_ref()
        .map(|m| m.sweep.objective.clone())
        .unwrap_or_default();
    let holder = std::fs::read_to_string(args.folder.join(lock::LOCK_FILE)).unwrap_or_default();
    let running = lock::is_held(&args.folder).then_some(holder.trim());
    print!(
        "{}",
        render(
            &args.folder,
            &rows,
            plan.as_ref().map(|p| p.trial_ids.as_slice()),
            plan.as_ref().and_then(|p| p.max_trials),
            &objective,
            running
        )
    );
    print!("{}", workers(&args.folder, &rows));
    Ok(())
}

/// How many measure now: the workers whose state says running and whoever
/// holds a live claim (a plain `run` too). A worker killed before it could
/// write its end still says running.
fn measuring_now(folder: &Path) -> usize {
    let mut names: HashSet<String> = crate::workers::read_states(folder)
        .into_iter()
        .filter(|s| s.state == "running")
        .map(|s| s.worker)
        .collect();
    names.extend(
        crate::workers::claims::Claims::live_in(folder)
            .into_iter()
            .map(|(_, holder)| holder.worker),
    );
    names.len()
}

/// Per worker: its machine, what it recorded, what it measures now; and
/// the SLURM jobs' state where squeue answers.
fn workers(folder: &Path, rows: &[TrialRow]) -> String {
    let mut out = String::new();
    let states = crate::workers::read_states(folder);
    let claims = crate::workers::claims::Claims::live_in(folder);
    let mut names: Vec<String> = rows.iter().filter_map(|r| r.worker.clone()).collect();
    names.extend(states.iter().map(|s| s.worker.clone()));
    names.extend(claims.iter().map(|(_, h)| h.worker.clone()));
    names.sort();
    names.dedup();
    names.retain(|n| !n.contains("-run-"));
    let machines: HashSet<&str> = rows
        .iter()
        .filter_map(|r| r.machine_id.as_deref())
        .collect();
    if machines.len() > 1 {
        let _ = writeln!(
            out,
            "Machines: {} fingerprints in these rows; they are ranked per machine, never against each other",
            machines.len()
        );
    }
    if !names.is_empty() {
        let _ = writeln!(out, "Workers:");
    }
    for name in names {
        let recorded = rows
            .iter()
            .filter(|r| r.worker.as_deref() == Some(&name))
            .count();
        let state = states.iter().find(|s| s.worker == name);
        let now: Vec<&str> = claims
            .iter()
            .filter(|(_, h)| h.worker == name)
            .map(|(id, _)| id.as_str())
            .collect();
        let doing = if now.is_empty() {
            state.map_or("idle".to_string(), |s| s.state.clone())
        } else {
            format!("measuring {}", now.join(", "))
        };
        let host = state.map(|s| format!(" on {}", s.host)).unwrap_or_default();
        let _ = writeln!(out, "  {name}{host}: {recorded} recorded, {doing}");
    }
    if let Some(jobs) = crate::workers::slurm::read_jobs(folder) {
        let _ = writeln!(
            out,
            "SLURM: array job {} ({} tasks), finishing job {}",
            jobs.array_job, jobs.tasks, jobs.finish_job
        );
        match crate::workers::slurm::queue_state(&jobs) {
            Some(lines) if lines.is_empty() => {
                let _ = writeln!(out, "  squeue: none of them is queued or running any more");
            }
            Some(lines) => {
                for line in lines {
                    let _ = writeln!(out, "  {line}");
                }
            }
            None => {
                let _ = writeln!(out, "  (squeue cannot be run here)");
            }
        }
    }
    out
}

/// What `status` prints of the folder; reads its recommendation.json and
/// who measures now (workers' states, live claims) itself.
pub fn render(
    folder: &Path,
    rows: &[TrialRow],
    plan: Option<&[String]>,
    max_trials: Option<usize>,
    objective: &Objective,
    running: Option<&str>,
) -> String {
    let mut out = String::new();
    let name = rows.first().map_or("?", |r| r.sweep.as_str());
    let state = match running {
        Some(holder) => format!("running ({holder})"),
        None => "not running".into(),
    };
    let _ = writeln!(out, "Sweep {name:?} ({}): {state}", folder.display());

    // Rows of the current plan (all rows when there is no plan file).
    let current: Vec<&TrialRow> = match plan {
        Some(ids) => {
            let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
            rows.iter()
                .filter(|r| ids.contains(r.trial_id.as_str()))
                .collect()
        }
        None => rows.iter().collect(),
    };
    let count = |s: TrialStatus| current.iter().filter(|r| r.status == s).count();
    let mut endings = vec![format!("{} ok", count(TrialStatus::Ok))];
    // Every other ending, failures and early drops.
    for &s in &TrialStatus::ALL[1..] {
        if count(s) > 0 {
            endings.push(format!("{} {s}", count(s)));
        }
    }
    let planned = plan.map_or(current.len(), <[String]>::len);
    let to_record = max_trials.map_or(planned, |m| m.min(planned));
    let left = to_record.saturating_sub(current.len());
    let budget = match max_trials {
        Some(m) if m < planned => format!(" of a {m}-trial budget"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "Trials: {} planned, {} recorded ({}), {left} left{budget}",
        planned,
        current.len(),
        endings.join(", ")
    );

    let measuring = measuring_now(folder);
    let owned: Vec<TrialRow> = current.iter().map(|r| (*r).clone()).collect();
    out.push_str(&best::lines(
        rows,
        &owned,
        objective,
        crate::confirm::read_recommendation(folder).as_ref(),
        running.is_some() || measuring > 0,
    ));

    let walls: Vec<f64> = current
        .iter()
        .map(|r| r.wall_s)
        .filter(|w| *w > 0.0)
        .collect();
    if !walls.is_empty() {
        let mean = walls.iter().sum::<f64>() / walls.len() as f64;
        let spent = Duration::from_secs(walls.iter().sum::<f64>() as u64);
        // The trials left are shared by whoever measures; no more of them
        // than there are trials count.
        let sharing = measuring.clamp(1, left.max(1));
        let eta = Duration::from_secs((mean * left as f64 / sharing as f64) as u64);
        let with = if measuring > 1 {
            format!(" with {measuring} workers measuring")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "Time: {} in trials, {mean:.1} s per trial; about {} left{with}",
            humantime::format_duration(spent),
            humantime::format_duration(eta)
        );
    }
    if let Some(last) = current
        .iter()
        .max_by(|a, b| a.finished_at.cmp(&b.finished_at))
    {
        let _ = writeln!(
            out,
            "Last trial: {} finished {} ({})",
            last.trial_id, last.finished_at, last.status
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::row;

    #[test]
    fn counts_done_failed_and_left_against_the_plan() {
        let mut a = row("a", &mock::measured(100.0, 400.0));
        a.wall_s = 10.0;
        let mut b = row("b", &mock::failed(TrialStatus::Oom, "failed to allocate"));
        b.wall_s = 2.0;
        let old = row("old", &mock::measured(900.0, 400.0));
        let plan = ["a".to_string(), "b".into(), "c".into(), "d".into()];
        let text = render(
            Path::new("reports/s"),
            &[a.clone(), b.clone(), old],
            Some(&plan),
            None,
            &Objective::default(),
            Some("pid 7"),
        );
        assert!(text.contains("running (pid 7)"), "{text}");
        assert!(
            text.contains("Trials: 4 planned, 2 recorded (1 ok, 1 oom), 2 left"),
            "{text}"
        );
        assert!(
            text.contains("Best so far: a m Q4_1: request_tps 100.0 ± 1.0 t/s"),
            "rows outside the plan are not ranked: {text}"
        );
        assert!(text.contains("6.0 s per trial; about 12s left"), "{text}");

        // A search with a budget smaller than its plan has fewer left.
        let text = render(
            Path::new("reports/s"),
            &[a, b],
            Some(&plan),
            Some(3),
            &Objective::default(),
            None,
        );
        assert!(
            text.contains("2 recorded (1 ok, 1 oom), 1 left of a 3-trial budget"),
            "{text}"
        );
        assert!(text.contains("about 6s left"), "{text}");
    }

    /// recommendation.json as the confirmation round writes it.
    fn recommend(folder: &Path, trial_id: &str) {
        let json = serde_json::json!({
            "trial_id": trial_id,
            "metric": "request_tps",
            "value": 99.0,
            "runs": 3,
            "runner_up": null,
            "verdict": "b over a",
            "candidates": ["a", "b"],
        });
        std::fs::write(
            folder.join(crate::confirm::RECOMMENDATION_JSON),
            json.to_string(),
        )
        .unwrap();
    }

    #[test]
    fn a_finished_sweep_names_its_best_and_the_recommended_trial() {
        let dir = tempfile::tempdir().unwrap();
        let a = row("a", &mock::measured(100.0, 400.0));
        let b = row("b", &mock::measured(98.0, 400.0));
        recommend(dir.path(), "b");
        assert!(crate::confirm::read_recommendation(dir.path()).is_some());
        let text = render(
            dir.path(),
            &[a.clone(), b],
            None,
            None,
            &Objective::default(),
            None,
        );
        assert!(
            text.contains("Best in the sweep: a m Q4_1: request_tps 100.0 ± 1.0 t/s"),
            "{text}"
        );
        assert!(
            text.contains(
                "Recommended (confirmed): b m Q4_1: request_tps 99.0 t/s over 3 confirmation runs"
            ),
            "{text}"
        );
        assert!(!text.contains("Best so far"), "{text}");

        // Resumed: the recommendation is the last round's.
        let text = render(
            dir.path(),
            std::slice::from_ref(&a),
            None,
            None,
            &Objective::default(),
            Some("pid 7"),
        );
        assert!(text.contains("Best so far: a m Q4_1"), "{text}");
        assert!(
            text.contains("Recommended by the last confirmation round: b: request_tps 99.0"),
            "{text}"
        );

        // Confirmed as the sweep's best: one line says so.
        recommend(dir.path(), "a");
        let text = render(dir.path(), &[a], None, None, &Objective::default(), None);
        assert!(
            text.contains("Recommended (confirmed): a, the sweep's best"),
            "{text}"
        );
    }

    #[test]
    fn the_time_left_is_shared_by_the_workers_measuring() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = row("a", &mock::measured(100.0, 400.0));
        a.wall_s = 10.0;
        let mut b = row("b", &mock::measured(90.0, 400.0));
        b.wall_s = 2.0;
        let plan = ["a".to_string(), "b".into(), "c".into(), "d".into()];
        std::fs::create_dir_all(dir.path().join(crate::workers::WORKERS)).unwrap();
        for (worker, state) in [("w1", "running"), ("w2", "running"), ("w3", "finished")] {
            crate::workers::write_state(
                dir.path(),
                &crate::workers::WorkerState {
                    worker: worker.into(),
                    host: "h".into(),
                    pid: 1,
                    machine_id: "m".into(),
                    machine: "cpu".into(),
                    started_at: "t0".into(),
                    updated_at: "t1".into(),
                    recorded: 1,
                    state: state.into(),
                },
            )
            .unwrap();
        }
        let text = render(
            dir.path(),
            &[a, b],
            Some(&plan),
            None,
            &Objective::default(),
            None,
        );
        // 2 trials left at 6 s each, measured two at a time.
        assert!(
            text.contains("6.0 s per trial; about 6s left with 2 workers measuring"),
            "{text}"
        );
    }
}
