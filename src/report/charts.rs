//! The report's charts as data: which charts a sweep gets and what goes in
//! them (history, Pareto fronts against memory and against quality, pp
//! against tg, a heatmap over the two most important parameters, one effect
//! chart per swept parameter). Drawing is `plots`' job.

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
    let mut out = vec![history(data), pareto_chart(data)];
    out.extend(quality_chart(data));
    out.push(pp_vs_tg(data));
    out.extend(super::shapes::charts(data));
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
    } else if roles.contains(&Role::Defaults) || roles.contains(&Role::Fit) {
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
    let (points, line, on_front) = front_points(data, pareto::memory_mib);
    Chart {
        name: "pareto".into(),
        title: format!("Speed against memory ({on_front} trials on the front)"),
        x_label: "memory (MiB: device memory, else peak RSS)".into(),
        y_label: axis_label(data.objective().metric),
        kind: ChartKind::Scatter { points, line },
    }
}

/// The objective against the mean KL divergence of each trial's model
/// variant and KV types; only when at least two divergences differ.
fn quality_chart(data: &ReportData) -> Option<Chart> {
    let objective = data.objective();
    let mut klds: Vec<f64> = data
        .rows
        .iter()
        .filter(|r| objective.score(*r).is_some())
        .filter_map(|r| r.kld.filter(|k| k.is_finite()))
        .collect();
    klds.sort_by(f64::total_cmp);
    klds.dedup();
    if klds.len() < 2 {
        return None;
    }
    let (points, line, on_front) = front_points(data, |r| r.kld);
    Some(Chart {
        name: "quality".into(),
        title: format!("Speed against quality ({on_front} trials on the front)"),
        x_label: "mean KL divergence from the most precise variant (nats)".into(),
        y_label: axis_label(objective.metric),
        kind: ChartKind::Scatter { points, line },
    })
}

/// The points of a front chart (objective against `cost`), the front's
/// line by increasing cost, and how many trials are on it.
fn front_points(
    data: &ReportData,
    cost: impl Fn(&TrialRow) -> Option<f64> + Copy,
) -> (Vec<Point>, Vec<(f64, f64)>, usize) {
    let objective = data.objective();
    let front = pareto::front_by(&data.rows, objective, cost);
    let mut points = Vec::new();
    let mut line = Vec::new();
    for (i, row) in data.rows.iter().enumerate() {
        let (Some(y), Some(x)) = (objective.score(row), cost(row).filter(|c| c.is_finite())) else {
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
    line.sort_by(|a, b| a.0.total_cmp(&b.0));
    (downsample(points), line, front.len())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::data::fixture;

    fn quality_chart_of(klds: &[(usize, f64)]) -> (ReportData, Option<Chart>) {
        let mut data = fixture();
        for &(i, kld) in klds {
            data.rows[i].kld = Some(kld);
        }
        let chart = quality_chart(&data);
        (data, chart)
    }

    #[test]
    fn the_quality_chart_needs_two_divergences() {
        let (_, none) = quality_chart_of(&[]);
        assert!(none.is_none());
        let (_, one) = quality_chart_of(&[(0, 0.01), (1, 0.01)]);
        assert!(one.is_none());
        let (data, two) = quality_chart_of(&[(0, 0.0), (1, 0.05)]);
        let names: Vec<String> = charts(&data, &data.rows, &[])
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["history", "pareto", "quality", "pp-vs-tg"]);
        let ChartKind::Scatter { points, .. } = two.unwrap().kind else {
            panic!("not a scatter");
        };
        assert_eq!(points.len(), 2);
    }

    #[test]
    fn the_quality_front_joins_trials_nothing_beats_on_both() {
        let mut data = fixture();
        let objective = data.objective().clone();
        // Every measured row: the variant's divergence; the fastest of
        // each value is on the front when faster than all to its left.
        let ranked = objective.rank(&data.rows);
        let (best, second) = (ranked[0], ranked[1]);
        for (i, row) in data.rows.iter_mut().enumerate() {
            row.kld = Some(if i == best { 0.3 } else { 0.1 });
        }
        data.rows[second].kld = Some(0.0);
        let chart = quality_chart(&data).unwrap();
        let ChartKind::Scatter { points, line } = chart.kind else {
            panic!("not a scatter");
        };
        let tg = |i: usize| objective.score(&data.rows[i]).unwrap();
        assert_eq!(line, [(0.0, tg(second)), (0.3, tg(best))]);
        assert!(
            chart.title.contains("2 trials on the front"),
            "{}",
            chart.title
        );
        let winner = points.iter().find(|p| p.mark == Mark::Winner).unwrap();
        assert_eq!((winner.x, winner.y), (0.3, tg(best)));
    }
}
