//! `llama-sweep compare A B`: two sweeps of the same space, configuration by
//! configuration (the logic is in `compare`).

use crate::cli::CompareArgs;
use crate::compare::{self, render};
use crate::objective::{Metric, Objective};
use crate::store::{self, csv_file, manifest, row::TrialRow};
use anyhow::{anyhow, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A sweep as compare reads it: its rows, the objective of the
/// manifest.json beside them (if there is one), and its folder.
struct Loaded {
    rows: Vec<TrialRow>,
    objective: Option<Objective>,
    folder: PathBuf,
}

/// The extra runs of the folder's trials (confirmation rounds, drift
/// anchor checks) for `metric`: trial id → values.
fn runs(folder: &Path, metric: Metric) -> anyhow::Result<HashMap<String, Vec<f64>>> {
    let mut runs: HashMap<String, Vec<f64>> = HashMap::new();
    for run in crate::confirm::read_runs(folder)? {
        if let (true, Some(v)) = (run.metric == metric.name(), run.value) {
            runs.entry(run.trial_id).or_default().push(v);
        }
    }
    for check in crate::store::anchors::read(folder)? {
        if let (true, Some(v)) = (check.metric == metric.name(), check.value) {
            runs.entry(check.anchor_trial_id).or_default().push(v);
        }
    }
    Ok(runs)
}

/// The rows of a sweep folder or results.csv, and the objective of the
/// manifest.json beside them, if there is one.
fn load(path: &Path) -> anyhow::Result<Loaded> {
    let (csv, folder) = if path.is_dir() {
        (path.join(store::RESULTS_CSV), path.to_path_buf())
    } else {
        let folder = path.parent().map(PathBuf::from).unwrap_or_default();
        (path.to_path_buf(), folder)
    };
    if !csv.exists() {
        bail!(
            "{} not found: give a sweep folder (reports/<name>) or its results.csv",
            csv.display()
        );
    }
    let rows = csv_file::read(&csv)?;
    if rows.is_empty() {
        bail!("{} has no rows to compare", csv.display());
    }
    let manifest_path = folder.join(store::MANIFEST);
    let objective = if manifest_path.exists() {
        Some(manifest::read(&manifest_path)?.sweep.objective)
    } else {
        None
    };
    Ok(Loaded {
        rows,
        objective,
        folder,
    })
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let (a, b) = (load(&args.a)?, load(&args.b)?);
    let metric = args
        .metric
        .as_deref()
        .map(|name| {
            Metric::from_name(name).ok_or_else(|| {
                let known: Vec<String> =
                    Metric::ALL.iter().map(|m| m.name().into_owned()).collect();
                anyhow!("unknown metric {name:?}: one of {}", known.join(", "))
            })
        })
        .transpose()?;
    let objective = compare::choose_objective(a.objective.as_ref(), b.objective.as_ref(), metric)?;
    let data_a = compare::SweepData {
        rows: &a.rows,
        runs: runs(&a.folder, objective.metric)?,
    };
    let data_b = compare::SweepData {
        rows: &b.rows,
        runs: runs(&b.folder, objective.metric)?,
    };
    let comparison = compare::compare(&data_a, &data_b, &objective)?;
    if args.csv {
        print!("{}", render::render_csv(&comparison)?);
    } else {
        print!(
            "{}",
            render::render(
                &comparison,
                args.top,
                &args.a.display().to_string(),
                &args.b.display().to_string()
            )
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &str, b: &str, metric: Option<&str>) -> CompareArgs {
        CompareArgs {
            a: a.into(),
            b: b.into(),
            metric: metric.map(String::from),
            top: 5,
            csv: false,
        }
    }

    #[test]
    fn folders_and_results_files_both_load_with_their_objective() {
        let folder = load(Path::new("tests/fixtures/real-demo-grid")).unwrap();
        let file = load(Path::new("tests/fixtures/real-demo-grid/results.csv")).unwrap();
        assert_eq!(folder.rows, file.rows);
        assert_eq!(folder.objective.unwrap().metric, Metric::TgTps);
        run(&args(
            "tests/fixtures/real-demo-grid",
            "tests/fixtures/real-demo-grid/results.csv",
            None,
        ))
        .unwrap();
    }

    #[test]
    fn unusable_inputs_are_errors_that_say_why() {
        let err = run(&args("/nonexistent", "tests/fixtures/real-demo-grid", None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent not found: give a sweep folder"),
            "{err}"
        );
        let err = run(&args(
            "tests/fixtures/real-demo-grid",
            "tests/fixtures/synthetic-cpu-threads",
            None,
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("metrics differ"), "{err}");
        let err = run(&args(
            "tests/fixtures/real-demo-grid",
            "tests/fixtures/synthetic-cpu-threads",
            Some("tg_tps"),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("share no configuration"), "{err}");
        let err = run(&args(
            "tests/fixtures/real-demo-grid",
            "tests/fixtures/real-demo-grid",
            Some("speed"),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown metric \"speed\""), "{err}");
    }
}
