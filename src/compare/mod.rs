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
//! a 95% confidence interval (Welch on the logarithms of the per-repetition
//! samples, so it reads as a ratio), and the geometric mean of those ratios
//! says how the whole space moved. Pure logic: [`render`] writes it.

pub mod render;

use crate::objective::{Direction, Measured, Metric, Objective};
use crate::stats::{self, RatioInterval, Summary, t_quantile_975};
use crate::store::row::{TrialRow, split_samples};
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

/// A configuration's measurement of the metric in one sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    pub mean: f64,
    pub sd: Option<f64>,
    pub n: Option<u32>,
    /// Per-repetition values; empty when the row has none for the metric.
    pub samples: Vec<f64>,
}

/// Why a configuration has no measurement in one sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// The row's status (`oom`, `crashed` ...; `ok` when the metric itself
    /// is missing).
    pub status: String,
    pub reason: String,
}

fn samples_of(row: &TrialRow, metric: Metric) -> Vec<f64> {
    split_samples(row.samples_cell(metric))
}

fn measure(row: &TrialRow, metric: Metric) -> Result<Measurement, Failure> {
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
        Some(mean) => Ok(Measurement {
            mean,
            sd: row.sd_of(metric),
            n: row.n_samples,
            samples: samples_of(row, metric),
        }),
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

/// B / A with its 95% interval: from the samples where both sides have
/// them, else from mean ± sd.
fn ratio_of(a: &Measurement, b: &Measurement) -> RatioInterval {
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
    pub verdict: Verdict,
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
/// both sweeps were measured for (from their manifests; tg_tps when neither
/// has one). Different metrics are an error: their ratios mean different
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
pub fn compare(
    a: &[TrialRow],
    b: &[TrialRow],
    objective: &Objective,
) -> anyhow::Result<Comparison> {
    let metric = objective.metric;
    let (rows_a, rows_b) = (by_key(a), by_key(b));
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
    for key in &keys {
        let key = (*key).clone();
        match (rows_a.get(&key), rows_b.get(&key)) {
            (Some(ra), Some(rb)) => match (measure(ra, metric), measure(rb, metric)) {
                (Ok(ma), Ok(mb)) => {
                    let ratio = ratio_of(&ma, &mb);
                    let improved = match objective.direction {
                        Direction::Maximize => ratio.ratio > 1.0,
                        Direction::Minimize => ratio.ratio < 1.0,
                    };
                    let verdict = match (ratio.significant(), improved) {
                        (false, _) => Verdict::Unchanged,
                        (true, true) => Verdict::Better,
                        (true, false) => Verdict::Worse,
                    };
                    comparison.changes.push(Change {
                        key,
                        a: ma,
                        b: mb,
                        ratio,
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
        size(y)
            .total_cmp(&size(x))
            .then(y.ratio.significant().cmp(&x.ratio.significant()))
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
