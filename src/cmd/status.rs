//! `llama-sweep status`: how far a sweep has got — also while it runs in
//! another terminal. Reads only: results.csv, plan.json, manifest.json and
//! the folder's lock.

use crate::cli::StatusArgs;
use crate::objective::{Measured, Objective};
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
    for s in [
        TrialStatus::Failed,
        TrialStatus::Oom,
        TrialStatus::Timeout,
        TrialStatus::Crashed,
        TrialStatus::Invalid,
    ] {
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

    let owned: Vec<TrialRow> = current.iter().map(|r| (*r).clone()).collect();
    match objective.rank(&owned).first() {
        Some(&i) => {
            let best = &owned[i];
            let sd = best
                .sd_of(objective.metric)
                .map(|sd| format!(" ± {sd:.1}"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "Best so far: {} {} {}: {} {:.1}{sd} {}",
                best.trial_id,
                best.model_name,
                best.model_variant,
                objective.metric,
                best.mean_of(objective.metric).unwrap_or(0.0),
                objective.metric.unit()
            );
        }
        None => out.push_str("Best so far: none feasible yet\n"),
    }

    let walls: Vec<f64> = current
        .iter()
        .map(|r| r.wall_s)
        .filter(|w| *w > 0.0)
        .collect();
    if !walls.is_empty() {
        let mean = walls.iter().sum::<f64>() / walls.len() as f64;
        let spent = Duration::from_secs(walls.iter().sum::<f64>() as u64);
        let eta = Duration::from_secs((mean * left as f64) as u64);
        let _ = writeln!(
            out,
            "Time: {} in trials, {mean:.1} s per trial; about {} left",
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
            text.contains("Best so far: a m Q4_1: tg_tps 100.0 ± 1.0 t/s"),
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
}
