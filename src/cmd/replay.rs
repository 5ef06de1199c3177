//! `llama-sweep replay`: search strategies simulated against a recorded grid.

use crate::cli::ReplayArgs;
use crate::config::BayesSettings;
use crate::config::StrategyKind;
use crate::objective::{Metric, Objective};
use crate::search::replay::{RecordedGrid, compare, render, render_csv};
use crate::store::{self, csv_file, manifest};
use anyhow::{anyhow, bail};
use std::path::PathBuf;

pub fn run(args: &ReplayArgs) -> anyhow::Result<()> {
    let (csv, folder) = if args.results.is_dir() {
        (args.results.join(store::RESULTS_CSV), args.results.clone())
    } else {
        let folder = args.results.parent().map(PathBuf::from).unwrap_or_default();
        (args.results.clone(), folder)
    };
    let rows = csv_file::read(&csv)?;
    if rows.is_empty() {
        bail!("{} has no rows to replay", csv.display());
    }
    let mut objective = manifest::read(&folder.join(store::MANIFEST))
        .map(|m| m.sweep.objective)
        .unwrap_or_default();
    if let Some(name) = &args.metric {
        let metric = Metric::from_name(name).ok_or_else(|| anyhow!("unknown metric {name:?}"))?;
        objective = Objective {
            metric,
            direction: metric.natural_direction(),
            constraints: objective.constraints,
        };
    }
    let kinds: Vec<StrategyKind> = match args.strategy.as_str() {
        "all" => vec![
            StrategyKind::Grid,
            StrategyKind::Random,
            StrategyKind::Bayes,
        ],
        name => vec![
            StrategyKind::from_name(name)
                .ok_or_else(|| anyhow!("unknown strategy {name:?}: grid, random, bayes or all"))?,
        ],
    };
    let grid = RecordedGrid::from_rows(&rows, &objective)?;
    let budget = args.budget.unwrap_or(grid.len()).min(grid.len());
    let results = compare(
        &grid,
        &kinds,
        &BayesSettings::default(),
        budget,
        args.seeds.max(1),
    );
    if args.csv {
        print!("{}", render_csv(&grid, &results, budget));
    } else {
        print!("{}", render(&grid, &results, budget));
    }
    Ok(())
}
