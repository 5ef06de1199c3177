//! The report's charts as data: which charts a sweep gets and what goes in
//! them (history, Pareto front, pp against tg, a heatmap over the two most
//! important parameters, one effect chart per swept parameter). Drawing is
//! `plots`' job.

use super::data::ReportData;
use super::effects::{Effect, ordered_values};
use super::pareto;
use super::plots::{Bar, Chart, ChartKind, Mark, Point, downsample};
use crate::objective::{Direction, Measured, Metric};
use crate::plan::references::Role;
use crate::store::row::TrialRow;

/// All charts of the report, in the order the page shows them.
/// `searched` are the search's own rows (the effects' and the heatmap's).
pub fn charts(data: &ReportData, searched: &[TrialRow], effects: &[Effect]) -> Vec<Chart> {
    let mut out = vec![history(data), pareto_chart(data), pp_vs_tg(data)];
    if let Some(heatmap) = heatmap(data, searched, effects) {
        out.push(heatmap);
    }
    out.extend(effects.iter().map(|e| effect_chart(data, e)));
    out
}

fn axis_label(metric: Metric) -> String {
    format!("{} ({})", metric.name(), metric.unit())
}

/// The mark of a measured row: highlighted roles first.
fn mark_of(data: &ReportData, index: usize, row: &TrialRow) -> Mark {
    if data.winner == Some(index) {
        return Mark::Winner;
    }
    let roles = data.roles_of(&row.trial_id);
    if roles.contains(&Role::Baseline) {
        Mark::Baseline
    } else if roles.contains(&Role::Defaults) {
        Mark::Defaults
    } else if row.feasible {
        Mark::Feasible
    } else {
        Mark::Infeasible
    }
}

fn history(data: &ReportData) -> Chart {
    let objective = data.objective();
    let mut points = Vec::new();
    let mut failed = Vec::new();
    let mut best_so_far: Vec<(f64, f64)> = Vec::new();
    for (i, row) in data.rows.iter().enumerate() {
        let x = (i + 1) as f64;
        match objective.score(row) {
            Some(y) => {
                points.push(Point {
                    x,
                    y,
                    mark: mark_of(data, i, row),
                });
                if row.feasible {
                    let improves = best_so_far
                        .last()
                        .is_none_or(|&(_, best)| objective.compare(y, best).is_lt());
                    if improves {
                        best_so_far.push((x, y));
                    }
                }
            }
            None => failed.push(x),
        }
    }
    // Failures are crosses along the bottom; thin them like the points.
    if failed.len() > super::plots::MAX_POINTS {
        let stride = failed.len().div_ceil(super::plots::MAX_POINTS);
        failed = failed.into_iter().step_by(stride).collect();
    }
    Chart {
        name: "history".into(),
        title: "Optimization history".into(),
        x_label: "trial, in the order measured".into(),
        y_label: axis_label(objective.metric),
        kind: ChartKind::History {
            points: downsample(points),
            best_so_far,
            failed,
        },
    }
}

fn pareto_chart(data: &ReportData) -> Chart {
    let objective = data.objective();
    let front = pareto::front(&data.rows, objective);
    let mut points = Vec::new();
    let mut line = Vec::new();
    for (i, row) in data.rows.iter().enumerate() {
        let (Some(y), Some(x)) = (objective.score(row), pareto::memory_mib(row)) else {
            continue;
        };
        let on_front = front.contains(&i);
        let mut mark = mark_of(data, i, row);
        if on_front && matches!(mark, Mark::Feasible) {
            mark = Mark::Front;
        }
        if on_front {
            line.push((x, y));
        }
        points.push(Point { x, y, mark });
    }
    // The front is drawn from the least memory to the most.
    line.sort_by(|a, b| a.0.total_cmp(&b.0));
    Chart {
        name: "pareto".into(),
        title: format!("Speed against memory ({} trials on the front)", front.len()),
        x_label: "memory (MiB: device memory, else peak RSS)".into(),
        y_label: axis_label(objective.metric),
        kind: ChartKind::Scatter {
            points: downsample(points),
            line,
        },
    }
}

fn pp_vs_tg(data: &ReportData) -> Chart {
    let points = data
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            Some(Point {
                x: row.mean_of(Metric::PpTps)?,
                y: row.mean_of(Metric::TgTps)?,
                mark: mark_of(data, i, row),
            })
        })
        .collect();
    Chart {
        name: "pp-vs-tg".into(),
        title: "Prompt processing against generation".into(),
        x_label: axis_label(Metric::PpTps),
        y_label: axis_label(Metric::TgTps),
        kind: ChartKind::Scatter {
            points: downsample(points),
            line: Vec::new(),
        },
    }
}

/// The best objective for each pair of values of the two parameters with
/// the largest effects.
fn heatmap(data: &ReportData, searched: &[TrialRow], effects: &[Effect]) -> Option<Chart> {
    let [first, second, ..] = effects else {
        return None;
    };
    let objective = data.objective();
    let (px, py) = (&first.param, &second.param);
    let xs = ordered_values(searched, px);
    let ys = ordered_values(searched, py);
    let mut cells: Vec<(usize, usize, f64)> = Vec::new();
    for row in searched.iter().filter(|r| r.feasible) {
        let Some(score) = objective.score(row) else {
            continue;
        };
        let (Some(x), Some(y)) = (
            xs.iter().position(|v| *v == px.value(row)),
            ys.iter().position(|v| *v == py.value(row)),
        ) else {
            continue;
        };
        match cells.iter_mut().find(|c| c.0 == x && c.1 == y) {
            Some(cell) if objective.compare(score, cell.2).is_lt() => cell.2 = score,
            Some(_) => {}
            None => cells.push((x, y, score)),
        }
    }
    if cells.is_empty() {
        return None;
    }
    Some(Chart {
        name: "heatmap".into(),
        title: format!(
            "Best {} for each {} and {} (darker is better)",
            objective.metric.name(),
            px.name,
            py.name
        ),
        x_label: px.name.clone(),
        y_label: py.name.clone(),
        kind: ChartKind::Heatmap {
            x_values: xs,
            y_values: ys,
            cells,
            higher_is_better: objective.direction == Direction::Maximize,
        },
    })
}

/// (low, ratio, high) of an interval; a missing bound is the ratio itself.
fn whiskers(r: crate::stats::RatioInterval) -> (f64, f64, f64) {
    (r.low.unwrap_or(r.ratio), r.ratio, r.high.unwrap_or(r.ratio))
}

fn effect_chart(data: &ReportData, effect: &Effect) -> Chart {
    let metric = data.objective().metric;
    let bars = effect
        .levels
        .iter()
        .map(|level| {
            let label = match (&level.ratio, &level.failure) {
                (None, Some(how)) => format!("{} ({how})", level.value),
                _ => level.value.clone(),
            };
            Bar {
                label,
                ratio: level.ratio.map(whiskers),
                across: level.across.map(|(r, _)| whiskers(r)),
                is_winner: level.is_winner,
            }
        })
        .collect();
    Chart {
        name: format!("effect-{}", effect.param.slug()),
        title: format!("Effect of {}", effect.param.name),
        x_label: format!("{} (green: the recommended value)", effect.param.name),
        y_label: format!("{} ÷ recommended's (×)", metric.name()),
        kind: ChartKind::Effect { bars },
    }
}
