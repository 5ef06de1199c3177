//! The shapes of work beyond one user on an empty cache: speed against the
//! depth of the cache (workload.n_depth) for the top configurations, and
//! throughput against concurrency (n_parallel) with the latency
//! percentiles, its knee, and the best configuration for each shape.

use super::data::ReportData;
use super::plots::{Chart, ChartKind, Line, format_value};
use crate::knobs;
use crate::objective::{Bound, Measured, Metric, Objective, Speed};
use crate::store::row::TrialRow;
use std::collections::BTreeMap;

/// Lines drawn at most in one chart.
const TOP: usize = 5;

/// A further level of n_parallel that adds less throughput than this
/// factor is past the knee of the load curve.
pub const KNEE_GAIN: f64 = 1.10;

/// The shape charts a sweep gets: speed against depth (generation, then
/// prompt) when it measured depths, throughput against concurrency when
/// some configuration ran at two or more n_parallel levels.
pub fn charts(data: &ReportData) -> Vec<Chart> {
    let mut out = Vec::new();
    out.extend(depth_chart(data, Speed::Tg));
    out.extend(depth_chart(data, Speed::Pp));
    out.extend(load_chart(data));
    out
}

/// What a row is called in a chart's legend.
fn label(data: &ReportData, row: &TrialRow) -> String {
    let winner = data.winner().is_some_and(|w| w.trial_id == row.trial_id);
    format!(
        "{} {}{}",
        row.model_variant,
        row.trial_id,
        if winner { " (recommended)" } else { "" }
    )
}

/// The measured rows ranked by the objective, best first.
fn ranked(data: &ReportData) -> Vec<&TrialRow> {
    let objective = data.objective();
    objective
        .rank(&data.rows)
        .into_iter()
        .map(|i| &data.rows[i])
        .collect()
}

fn depth_chart(data: &ReportData, speed: Speed) -> Option<Chart> {
    let rows: Vec<&TrialRow> = ranked(data)
        .into_iter()
        .filter(|r| !r.at_depth.0.is_empty())
        .take(TOP)
        .collect();
    if rows.is_empty() {
        return None;
    }
    let lines = rows
        .iter()
        .map(|row| Line {
            label: label(data, row),
            points: std::iter::once(0)
                .chain(row.at_depth.0.iter().map(|d| d.depth))
                .filter_map(|depth| {
                    let metric = match depth {
                        0 => speed.metric(),
                        d => Metric::AtDepth(speed, d),
                    };
                    let mean = row.mean_of(metric)?;
                    Some((f64::from(depth), mean, row.sd_of(metric).unwrap_or(0.0)))
                })
                .collect(),
        })
        .collect();
    let (name, what) = match speed {
        Speed::Pp => ("depth-pp", "Prompt processing"),
        _ => ("depth-tg", "Generation"),
    };
    Some(Chart {
        name: name.into(),
        title: format!("{what} speed against the depth of the cache"),
        x_label: "tokens already in the cache (n_depth)".into(),
        y_label: format!("{} (t/s, per sequence)", speed.metric().name()),
        kind: ChartKind::Lines {
            lines,
            right: None,
            log2_x: false,
            marker: None,
        },
    })
}

/// A configuration at every n_parallel it ran with: rows that differ only
/// by n_parallel, by increasing n_parallel.
#[derive(Debug)]
pub struct LoadCurve<'a> {
    pub rows: Vec<&'a TrialRow>,
}

impl LoadCurve<'_> {
    /// The n_parallel past which another level adds less than
    /// [`KNEE_GAIN`] of throughput; `None` while every level still does
    /// (or nothing was measured).
    pub fn knee(&self) -> Option<i64> {
        let points: Vec<(i64, f64)> = self
            .rows
            .iter()
            .filter_map(|r| Some((r.params.int(knobs::N_PARALLEL), r.aggregate_tps_mean?)))
            .collect();
        points
            .windows(2)
            .find(|pair| pair[1].1 < pair[0].1 * KNEE_GAIN)
            .map(|pair| pair[0].0)
    }

    /// The largest n_parallel measured.
    pub fn last(&self) -> i64 {
        self.rows
            .last()
            .map_or(1, |r| r.params.int(knobs::N_PARALLEL))
    }

    /// The largest n_parallel whose p95 time to first token is at most
    /// `limit_ms`.
    pub fn most_within(&self, limit_ms: f64) -> Option<i64> {
        self.rows
            .iter()
            .filter(|r| r.ttft_ms_p95.is_some_and(|t| t <= limit_ms))
            .map(|r| r.params.int(knobs::N_PARALLEL))
            .max()
    }
}

/// The configurations measured at two or more n_parallel levels, the one
/// with the best trial first.
pub fn load_curves(data: &ReportData) -> Vec<LoadCurve<'_>> {
    let mut groups: BTreeMap<String, Vec<&TrialRow>> = BTreeMap::new();
    for row in data.rows.iter().filter(|r| r.is_ok()) {
        let mut params = row.params.to_params();
        params.set(knobs::N_PARALLEL, knobs::Value::Int(1));
        let key = format!("{} {params}", row.model_identity);
        groups.entry(key).or_default().push(row);
    }
    let objective = data.objective();
    let mut curves: Vec<(f64, LoadCurve)> = groups
        .into_values()
        .filter_map(|mut rows| {
            rows.sort_by_key(|r| r.params.int(knobs::N_PARALLEL));
            rows.dedup_by_key(|r| r.params.int(knobs::N_PARALLEL));
            if rows.len() < 2 {
                return None;
            }
            let best = rows
                .iter()
                .filter(|r| r.feasible)
                .filter_map(|r| objective.score(*r))
                .min_by(|a, b| objective.compare(*a, *b))?;
            Some((best, LoadCurve { rows }))
        })
        .collect();
    curves.sort_by(|a, b| objective.compare(a.0, b.0));
    curves.into_iter().map(|(_, c)| c).collect()
}

fn load_chart(data: &ReportData) -> Option<Chart> {
    let curves = load_curves(data);
    let curves = &curves[..curves.len().min(TOP - 1)];
    if curves.is_empty() {
        return None;
    }
    let line = |curve: &LoadCurve, metric: Metric, what: &str| Line {
        label: format!("{what}{}", label(data, curve.rows[0])),
        points: curve
            .rows
            .iter()
            .filter_map(|r| {
                let n = r.params.int(knobs::N_PARALLEL) as f64;
                Some((n, r.mean_of(metric)?, r.sd_of(metric).unwrap_or(0.0)))
            })
            .collect(),
    };
    let throughput = curves
        .iter()
        .map(|c| line(c, Metric::AggregateTps, ""))
        .collect();
    let latency = curves
        .iter()
        .map(|c| line(c, Metric::TtftMsP95, "p95 TTFT "))
        .collect();
    let marker = curves[0].knee().map(|n| {
        (
            n as f64,
            format!(
                "knee: n_parallel {n} (the next level adds < {:.0}%)",
                (KNEE_GAIN - 1.0) * 100.0
            ),
        )
    });
    Some(Chart {
        name: "load".into(),
        title: "Throughput against concurrency".into(),
        x_label: "sequences decoding together (n_parallel)".into(),
        y_label: "aggregate_tps (t/s, all sequences)".into(),
        kind: ChartKind::Lines {
            lines: throughput,
            right: Some(("p95 time to first token (ms), dashed".into(), latency)),
            log2_x: true,
            marker,
        },
    })
}

/// The best row by `metric` (in its natural direction) among `rows`, of
/// those within the objective's constraints.
fn best_by<'a>(
    data: &ReportData,
    rows: impl Iterator<Item = &'a TrialRow>,
    metric: Metric,
) -> Option<&'a TrialRow> {
    let by_metric = Objective {
        metric,
        direction: metric.natural_direction(),
        constraints: data.objective().constraints.clone(),
    };
    let rows: Vec<&TrialRow> = rows.collect();
    by_metric.rank(&rows).first().map(|&i| rows[i])
}

/// One line of the best-by-shape list.
pub struct ShapeBest {
    pub shape: String,
    pub trial_id: String,
    pub figure: String,
}

/// The best configuration for each shape the sweep measured: each depth
/// (by generation speed there) and each n_parallel level (by the
/// objective among the trials at that level).
pub fn best_by_shape(data: &ReportData) -> Vec<ShapeBest> {
    let mut out = Vec::new();
    let depths: Vec<u32> = data
        .rows
        .iter()
        .flat_map(|r| r.at_depth.0.iter().map(|d| d.depth))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if !depths.is_empty() {
        for depth in std::iter::once(0).chain(depths) {
            let metric = match depth {
                0 => Metric::TgTps,
                d => Metric::AtDepth(Speed::Tg, d),
            };
            if let Some(row) = best_by(data, data.rows.iter(), metric) {
                out.push(ShapeBest {
                    shape: format!("generation with {depth} tokens in the cache"),
                    trial_id: row.trial_id.clone(),
                    figure: figure(row, metric),
                });
            }
        }
    }
    let levels: std::collections::BTreeSet<i64> = data
        .rows
        .iter()
        .filter(|r| r.is_ok())
        .map(|r| r.params.int(knobs::N_PARALLEL))
        .collect();
    if levels.len() > 1 {
        let metric = data.objective().metric;
        for n in levels {
            let at_level = data
                .rows
                .iter()
                .filter(|r| r.params.int(knobs::N_PARALLEL) == n);
            let users = if n == 1 {
                "one user".to_string()
            } else {
                format!("{n} users at once")
            };
            let Some(row) = best_by(data, at_level, metric) else {
                out.push(ShapeBest {
                    shape: format!("{users} (n_parallel {n}), by {metric}"),
                    trial_id: "—".into(),
                    figure: "no trial within the constraints".into(),
                });
                continue;
            };
            out.push(ShapeBest {
                shape: format!("{users} (n_parallel {n}), by {metric}"),
                trial_id: row.trial_id.clone(),
                figure: [metric, Metric::AggregateTps, Metric::TtftMsP95]
                    .iter()
                    .enumerate()
                    .filter(|&(i, m)| i == 0 || *m != metric)
                    .map(|(_, m)| figure(row, *m))
                    .collect::<Vec<_>>()
                    .join("; "),
            });
        }
    }
    out
}

fn figure(row: &TrialRow, metric: Metric) -> String {
    format!("{metric} {}", super::page::mean_sd(row, metric))
}

/// What the load curve of the best configuration says, in words: its knee
/// and, when the objective bounds the p95 time to first token, the most
/// users it serves within that bound.
pub fn load_statement(data: &ReportData) -> Option<String> {
    let curves = load_curves(data);
    let curve = curves.first()?;
    let mut out = format!(
        "Load curve of the best configuration ({}, the same settings at each n_parallel): \
         aggregate generation {}",
        curve.rows[0].model_variant,
        curve
            .rows
            .iter()
            .map(|r| format!(
                "{} t/s at n_parallel {} ({})",
                r.aggregate_tps_mean.map_or("?".into(), format_value),
                r.params.int(knobs::N_PARALLEL),
                r.trial_id
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out.push_str(&match curve.knee() {
        Some(knee) => format!(
            "; knee at n_parallel {knee} (one more level adds less than {:.0}% throughput)",
            (KNEE_GAIN - 1.0) * 100.0
        ),
        None => format!(
            "; still rising at n_parallel {}, the most measured: no knee yet",
            curve.last()
        ),
    });
    let limit = data.objective().constraints.iter().find_map(|c| match c {
        c if c.metric == Metric::TtftMsP95 => match c.bound {
            Bound::AtMost(v) => Some(v),
            Bound::AtLeast(_) => None,
        },
        _ => None,
    });
    if let Some(limit) = limit {
        out.push_str(&match curve.most_within(limit) {
            Some(n) => format!(
                "; the largest n_parallel whose p95 time to first token stays within {} ms: {n}",
                format_value(limit)
            ),
            None => format!(
                "; no n_parallel keeps the p95 time to first token within {} ms",
                format_value(limit)
            ),
        });
    }
    out.push('.');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::row::TrialRow;

    fn at(n: i64, aggregate: f64, p95: f64) -> TrialRow {
        let mut row = TrialRow {
            aggregate_tps_mean: Some(aggregate),
            ttft_ms_p95: Some(p95),
            ..TrialRow::default()
        };
        row.params.set(knobs::N_PARALLEL, knobs::Value::Int(n));
        row
    }

    #[test]
    fn the_knee_is_where_another_level_stops_paying() {
        let rows = [
            at(1, 100.0, 50.0),
            at(2, 180.0, 90.0),
            at(4, 300.0, 170.0),
            at(8, 320.0, 400.0),
        ];
        let curve = LoadCurve {
            rows: rows.iter().collect(),
        };
        assert_eq!(curve.knee(), Some(4), "8 adds under 10%");
        assert_eq!(curve.most_within(200.0), Some(4));
        assert_eq!(curve.most_within(10.0), None);
        let rising = LoadCurve {
            rows: rows[..3].iter().collect(),
        };
        assert_eq!(rising.knee(), None, "still rising");
        assert_eq!(rising.last(), 4);
    }
}
