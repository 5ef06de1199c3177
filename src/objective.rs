//! What "best" means: the metric to maximize or minimize and the constraints a
//! trial must meet to be recommended. Pure logic over measured values, so the
//! terminal summary, the exporter and later the search all agree.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

/// A measured quantity a sweep can optimize or constrain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum Metric {
    /// The app's request's generation speed, tokens/s: 1000 / its time per
    /// output token after the first (see `crate::request`). The default
    /// objective: what the app feels while an answer streams.
    RequestTps,
    /// Its time per output token after the first (vLLM's TPOT), ms.
    TpotMs,
    /// Tokens all of a round's requests got per second of the round
    /// (vLLM's output throughput); with one user, the request's tokens
    /// over its end to end.
    OutputTps,
    /// Generation speed of one sequence into an empty cache, tokens/s
    /// (llama-bench `tg`): a kernel benchmark, kept for parity.
    TgTps,
    /// Prompt processing speed, tokens/s (llama-bench `pp`); with
    /// n_parallel sequences, all of their prompts together.
    PpTps,
    /// Generation speed of all n_parallel sequences together, tokens/s
    /// (llama-batched-bench's S_TG).
    AggregateTps,
    /// Time to first token of the app's request, ms.
    TtftMs,
    /// Its 95th percentile over every request (n_parallel at once), ms.
    TtftMsP95,
    /// Median of the time between two tokens of a request, ms.
    ItlMsP50,
    /// 95th percentile of the time between two tokens of a request, ms.
    ItlMsP95,
    /// End-to-end latency of the app's request, ms.
    E2eMs,
    /// Peak resident memory of the trial process, MiB.
    PeakRssMib,
    /// Memory used on GPU devices, MiB.
    DeviceMemoryMib,
    /// Mean KL divergence of the variant from the sweep's most precise
    /// variant of the model (quality.csv).
    Kld,
    /// Perplexity above the most precise variant's, percent.
    PplIncreasePct,
    /// Top-1 token agreement with the most precise variant, percent.
    Top1Pct,
    /// A speed with every sequence's cache first filled with this many
    /// tokens (workload.n_depth): `tg_tps@4096`.
    AtDepth(Speed, u32),
}

/// The speeds measured at each depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Speed {
    Pp,
    Tg,
    Aggregate,
}

impl Speed {
    pub const ALL: [Speed; 3] = [Speed::Pp, Speed::Tg, Speed::Aggregate];

    /// The metric this speed is at depth 0.
    pub fn metric(self) -> Metric {
        match self {
            Speed::Pp => Metric::PpTps,
            Speed::Tg => Metric::TgTps,
            Speed::Aggregate => Metric::AggregateTps,
        }
    }
}

impl Metric {
    /// Every metric measured on an empty cache.
    pub const ALL: [Metric; 16] = [
        Metric::RequestTps,
        Metric::TpotMs,
        Metric::OutputTps,
        Metric::TgTps,
        Metric::PpTps,
        Metric::AggregateTps,
        Metric::TtftMs,
        Metric::TtftMsP95,
        Metric::ItlMsP50,
        Metric::ItlMsP95,
        Metric::E2eMs,
        Metric::PeakRssMib,
        Metric::DeviceMemoryMib,
        Metric::Kld,
        Metric::PplIncreasePct,
        Metric::Top1Pct,
    ];

    /// The quality metrics: measured once per variant, not per trial, so
    /// they bound the search (`kld_max` ...) but are not its objective.
    pub fn is_quality(self) -> bool {
        matches!(self, Metric::Kld | Metric::PplIncreasePct | Metric::Top1Pct)
    }

    /// The depth of the cache this metric is read at (0: empty).
    pub fn depth(self) -> u32 {
        match self {
            Metric::AtDepth(_, d) => d,
            _ => 0,
        }
    }

    pub fn name(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Metric::RequestTps => "request_tps",
            Metric::TpotMs => "tpot_ms",
            Metric::OutputTps => "output_tps",
            Metric::TgTps => "tg_tps",
            Metric::PpTps => "pp_tps",
            Metric::AggregateTps => "aggregate_tps",
            Metric::TtftMs => "ttft_ms",
            Metric::TtftMsP95 => "ttft_ms_p95",
            Metric::ItlMsP50 => "itl_ms_p50",
            Metric::ItlMsP95 => "itl_ms_p95",
            Metric::E2eMs => "e2e_ms",
            Metric::PeakRssMib => "peak_rss_mib",
            Metric::DeviceMemoryMib => "device_memory_mib",
            Metric::Kld => "kld",
            Metric::PplIncreasePct => "ppl_increase_pct",
            Metric::Top1Pct => "top1_pct",
            Metric::AtDepth(speed, d) => {
                return Cow::Owned(format!("{}@{d}", speed.metric().name()));
            }
        })
    }

    /// `tg_tps`, or a speed at a depth: `tg_tps@4096`.
    pub fn from_name(name: &str) -> Option<Metric> {
        if let Some((speed, depth)) = name.split_once('@') {
            let speed = Speed::ALL
                .into_iter()
                .find(|s| s.metric().name() == speed.trim())?;
            let depth: u32 = depth.trim().parse().ok()?;
            return Some(match depth {
                0 => speed.metric(),
                d => Metric::AtDepth(speed, d),
            });
        }
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::RequestTps
            | Metric::OutputTps
            | Metric::TgTps
            | Metric::PpTps
            | Metric::AggregateTps
            | Metric::AtDepth(..) => "t/s",
            Metric::TpotMs
            | Metric::TtftMs
            | Metric::TtftMsP95
            | Metric::ItlMsP50
            | Metric::ItlMsP95
            | Metric::E2eMs => "ms",
            Metric::PeakRssMib | Metric::DeviceMemoryMib => "MiB",
            Metric::Kld => "nats",
            Metric::PplIncreasePct | Metric::Top1Pct => "%",
        }
    }

    /// Speeds are maximized, latencies and memory minimized.
    pub fn natural_direction(self) -> Direction {
        match self {
            Metric::RequestTps
            | Metric::OutputTps
            | Metric::TgTps
            | Metric::PpTps
            | Metric::AggregateTps
            | Metric::AtDepth(..)
            | Metric::Top1Pct => Direction::Maximize,
            _ => Direction::Minimize,
        }
    }
}

impl From<Metric> for String {
    fn from(m: Metric) -> String {
        m.name().into_owned()
    }
}

impl TryFrom<String> for Metric {
    type Error = String;
    fn try_from(s: String) -> Result<Metric, String> {
        Metric::from_name(&s).ok_or_else(|| format!("unknown metric {s:?}"))
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Maximize,
    Minimize,
}

/// A bound a trial must respect to be recommended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub metric: Metric,
    pub bound: Bound,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtMost(f64),
    AtLeast(f64),
}

impl Constraint {
    /// Whether `value` (the trial's mean) satisfies the bound; a missing value
    /// does not.
    pub fn holds(&self, value: Option<f64>) -> bool {
        match (value, self.bound) {
            (Some(v), Bound::AtMost(limit)) => v <= limit,
            (Some(v), Bound::AtLeast(limit)) => v >= limit,
            (None, _) => false,
        }
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.metric.unit();
        match self.bound {
            Bound::AtMost(v) => write!(f, "{} ≤ {v} {unit}", self.metric),
            Bound::AtLeast(v) => write!(f, "{} ≥ {v} {unit}", self.metric),
        }
    }
}

/// Anything that has measured means of the metrics (a stored row).
pub trait Measured {
    fn mean_of(&self, metric: Metric) -> Option<f64>;
}

impl<T: Measured> Measured for &T {
    fn mean_of(&self, metric: Metric) -> Option<f64> {
        (*self).mean_of(metric)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    pub metric: Metric,
    pub direction: Direction,
    pub constraints: Vec<Constraint>,
}

impl Default for Objective {
    fn default() -> Self {
        Objective {
            metric: Metric::RequestTps,
            direction: Direction::Maximize,
            constraints: Vec::new(),
        }
    }
}

impl Objective {
    /// The constraints a trial breaks, described with its measured value.
    pub fn violations(&self, trial: &impl Measured) -> Vec<String> {
        self.constraints
            .iter()
            .filter_map(|c| {
                let value = trial.mean_of(c.metric);
                (!c.holds(value)).then(|| match value {
                    Some(v) if c.metric == Metric::Kld => format!("{c} (measured {v:.4})"),
                    Some(v) if c.metric.is_quality() => format!("{c} (measured {v:.2})"),
                    Some(v) => format!("{c} (measured {v:.1})"),
                    None => format!("{c} (not measured)"),
                })
            })
            .collect()
    }

    /// The objective value of a trial, if it was measured.
    pub fn score(&self, trial: &impl Measured) -> Option<f64> {
        trial.mean_of(self.metric).filter(|v| v.is_finite())
    }

    /// Orders scores best first.
    pub fn compare(&self, a: f64, b: f64) -> Ordering {
        match self.direction {
            Direction::Maximize => b.total_cmp(&a),
            Direction::Minimize => a.total_cmp(&b),
        }
    }

    /// Indices of the feasible, measured trials, best first. Ties keep the
    /// original order.
    pub fn rank<T: Measured>(&self, trials: &[T]) -> Vec<usize> {
        let mut ranked: Vec<(usize, f64)> = trials
            .iter()
            .enumerate()
            .filter(|(_, t)| self.violations(*t).is_empty())
            .filter_map(|(i, t)| self.score(t).map(|s| (i, s)))
            .collect();
        ranked.sort_by(|a, b| self.compare(a.1, b.1));
        ranked.into_iter().map(|(i, _)| i).collect()
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.direction {
            Direction::Maximize => "maximize",
            Direction::Minimize => "minimize",
        };
        write!(f, "{verb} {} ({})", self.metric, self.metric.unit())?;
        for c in &self.constraints {
            write!(f, ", {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct T {
        tg: Option<f64>,
        ttft: Option<f64>,
    }
    impl Measured for T {
        fn mean_of(&self, metric: Metric) -> Option<f64> {
            match metric {
                Metric::RequestTps => self.tg,
                Metric::TtftMs => self.ttft,
                _ => None,
            }
        }
    }

    fn t(tg: f64, ttft: f64) -> T {
        T {
            tg: Some(tg),
            ttft: Some(ttft),
        }
    }

    #[test]
    fn ranks_feasible_trials_best_first() {
        let objective = Objective {
            constraints: vec![Constraint {
                metric: Metric::TtftMs,
                bound: Bound::AtMost(500.0),
            }],
            ..Objective::default()
        };
        let trials = [
            t(100.0, 200.0),
            t(300.0, 900.0), // fastest but too slow to first token
            t(150.0, 499.0),
            T {
                tg: None,
                ttft: None,
            }, // failed
        ];
        assert_eq!(objective.rank(&trials), vec![2, 0]);
        let v = objective.violations(&trials[1]);
        assert_eq!(v.len(), 1);
        assert!(
            v[0].contains("ttft_ms ≤ 500 ms") && v[0].contains("900.0"),
            "{v:?}"
        );
        assert_eq!(
            objective.violations(&trials[3])[0],
            "ttft_ms ≤ 500 ms (not measured)"
        );
    }

    #[test]
    fn minimizing_puts_smallest_first() {
        let objective = Objective {
            metric: Metric::TtftMs,
            direction: Direction::Minimize,
            constraints: vec![],
        };
        assert_eq!(
            objective.rank(&[t(1.0, 30.0), t(1.0, 10.0), t(1.0, 20.0)]),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn bounds_are_inclusive() {
        let at_least = Constraint {
            metric: Metric::RequestTps,
            bound: Bound::AtLeast(10.0),
        };
        assert!(at_least.holds(Some(10.0)));
        assert!(!at_least.holds(Some(9.99)));
        assert!(!at_least.holds(None));
    }

    #[test]
    fn metric_names_round_trip() {
        for m in Metric::ALL {
            assert_eq!(Metric::from_name(&m.name()), Some(m));
        }
        let deep = Metric::AtDepth(Speed::Tg, 4096);
        assert_eq!(Metric::from_name("tg_tps@4096"), Some(deep));
        assert_eq!(deep.name(), "tg_tps@4096");
        assert_eq!(Metric::from_name("pp_tps@0"), Some(Metric::PpTps));
        assert_eq!(Metric::from_name("ttft_ms@4096"), None);
        assert_eq!(Metric::from_name("tg_tps@deep"), None);
        let json = serde_json::to_string(&deep).unwrap();
        assert_eq!(json, r#""tg_tps@4096""#);
        assert_eq!(serde_json::from_str::<Metric>(&json).unwrap(), deep);
    }
}
