//! Parameter effects: for every swept parameter, how the objective changes
//! when that parameter alone moves away from the winner's value, with a 95%
//! confidence interval; and what the data says about the claims tuning
//! guides make ("a higher-precision quant is faster" ...).
//!
//! "Holding the others at the winner's values where the data allows" is done
//! in three steps, the first that has data wins:
//! 1. the neighbour: the trial equal to the winner in every other parameter
//!    (interval from the two trials' repetitions);
//! 2. paired: every pair of trials that differ only in this parameter
//!    (interval from the spread of the paired ratios);
//! 3. marginal: all trials with one value against all with the other
//!    (interval from Welch's test on their logarithms) — what is left when a
//!    search measured too sparse a set for pairs.

use super::summary::param_columns;
use crate::objective::{Direction, Metric, Objective};
use crate::stats::{RatioInterval, Summary, ratio_of, ratio_of_logs, t_quantile_975};
use crate::store::row::TrialRow;
use std::collections::HashMap;

/// How an estimate was obtained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Basis {
    /// The winner's direct neighbour.
    Neighbour,
    /// This many pairs of trials differing only in the parameter.
    Paired(usize),
    /// All trials with one value against all with the other (counts).
    Marginal(usize, usize),
}

impl Basis {
    pub fn describe(&self) -> String {
        match self {
            Basis::Neighbour => "winner's neighbour".into(),
            Basis::Paired(n) => format!("{n} paired trials"),
            Basis::Marginal(a, b) => format!("marginal, {a} vs {b} trials"),
        }
    }
}

/// One value of a parameter.
#[derive(Debug, Clone)]
pub struct Level {
    pub value: String,
    /// Objective at this value ÷ objective at the winner's value (raw metric
    /// ratio: for a metric to minimize, below 1 is better). `None` when no
    /// trial with this value was measured.
    pub ratio: Option<RatioInterval>,
    pub basis: Option<Basis>,
    /// Beside a neighbour estimate, the paired estimate over every context
    /// (at least three pairs): the same comparison averaged over the other
    /// parameters' values, with the trial-to-trial noise in its interval.
    pub across: Option<(RatioInterval, usize)>,
    pub is_winner: bool,
    /// Trials with this value that did not complete, and the commonest way
    /// they ended.
    pub failed: usize,
    pub failure: Option<String>,
}

/// A parameter's effect: its levels, and its size (the largest |log ratio|
/// of its levels, over all pairs where there are enough) to rank
/// parameters by.
#[derive(Debug, Clone)]
pub struct Effect {
    pub param: Param,
    pub levels: Vec<Level>,
    pub size: f64,
}

/// A swept parameter — or several that the sweep only ever moved together
/// (n_threads = n_threads_batch, say), whose effects cannot be told apart.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// `n_batch`, or `n_threads & n_threads_batch`.
    pub name: String,
    /// Indices into the summary's parameter columns.
    columns: Vec<usize>,
}

impl Param {
    /// The parameter's value in `row`: `512`, or `4 / 8` for a group whose
    /// members differ.
    pub fn value(&self, row: &TrialRow) -> String {
        let mut parts: Vec<String> = self
            .columns
            .iter()
            .map(|&c| param_columns()[c].value(row))
            .collect();
        parts.dedup();
        parts.join(" / ")
    }

    /// Whether `column` (a parameter name) is part of this one.
    pub fn covers(&self, column: &str) -> bool {
        self.columns
            .iter()
            .any(|&c| param_columns()[c].name == column)
    }

    /// A name usable in file names: `n_threads+n_threads_batch`.
    pub fn slug(&self) -> String {
        self.columns
            .iter()
            .map(|&c| param_columns()[c].name)
            .collect::<Vec<_>>()
            .join("+")
    }
}

/// The objective's metric samples of a row (its repetitions), or its mean.
pub fn samples(row: &TrialRow, metric: Metric) -> Vec<f64> {
    let parsed = row.samples_of(metric);
    if !parsed.is_empty() {
        return parsed;
    }
    use crate::objective::Measured;
    row.mean_of(metric).into_iter().collect()
}

/// The parameters that take more than one value among `rows`, in the
/// summary's column order; parameters that always moved together are one.
pub fn swept_params(rows: &[TrialRow]) -> Vec<Param> {
    let swept: Vec<usize> = (0..param_columns().len())
        .filter(|&c| {
            let mut values: Vec<String> =
                rows.iter().map(|r| param_columns()[c].value(r)).collect();
            values.sort();
            values.dedup();
            values.len() > 1
        })
        .collect();
    let mut params: Vec<Param> = Vec::new();
    for c in swept {
        let together = params
            .iter_mut()
            .find(|p| moved_together(rows, p.columns[0], c));
        match together {
            Some(p) => {
                p.columns.push(c);
                p.name = format!("{} & {}", p.name, param_columns()[c].name);
            }
            None => params.push(Param {
                name: param_columns()[c].name.to_string(),
                columns: vec![c],
            }),
        }
    }
    params
}

/// Whether the values of columns `a` and `b` determine each other in every
/// row (one-to-one).
fn moved_together(rows: &[TrialRow], a: usize, b: usize) -> bool {
    let (ca, cb) = (param_columns()[a], param_columns()[b]);
    let (ga, gb) = (|r: &TrialRow| ca.value(r), |r: &TrialRow| cb.value(r));
    let mut forward: HashMap<String, String> = HashMap::new();
    let mut backward: HashMap<String, String> = HashMap::new();
    rows.iter().all(|r| {
        let (va, vb) = (ga(r), gb(r));
        forward.entry(va.clone()).or_insert_with(|| vb.clone()) == &vb
            && backward.entry(vb).or_insert(va) == &ga(r)
    })
}

/// The values of `param` among `rows`, in a natural order: numbers by
/// value, models by file size (precision), other values alphabetically.
pub fn ordered_values(rows: &[TrialRow], param: &Param) -> Vec<String> {
    let is_model = param.covers("model");
    let mut values: Vec<(f64, String)> = Vec::new();
    for row in rows {
        let value = param.value(row);
        if values.iter().any(|(_, v)| *v == value) {
            continue;
        }
        let key = if is_model {
            row.model_size_bytes.map_or(f64::NAN, |b| b as f64)
        } else {
            let first = value.split(" / ").next().unwrap_or("");
            first.parse::<f64>().unwrap_or(f64::NAN)
        };
        values.push((key, value));
    }
    // Sizes are missing for a model whose trials all failed: fill them in
    // from any row that has one.
    if is_model {
        for (key, value) in values.iter_mut() {
            if key.is_nan() {
                *key = rows
                    .iter()
                    .filter(|r| param.value(r) == *value)
                    .find_map(|r| r.model_size_bytes)
                    .map_or(f64::NAN, |b| b as f64);
            }
        }
    }
    let numeric = values.iter().all(|(k, _)| !k.is_nan());
    if numeric {
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
    } else {
        values.sort_by(|a, b| a.1.cmp(&b.1));
    }
    values.into_iter().map(|(_, v)| v).collect()
}

/// Rows keyed by their values of every parameter but `param`.
struct Contexts<'a, 'p> {
    param: &'p Param,
    /// context → value of `param` → the (last) measured row.
    by_context: HashMap<String, HashMap<String, &'a TrialRow>>,
}

impl<'a, 'p> Contexts<'a, 'p> {
    fn new(rows: &'a [TrialRow], param: &'p Param, objective: &Objective) -> Contexts<'a, 'p> {
        let mut by_context: HashMap<String, HashMap<String, &TrialRow>> = HashMap::new();
        for row in rows.iter().filter(|r| objective.score(*r).is_some()) {
            by_context
                .entry(context_of(row, param))
                .or_default()
                .insert(param.value(row), row);
        }
        Contexts { param, by_context }
    }

    /// Objective at value `a` ÷ objective at value `b`, others held at
    /// `anchor`'s values where the data allows.
    fn estimate(
        &self,
        rows: &[TrialRow],
        objective: &Objective,
        anchor: &TrialRow,
        a: &str,
        b: &str,
    ) -> Option<(RatioInterval, Basis)> {
        let metric = objective.metric;
        if let Some(at) = self.by_context.get(&context_of(anchor, self.param)) {
            if let (Some(ra), Some(rb)) = (at.get(a), at.get(b)) {
                if let Some(r) = ratio_of(&samples(ra, metric), &samples(rb, metric)) {
                    return Some((r, Basis::Neighbour));
                }
            }
        }
        if let Some((r, n)) = self.paired(objective, a, b) {
            return Some((r, Basis::Paired(n)));
        }
        let log_score = |r: &TrialRow| objective.score(r).filter(|v| *v > 0.0).map(f64::ln);
        let logs_at = |value: &str| -> Vec<f64> {
            rows.iter()
                .filter(|r| self.param.value(r) == value)
                .filter_map(log_score)
                .collect()
        };
        let (la, lb) = (logs_at(a), logs_at(b));
        let r = ratio_of_logs(&la, &lb)?;
        Some((r, Basis::Marginal(la.len(), lb.len())))
    }
}

impl Contexts<'_, '_> {
    /// Objective at `a` ÷ at `b` over every pair of trials that differ only
    /// in this parameter (at least two pairs), and the number of pairs.
    fn paired(&self, objective: &Objective, a: &str, b: &str) -> Option<(RatioInterval, usize)> {
        let log_score = |r: &TrialRow| objective.score(r).filter(|v| *v > 0.0).map(f64::ln);
        let diffs: Vec<f64> = self
            .by_context
            .values()
            .filter_map(|values| Some(log_score(values.get(a)?)? - log_score(values.get(b)?)?))
            .collect();
        if diffs.len() < 2 {
            return None;
        }
        let s = Summary::of(&diffs)?;
        let half = t_quantile_975((s.n - 1) as f64) * s.stddev / (s.n as f64).sqrt();
        Some((
            RatioInterval {
                ratio: s.mean.exp(),
                low: Some((s.mean - half).exp()),
                high: Some((s.mean + half).exp()),
            },
            s.n,
        ))
    }
}

/// Every parameter's value except `param`'s, as one key.
fn context_of(row: &TrialRow, param: &Param) -> String {
    param_columns()
        .iter()
        .enumerate()
        .filter(|(c, _)| !param.columns.contains(c))
        .map(|(_, column)| column.value(row))
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// The effect of every swept parameter around `winner`, largest first.
pub fn effects(rows: &[TrialRow], objective: &Objective, winner: &TrialRow) -> Vec<Effect> {
    let mut out: Vec<Effect> = swept_params(rows)
        .into_iter()
        .map(|param| {
            let contexts = Contexts::new(rows, &param, objective);
            let winner_value = param.value(winner);
            let levels: Vec<Level> = ordered_values(rows, &param)
                .into_iter()
                .map(|value| {
                    let is_winner = value == winner_value;
                    let estimate = if is_winner {
                        Some((
                            RatioInterval {
                                ratio: 1.0,
                                low: None,
                                high: None,
                            },
                            Basis::Neighbour,
                        ))
                    } else {
                        contexts.estimate(rows, objective, winner, &value, &winner_value)
                    };
                    let failures: Vec<&TrialRow> = rows
                        .iter()
                        .filter(|r| param.value(r) == value && !r.status.ran())
                        .collect();
                    let across = match estimate {
                        Some((_, Basis::Neighbour)) if !is_winner => contexts
                            .paired(objective, &value, &winner_value)
                            .filter(|(_, n)| *n >= 3),
                        _ => None,
                    };
                    Level {
                        ratio: estimate.map(|e| e.0),
                        basis: estimate.map(|e| e.1),
                        across,
                        is_winner,
                        failed: failures.len(),
                        failure: commonest(failures.iter().map(|r| r.status.name())),
                        value,
                    }
                })
                .collect();
            // Ranked by the steadier estimate: over all pairs where there
            // are enough, else the one shown.
            let size = levels
                .iter()
                .filter_map(|l| l.across.map(|a| a.0).or(l.ratio))
                .map(|r| r.ratio.ln().abs())
                .fold(0.0, f64::max);
            Effect {
                param,
                levels,
                size,
            }
        })
        .collect();
    out.sort_by(|a, b| b.size.total_cmp(&a.size));
    out
}

fn commonest<'a>(items: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for item in items {
        *counts.entry(item).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(item, _)| item.to_string())
}

/// What the data says about a claim.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Supported,
    Contradicted,
    NoMeasurableDifference,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Supported => "supported",
            Verdict::Contradicted => "contradicted",
            Verdict::NoMeasurableDifference => "no measurable difference",
        }
    }
}

/// A tuning guide's claim checked against the sweep.
#[derive(Debug, Clone)]
pub struct Claim {
    pub claim: &'static str,
    pub verdict: Verdict,
    /// What was compared and the measured ratio.
    pub finding: String,
}

/// The claims the sweep covers: it must have measured at least two values
/// of the parameter the claim is about.
pub fn claims(rows: &[TrialRow], objective: &Objective, winner: &TrialRow) -> Vec<Claim> {
    // (claim, parameter, whether the claim favours the parameter's larger value)
    const CLAIMS: [(&str, &str, bool); 3] = [
        (
            "A higher-precision quantization (larger file) is faster",
            "model",
            true,
        ),
        ("A smaller n_ctx is faster", "n_ctx", false),
        ("A larger n_batch is faster", "n_batch", true),
    ];
    let unit = objective.metric.name();
    let params = swept_params(rows);
    CLAIMS
        .iter()
        .filter_map(|&(claim, column, larger_wins)| {
            let param = params.iter().find(|p| p.covers(column))?;
            let values = ordered_values(rows, param);
            let measured: Vec<&String> = values
                .iter()
                .filter(|v| {
                    rows.iter()
                        .any(|r| param.value(r) == **v && objective.score(r).is_some())
                })
                .collect();
            if measured.len() < 2 {
                return None;
            }
            let (small, large) = (measured[0], measured[measured.len() - 1]);
            let (favoured, other) = if larger_wins {
                (large, small)
            } else {
                (small, large)
            };
            let contexts = Contexts::new(rows, param, objective);
            let (ratio, basis) = contexts.estimate(rows, objective, winner, favoured, other)?;
            // Oriented: above 1 means the favoured value is better.
            let better = match objective.direction {
                Direction::Maximize => ratio,
                Direction::Minimize => ratio.inverted(),
            };
            let verdict = if !better.significant() {
                Verdict::NoMeasurableDifference
            } else if better.ratio > 1.0 {
                Verdict::Supported
            } else {
                Verdict::Contradicted
            };
            let name = &param.name;
            Some(Claim {
                claim,
                verdict,
                finding: format!(
                    "{name} {favoured} measured {} the {unit} of {name} {other} ({})",
                    ratio.describe(),
                    basis.describe()
                ),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::row;

    /// A row with `tg` t/s (samples ±1%) and the given parameters.
    fn trial(id: &str, variant: &str, size: u64, n_batch: u32, n_ctx: u32, tg: f64) -> TrialRow {
        let mut r = row(id, &mock::measured(tg, 500.0));
        r.model_variant = variant.into();
        r.model_size_bytes = Some(size);
        r.params.set(crate::knobs::N_BATCH, (n_batch).into());
        r.params.set(crate::knobs::N_CTX, (n_ctx).into());
        r.tg_tps_mean = Some(tg);
        r.tg_tps_samples = format!("{};{};{}", tg * 0.99, tg, tg * 1.01);
        r
    }

    fn grid() -> Vec<TrialRow> {
        // n_batch has no effect; Q8_0 (larger) is 20% slower; n_ctx none.
        let mut rows = Vec::new();
        for (variant, size, speed) in [("Q4_0", 100, 200.0), ("Q8_0", 200, 160.0)] {
            for n_batch in [64, 256] {
                for n_ctx in [512, 2048] {
                    let id = format!("{variant}-{n_batch}-{n_ctx}");
                    rows.push(trial(&id, variant, size, n_batch, n_ctx, speed));
                }
            }
        }
        rows
    }

    #[test]
    fn the_parameter_that_matters_ranks_first_with_its_ratio() {
        let rows = grid();
        let objective = Objective::default();
        let effects = effects(&rows, &objective, &rows[0]);
        assert_eq!(effects[0].param.name, "model");
        let q8 = effects[0]
            .levels
            .iter()
            .find(|l| l.value.ends_with("Q8_0"))
            .unwrap();
        let r = q8.ratio.unwrap();
        assert!((r.ratio - 0.8).abs() < 0.01, "{r:?}");
        assert!(r.significant());
        assert_eq!(q8.basis, Some(Basis::Neighbour));
        let (across, pairs) = q8.across.unwrap();
        assert_eq!(pairs, 4);
        assert!((across.ratio - 0.8).abs() < 0.01 && across.significant());
        let batch = effects.iter().find(|e| e.param.name == "n_batch").unwrap();
        assert!(batch.size < 0.01, "{batch:?}");
        assert!(batch.levels.iter().any(|l| l.is_winner && l.value == "64"));
    }

    #[test]
    fn without_the_neighbour_pairs_then_marginals_are_used() {
        let mut rows = grid();
        // Drop the winner's Q8_0 neighbour: the other pairs remain.
        rows.retain(|r| r.trial_id != "Q8_0-64-512");
        let objective = Objective::default();
        let effects = effects(&rows, &objective, &rows[0]);
        let model = effects.iter().find(|e| e.param.name == "model").unwrap();
        let q8 = model.levels.iter().find(|l| !l.is_winner).unwrap();
        assert_eq!(q8.basis, Some(Basis::Paired(3)));
        assert!((q8.ratio.unwrap().ratio - 0.8).abs() < 0.01);
        // Only one Q8_0 trial left, in another context: marginal.
        let sparse: Vec<TrialRow> = grid()
            .into_iter()
            .filter(|r| r.model_variant == "Q4_0" || r.trial_id == "Q8_0-256-2048")
            .collect();
        let effects = super::effects(&sparse, &objective, &sparse[0]);
        let model = effects.iter().find(|e| e.param.name == "model").unwrap();
        let q8 = model.levels.iter().find(|l| !l.is_winner).unwrap();
        assert_eq!(q8.basis, Some(Basis::Marginal(1, 4)));
    }

    #[test]
    fn failures_are_counted_per_level() {
        let mut rows = grid();
        rows[4].status = crate::runner::TrialStatus::Oom;
        let effects = effects(&rows, &Objective::default(), &rows[0]);
        let model = effects.iter().find(|e| e.param.name == "model").unwrap();
        let q8 = model.levels.iter().find(|l| !l.is_winner).unwrap();
        assert_eq!((q8.failed, q8.failure.as_deref()), (1, Some("oom")));
    }

    #[test]
    fn claims_are_judged_by_the_data() {
        let rows = grid();
        let objective = Objective::default();
        let claims = claims(&rows, &objective, &rows[0]);
        assert_eq!(claims.len(), 3);
        let quant = &claims[0];
        assert_eq!(quant.verdict, Verdict::Contradicted, "{quant:?}");
        assert!(quant.finding.contains("Q8_0"), "{}", quant.finding);
        assert_eq!(claims[1].verdict, Verdict::NoMeasurableDifference);
        assert_eq!(claims[2].verdict, Verdict::NoMeasurableDifference);
        // Minimizing latency flips what "faster" means: still contradicted
        // when the larger quant is slower (higher latency).
        let mut latency = grid();
        for r in latency.iter_mut() {
            let ms = 1000.0 / r.tg_tps_mean.unwrap();
            r.e2e_ms_mean = Some(ms);
            r.e2e_ms_samples = format!("{};{};{}", ms * 0.99, ms, ms * 1.01);
        }
        let minimize = Objective {
            metric: Metric::E2eMs,
            direction: Direction::Minimize,
            constraints: vec![],
        };
        let claims = super::claims(&latency, &minimize, &latency[0]);
        assert_eq!(claims[0].verdict, Verdict::Contradicted, "{:?}", claims[0]);
    }

    #[test]
    fn a_claim_needs_two_measured_values() {
        let rows: Vec<TrialRow> = grid()
            .into_iter()
            .filter(|r| {
                r.params.int(crate::knobs::N_CTX) == 512
                    && r.params.int(crate::knobs::N_BATCH) == 64
            })
            .collect();
        let claims = claims(&rows, &Objective::default(), &rows[0]);
        assert_eq!(claims.len(), 1, "{claims:?}");
    }

    #[test]
    fn parameters_always_moved_together_are_one() {
        let mut rows = grid();
        for r in rows.iter_mut() {
            r.params.set(
                crate::knobs::N_UBATCH,
                (r.params.int(crate::knobs::N_BATCH)).into(),
            );
        }
        let names: Vec<String> = swept_params(&rows).into_iter().map(|p| p.name).collect();
        assert_eq!(names, ["model", "n_ctx", "n_batch & n_ubatch"]);
        let group = swept_params(&rows).pop().unwrap();
        assert_eq!(group.value(&rows[1]), "64");
        assert_eq!(group.slug(), "n_batch+n_ubatch");
        // Moved independently once: two parameters again.
        rows[0].params.set(crate::knobs::N_UBATCH, (32).into());
        assert_eq!(swept_params(&rows).len(), 4);
    }

    #[test]
    fn values_are_ordered_naturally() {
        let rows = grid();
        let params = swept_params(&rows);
        assert_eq!(ordered_values(&rows, &params[0]), ["m Q4_0", "m Q8_0"]);
        assert_eq!(ordered_values(&rows, &params[2]), ["64", "256"]);
    }
}
