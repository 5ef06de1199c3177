//! `llama-sweep compare A B`: two sweeps of the same space, configuration by
//! configuration (the logic is in `compare`).

use crate::cli::CompareArgs;
use crate::compare::{self, render};
use crate::objective::{Metric, Objective};
use crate::store::{self, csv_file, manifest, row::TrialRow};
use anyhow::{anyhow, bail};
use std::path::{Path, PathBuf};

/// The rows of a sweep folder or results.csv, and the objective of the
/// manifest.json beside them, if there is one.
fn load(path: &Path) -> anyhow::Result<(Vec<TrialRow>, Option<Objective>)> {
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
    Ok((rows, objective))
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    let (rows_a, objective_a) = load(&args.a)?;
    let (rows_b, objective_b) = load(&args.b)?;
    let metric = args
        .metric
        .as_deref()
        .map(|name| {
            Metric::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
                anyhow!("unknown metric {name:?}: one of {}", known.join(", "))
            })
        })
        .transpose()?;
    let objective = compare::choose_objective(objective_a.as_ref(), objective_b.as_ref(), metric)?;
    let comparison = compare::compare(&rows_a, &rows_b, &objective)?;
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
        let (rows, objective) = load(Path::new("tests/fixtures/real-demo-grid")).unwrap();
        let (same, _) = load(Path::new("tests/fixtures/real-demo-grid/results.csv")).unwrap();
        assert_eq!(rows, same);
        assert_eq!(objective.unwrap().metric, Metric::TgTps);
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
