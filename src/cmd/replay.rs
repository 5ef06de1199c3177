//! `llama-sweep replay`: search strategies simulated against a recorded grid.

use crate::cli::ReplayArgs;
use crate::config::{BayesSettings, ConfirmSettings, StrategyKind};
use crate::confirm::sequential::Looks;
use crate::objective::{Metric, Objective};
use crate::search::replay::{RecordedGrid, compare, render, render_csv};
use crate::search::{replay_confirm, replay_drops, replay_repetitions};
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
    if let Some(run_noise) = args.drops {
        let setup = |margin| replay_drops::Setup { margin, run_noise };
        let outcomes: Vec<_> = [0.1, 0.2, 0.3]
            .into_iter()
            .map(|margin| {
                replay_drops::replay(&rows, &objective, &setup(margin), args.seeds.max(1))
            })
            .collect();
        print!("{}", replay_drops::render(&outcomes, &setup(0.2)));
        return Ok(());
    }
    if let Some(run_noise) = args.repetitions {
        let setup = replay_repetitions::Setup {
            // The demo's [workload] repetitions.
            planned: 3,
            run_noise,
            top: ConfirmSettings::default().top,
        };
        let outcomes: Vec<_> = replay_repetitions::Policy::ALL
            .into_iter()
            .map(|policy| {
                replay_repetitions::replay(&rows, &objective, policy, &setup, args.seeds.max(1))
            })
            .collect();
        print!("{}", replay_repetitions::render(&outcomes, &setup));
        return Ok(());
    }
    let grid = RecordedGrid::from_rows(&rows, &objective)?;
    if let Some(run_noise) = args.confirm {
        let defaults = ConfirmSettings::default();
        let setup = |looks| replay_confirm::Setup {
            top: defaults.top,
            looks,
            margin: defaults.equivalent_within,
            run_noise,
        };
        let sequential = Looks::new(defaults.rounds, defaults.max_rounds);
        let outcomes: Vec<_> = [
            Looks::new(defaults.rounds, defaults.rounds),
            sequential.clone(),
        ]
        .into_iter()
        .map(|looks| replay_confirm::replay(&grid, &setup(looks), args.seeds.max(1)))
        .collect();
        print!("{}", replay_confirm::render(&outcomes, &setup(sequential)));
        return Ok(());
    }
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
