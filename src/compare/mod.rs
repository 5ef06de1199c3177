//! Two sweeps of the same space compared configuration by configuration,
//! e.g. before and after a driver or llama.cpp upgrade: which
//! configurations got faster or slower, by how much, and whether the change
//! is real or noise.
//!
//! A configuration is the model (name and variant), every effective
//! parameter and the workload's token counts ([`ConfigKey`]); not the trial
//! id, which changes when the model file is rebuilt or moved, and not the
//! repetitions or warmup, which change only how precisely it was measured.
//! For each configuration that completed in both, B / A of the metric gets
//! a 95% confidence interval, on the logarithms so it reads as a ratio, and
//! the geometric mean of those ratios says how the whole space moved.
//!
//! The unit of an interval is a run: a separate process measuring the
//! configuration. The repetitions inside one run share its process, its
//! memory layout and the machine's state at that moment, so they vary less
//! than runs do, and an interval over them calls "better" and "worse" far
//! more often than it is true. Where a sweep measured a configuration more
//! than once (its confirmation round, its drift anchor), those runs are the
//! unit (Welch); for the other configurations, the run-to-run spread pooled
//! over those is; where neither sweep has any repeated run, per-configuration
//! intervals only show the precision of the repetitions and no change is
//! called on them. The geometric mean is tested over configurations, each a
//! run of its own. Pure logic: [`render`] writes it.
//!
//! A repetition is one value: for time to first token, the mean of its
//! n_parallel requests, which arrive together and queue for the same
//! batches, so that their spread is mostly their place in the queue and
//! they share the repetition's moment of the machine
//! ([`crate::store::row::per_repetition_means`]).

pub mod render;

use crate::objective::{Direction, Measured, Metric, Objective};
use crate::stats::{self, RatioInterval, Summary, t_quantile_975};
use crate::store::row::TrialRow;
use anyhow::bail;
use std::collections::{BTreeSet, HashMap};

/// What identifies a configuration across sweeps: `(column, value)` pairs
/// in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigKey(Vec<(String, String)>);

impl ConfigKey {
    pub fn of(row: &TrialRow) -> ConfigKey {
        let mut pairs = vec![
            ("model_name".to_string(), row.model_name.clone()),
            ("model_variant".to_string(), row.model_variant.clone()),
        ];
        // Every parameter, so that one added to EffectiveParams is part of
        // the key without a change here.
        let params = serde_json::to_value(row.effective_params()).expect("parameters serialize");
        for (name, value) in params
            .as_object()
            .expect("a struct serializes to an object")
        {
            let value = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            pairs.push((name.clone(), value));
        }
        for (name, value) in [
            ("prompt_tokens", row.prompt_tokens),
            ("gen_tokens", row.gen_tokens),
            ("request_prompt_tokens", row.request_prompt_tokens),
            ("request_max_tokens", row.request_max_tokens),
        ] {
            pairs.push((name.to_string(), value.to_string()));
        }
        ConfigKey(pairs)
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// `name=value` of the columns in `shown`, or the model when none is.
    pub fn label(&self, shown: &[String]) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(name, _)| shown.contains(name))
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        if parts.is_empty() {
            format!("{} {}", self.0[0].1, self.0[1].1)
        } else {
            parts.join(" ")
        }
    }
}

/// A sweep's rows, and the separate runs some of its trials had beyond
/// their row.
#[derive(Debug, Clone, Default)]
pub struct SweepData<'a> {
    pub rows: &'a [TrialRow],
    /// Trial id → the metric's value of each extra run (confirmation
    /// rounds, drift anchor checks).
    pub runs: HashMap<String, Vec<f64>>,
}

impl<'a> SweepData<'a> {
    /// Rows without extra runs.
    pub fn rows(rows: &'a [TrialRow]) -> SweepData<'a> {
        SweepData {
            rows,
            runs: HashMap::new(),
        }
    }
}

/// A configuration's measurement of the metric in one sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub mean: f64,
    /// The spread of the repetitions and their number: from `samples` where
    /// there are two or more, else the row's (a row of an earlier version
    /// stored TTFT's sd over every request).
    pub sd: Option<f64>,
    pub n: Option<u32>,
    /// One value per repetition (see the module's text); empty when the row
    /// has none for the metric.
    pub samples: Vec<f64>,
    /// The value of every separate run: the row's mean first.
    pub runs: Vec<f64>,
}

/// What a configuration's interval rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Separate runs in both sweeps (Welch on their logarithms).
    Runs,
    /// The run-to-run spread pooled over the configurations that have
    /// separate runs.
    PooledRuns,
    /// Only the repetitions of one run per sweep: the interval shows their
    /// precision, and no change is called on it.
    Repetitions,
}

impl Basis {
    pub fn name(self) -> &'static str {
        match self {
            Basis::Runs => "runs",
            Basis::PooledRuns => "pooled runs",
            Basis::Repetitions => "repetitions",
        }
    }
}

/// Why a configuration has no measurement in one sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The row's status (`oom`, `crashed` ...; `ok` when the metric itself
    /// is missing).
    pub status: String,
    pub reason: String,
}

fn measure(row: &TrialRow, metric: Metric, extra: &[f64]) -> Result<Measurement, Failure> {
    if !row.is_ok() {
        return Err(Failure {
            status: row.status.name().into(),
            reason: row
                .error
                .clone()
                .unwrap_or_else(|| "no reason recorded".into()),
        });
    }
    match row.mean_of(metric).filter(|m| m.is_finite()) {
        Some(mean) => {
            let samples = row.samples_of(metric);
            let spread = Summary::of(&samples).filter(|s| s.n >= 2);
            Ok(Measurement {
                mean,
                sd: spread.map(|s| s.stddev).or_else(|| row.sd_of(metric)),
                n: spread.map(|s| s.n as u32).or(row.n_samples),
                samples,
                runs: std::iter::once(mean)
                    .chain(extra.iter().copied().filter(|v| *v > 0.0 && v.is_finite()))
                    .collect(),
            })
        }
        None => Err(Failure {
            status: row.status.name().into(),
            reason: format!("{metric} not measured"),
        }),
    }
}

/// B / A from mean ± sd when a side has no samples: Welch's interval on the
/// logarithms, whose spread is about sd / mean (the delta method).
fn ratio_from_summaries(a: &Measurement, b: &Measurement) -> RatioInterval {
    let ratio = b.mean / a.mean;
    let log_spread = |m: &Measurement| match (m.sd, m.n) {
        (Some(sd), Some(n)) if n >= 2 && m.mean > 0.0 => {
            Some(((sd / m.mean).powi(2) / n as f64, n))
        }
        _ => None,
    };
    let (Some((va, na)), Some((vb, nb))) = (log_spread(a), log_spread(b)) else {
        return RatioInterval {
            ratio,
            low: None,
            high: None,
        };
    };
    let se = (va + vb).sqrt();
    let half = if se == 0.0 {
        0.0
    } else {
        let df = (va + vb).powi(2) / (va * va / (na - 1) as f64 + vb * vb / (nb - 1) as f64);
        t_quantile_975(df) * se
    };
    RatioInterval {
        ratio,
        low: Some(ratio * (-half).exp()),
        high: Some(ratio * half.exp()),
    }
}

/// B / A over repetitions: from the samples where both sides have them,
/// else from mean ± sd.
fn ratio_of_repetitions(a: &Measurement, b: &Measurement) -> RatioInterval {
    if !a.samples.is_empty()
        && !b.samples.is_empty()
        && let Some(r) = stats::ratio_of(&b.samples, &a.samples)
    {
        return r;
    }
    ratio_from_summaries(a, b)
}

/// Which way a configuration moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Significantly better by the objective's direction.
    Better,
    Worse,
    /// The interval includes "no change", or there is none.
    Unchanged,
}

/// A configuration measured in both sweeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub key: ConfigKey,
    pub a: Measurement,
    pub b: Measurement,
    /// B / A.
    pub ratio: RatioInterval,
    pub basis: Basis,
    pub verdict: Verdict,
}

/// The logarithms of positive values.
fn logs(values: &[f64]) -> Vec<f64> {
    values
        .iter()
        .filter(|v| **v > 0.0 && v.is_finite())
        .map(|v| v.ln())
        .collect()
}

/// The run-to-run variance of the logarithm, pooled over every
/// configuration of both sweeps that ran more than once, with its degrees
/// of freedom.
fn pooled_run_variance(measurements: &[&Measurement]) -> Option<(f64, f64)> {
    let (mut sum, mut df) = (0.0, 0.0);
    for m in measurements {
        let l = logs(&m.runs);
        if l.len() < 2 {
            continue;
        }
        let mean = l.iter().sum::<f64>() / l.len() as f64;
        sum += l.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
        df += (l.len() - 1) as f64;
    }
    (df > 0.0).then(|| (sum / df, df))
}

/// B / A on the unit the data allows (see the module's text).
fn ratio_of(
    a: &Measurement,
    b: &Measurement,
    pooled: Option<(f64, f64)>,
) -> (RatioInterval, Basis) {
    let (la, lb) = (logs(&a.runs), logs(&b.runs));
    if la.len() >= 2 && lb.len() >= 2 {
        if let Some(r) = stats::ratio_of_logs(&lb, &la) {
            return (r, Basis::Runs);
        }
    }
    if let (Some((variance, df)), false) = (pooled, la.is_empty() || lb.is_empty()) {
        let mean = |l: &[f64]| l.iter().sum::<f64>() / l.len() as f64;
        let d = mean(&lb) - mean(&la);
        let se = (variance * (1.0 / la.len() as f64 + 1.0 / lb.len() as f64)).sqrt();
        let half = t_quantile_975(df) * se;
        let interval = RatioInterval {
            ratio: d.exp(),
            low: Some((d - half).exp()),
            high: Some((d + half).exp()),
        };
        return (interval, Basis::PooledRuns);
    }
    (ratio_of_repetitions(a, b), Basis::Repetitions)
}

/// A configuration measured in one sweep but not in the other.
#[derive(Debug, Clone, PartialEq)]
pub struct OneSided {
    pub key: ConfigKey,
    /// The sweep it failed in: 'A' or 'B'.
    pub failed_in: char,
    pub failure: Failure,
    pub measured: Measurement,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub metric: Metric,
    pub direction: Direction,
    /// Measured in both, most changed first.
    pub changes: Vec<Change>,
    /// Geometric mean of the B / A ratios, with a 95% interval over the
    /// configurations (how consistently the space moved).
    pub overall: Option<RatioInterval>,
    pub failed_in_one: Vec<OneSided>,
    /// Failed in both: the key, A's failure and B's.
    pub failed_in_both: Vec<(ConfigKey, Failure, Failure)>,
    pub only_in_a: Vec<ConfigKey>,
    pub only_in_b: Vec<ConfigKey>,
    /// Key columns whose value differs between configurations: the ones
    /// worth showing.
    pub varying: Vec<String>,
}

impl Comparison {
    pub fn count(&self, verdict: Verdict) -> usize {
        self.changes.iter().filter(|c| c.verdict == verdict).count()
    }

    /// How the metric's better and worse changes are called.
    pub fn words(&self) -> (&'static str, &'static str) {
        match self.metric {
            Metric::PeakRssMib | Metric::DeviceMemoryMib => ("smaller", "larger"),
            _ => ("faster", "slower"),
        }
    }
}

/// The metric to compare on: `--metric` when given, else the objective
/// both sweeps were measured for (from their manifests; the default
/// objective, the request's generation speed, when neither has one). Different metrics are an error: their ratios mean different
/// things.
pub fn choose_objective(
    a: Option<&Objective>,
    b: Option<&Objective>,
    metric: Option<Metric>,
) -> anyhow::Result<Objective> {
    if let Some(metric) = metric {
        return Ok(Objective {
            metric,
            direction: metric.natural_direction(),
            constraints: Vec::new(),
        });
    }
    match (a, b) {
        (Some(a), Some(b)) if a.metric != b.metric => bail!(
            "A's sweep optimized {} and B's {}: their objectives' metrics differ, so there is \
             no one speed to compare; choose one with --metric (e.g. --metric {})",
            a.metric,
            b.metric,
            a.metric
        ),
        (Some(o), _) | (None, Some(o)) => Ok(Objective {
            constraints: Vec::new(),
            ..o.clone()
        }),
        (None, None) => Ok(Objective::default()),
    }
}

/// The rows of a sweep by configuration; the last row wins where one
/// configuration was recorded twice (a model rebuilt in place).
fn by_key(rows: &[TrialRow]) -> HashMap<ConfigKey, &TrialRow> {
    rows.iter().map(|r| (ConfigKey::of(r), r)).collect()
}

/// Key columns whose values in `a` and `b` have nothing in common: why two
/// sweeps share no configuration.
fn disjoint_columns(a: &[ConfigKey], b: &[ConfigKey]) -> Vec<String> {
    let values = |keys: &[ConfigKey], i: usize| -> BTreeSet<String> {
        keys.iter().map(|k| k.0[i].1.clone()).collect()
    };
    let Some(first) = a.first() else {
        return Vec::new();
    };
    (0..first.0.len())
        .filter_map(|i| {
            let (va, vb) = (values(a, i), values(b, i));
            va.is_disjoint(&vb).then(|| {
                let list = |v: &BTreeSet<String>| {
                    let mut v: Vec<&String> = v.iter().collect();
                    // Numbers in numeric order (16 before 128).
                    v.sort_by(|x, y| match (x.parse::<f64>(), y.parse::<f64>()) {
                        (Ok(x), Ok(y)) => x.total_cmp(&y),
                        _ => x.cmp(y),
                    });
                    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                };
                format!("{}: A has {}, B has {}", first.0[i].0, list(&va), list(&vb))
            })
        })
        .collect()
}

/// Compares sweep B against sweep A on `objective`'s metric.
pub fn compare(a: &SweepData, b: &SweepData, objective: &Objective) -> anyhow::Result<Comparison> {
    let metric = objective.metric;
    let (rows_a, rows_b) = (by_key(a.rows), by_key(b.rows));
    let mut keys: Vec<&ConfigKey> = rows_a.keys().chain(rows_b.keys()).collect();
    keys.sort();
    keys.dedup();
    if !keys
        .iter()
        .any(|k| rows_a.contains_key(*k) && rows_b.contains_key(*k))
    {
        let (ka, kb): (Vec<ConfigKey>, Vec<ConfigKey>) = (
            rows_a.keys().cloned().collect(),
            rows_b.keys().cloned().collect(),
        );
        let why = disjoint_columns(&ka, &kb);
        bail!(
            "A ({} configurations) and B ({}) share no configuration: compare needs two sweeps of \
             the same space (same models, parameters and workload token counts){}",
            ka.len(),
            kb.len(),
            if why.is_empty() {
                String::new()
            } else {
                format!("; they differ in {}", why.join("; "))
            }
        );
    }
    let mut comparison = Comparison {
        metric,
        direction: objective.direction,
        changes: Vec::new(),
        overall: None,
        failed_in_one: Vec::new(),
        failed_in_both: Vec::new(),
        only_in_a: Vec::new(),
        only_in_b: Vec::new(),
        varying: Vec::new(),
    };
    let extra = |sweep: &SweepData, row: &TrialRow| {
        sweep.runs.get(&row.trial_id).cloned().unwrap_or_default()
    };
    let measured: Vec<(Measurement, Measurement)> = keys
        .iter()
        .filter_map(|k| Some((rows_a.get(*k)?, rows_b.get(*k)?)))
        .filter_map(|(ra, rb)| {
            Some((
                measure(ra, metric, &extra(a, ra)).ok()?,
                measure(rb, metric, &extra(b, rb)).ok()?,
            ))
        })
        .collect();
    let pooled = pooled_run_variance(
        &measured
            .iter()
            .flat_map(|(ma, mb)| [ma, mb])
            .collect::<Vec<_>>(),
    );
    for key in &keys {
        let key = (*key).clone();
        match (rows_a.get(&key), rows_b.get(&key)) {
            (Some(ra), Some(rb)) => match (
                measure(ra, metric, &extra(a, ra)),
                measure(rb, metric, &extra(b, rb)),
            ) {
                (Ok(ma), Ok(mb)) => {
                    let (ratio, basis) = ratio_of(&ma, &mb, pooled);
                    let improved = match objective.direction {
                        Direction::Maximize => ratio.ratio > 1.0,
                        Direction::Minimize => ratio.ratio < 1.0,
                    };
                    let called = basis != Basis::Repetitions && ratio.significant();
                    let verdict = match (called, improved) {
                        (false, _) => Verdict::Unchanged,
                        (true, true) => Verdict::Better,
                        (true, false) => Verdict::Worse,
                    };
                    comparison.changes.push(Change {
                        key,
                        a: ma,
                        b: mb,
                        ratio,
                        basis,
                        verdict,
                    });
                }
                (Err(failure), Ok(measured)) => comparison.failed_in_one.push(OneSided {
                    key,
                    failed_in: 'A',
                    failure,
                    measured,
                }),
                (Ok(measured), Err(failure)) => comparison.failed_in_one.push(OneSided {
                    key,
                    failed_in: 'B',
                    failure,
                    measured,
                }),
                (Err(fa), Err(fb)) => comparison.failed_in_both.push((key, fa, fb)),
            },
            (Some(_), None) => comparison.only_in_a.push(key),
            (None, Some(_)) => comparison.only_in_b.push(key),
            (None, None) => unreachable!("every key comes from A or B"),
        }
    }
    // Most changed first; of equal changes, the significant ones.
    comparison.changes.sort_by(|x, y| {
        let size = |c: &Change| c.ratio.ratio.ln().abs();
        let called = |c: &Change| c.verdict != Verdict::Unchanged;
        size(y).total_cmp(&size(x)).then(called(y).cmp(&called(x)))
    });
    comparison.overall = overall(&comparison.changes);
    comparison.varying = varying(&keys);
    Ok(comparison)
}

/// The geometric mean of the ratios, with a t interval over configurations.
fn overall(changes: &[Change]) -> Option<RatioInterval> {
    let logs: Vec<f64> = changes.iter().map(|c| c.ratio.ratio.ln()).collect();
    let s = Summary::of(&logs)?;
    let (low, high) = if s.n >= 2 {
        let half = t_quantile_975((s.n - 1) as f64) * s.stddev / (s.n as f64).sqrt();
        (Some((s.mean - half).exp()), Some((s.mean + half).exp()))
    } else {
        (None, None)
    };
    Some(RatioInterval {
        ratio: s.mean.exp(),
        low,
        high,
    })
}

fn varying(keys: &[&ConfigKey]) -> Vec<String> {
    let Some(first) = keys.first() else {
        return Vec::new();
    };
    first
        .0
        .iter()
        .enumerate()
        .filter(|(i, (_, value))| keys.iter().any(|k| &k.0[*i].1 != value))
        .map(|(_, (name, _))| name.clone())
        .collect()
}

#[cfg(test)]
mod tests;
