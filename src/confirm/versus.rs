//! The recommendation against the reference trials (the user's baseline,
//! llama-server's defaults), on the runs of the same interleaved confirmation
//! rounds: a ratio oriented so that above 1 means the recommendation is
//! better, whatever the metric's direction, with its 95% interval.

use crate::objective::Objective;
use crate::plan::references::Role;
use crate::search::core::orient;
use crate::stats::{Summary, ratio_of_logs};
use serde::{Deserialize, Serialize};

/// How the recommendation compares with one reference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Versus {
    pub role: Role,
    pub trial_id: String,
    /// Geometric mean of the reference's confirmation runs.
    pub value: f64,
    /// How many times better the recommendation is (>1 is better, whatever
    /// the direction); 1 when the reference is the recommendation.
    pub ratio: f64,
    /// The 95% confidence interval of `ratio` (none with fewer than two
    /// runs on a side).
    pub ratio_low: Option<f64>,
    pub ratio_high: Option<f64>,
    /// The reference's confirmation runs that measured the metric.
    pub runs: usize,
}

/// A reference's confirmation runs, as logarithms of the metric.
pub struct Measured<'a> {
    pub role: Role,
    pub trial_id: &'a str,
    pub logs: &'a [f64],
}

/// The comparison of the chosen trial (`chosen_logs`) with `reference`;
/// `None` when the reference has no measured run.
pub fn compare(
    objective: &Objective,
    chosen_id: &str,
    chosen_logs: &[f64],
    reference: &Measured,
) -> Option<Versus> {
    let value = Summary::of(reference.logs)?.mean.exp();
    let runs = reference.logs.len();
    let (ratio, ratio_low, ratio_high) = if reference.trial_id == chosen_id {
        (1.0, Some(1.0), Some(1.0))
    } else {
        let r = ratio_of_logs(chosen_logs, reference.logs)?;
        let turn = |x: f64| orient(objective, x.ln()).exp();
        let (low, high) = match (r.low, r.high) {
            (Some(l), Some(h)) => (Some(turn(l).min(turn(h))), Some(turn(l).max(turn(h)))),
            _ => (None, None),
        };
        (turn(r.ratio), low, high)
    };
    Some(Versus {
        role: reference.role,
        trial_id: reference.trial_id.to_string(),
        value,
        ratio,
        ratio_low,
        ratio_high,
        runs,
    })
}

/// The verdict's clause: `2.70× your baseline (95% CI 2.61–2.80×)`, or `it
/// is your baseline` when the recommendation is that trial.
pub fn clause(v: &Versus, chosen_id: &str) -> String {
    if v.trial_id == chosen_id {
        return format!("it is {}", v.role.phrase());
    }
    let ci = match (v.ratio_low, v.ratio_high) {
        (Some(l), Some(h)) => format!("95% CI {l:.2}–{h:.2}×"),
        _ => "too few runs for an interval".into(),
    };
    format!("{:.2}× {} ({ci})", v.ratio, v.role.phrase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::{Direction, Metric};

    fn logs(values: &[f64]) -> Vec<f64> {
        values.iter().map(|v| v.ln()).collect()
    }

    #[test]
    fn the_ratio_reads_better_is_above_one_in_both_directions() {
        let fast = logs(&[200.0, 202.0, 198.0]);
        let slow = logs(&[100.0, 101.0, 99.0]);
        let reference = Measured {
            role: Role::Baseline,
            trial_id: "base",
            logs: &slow,
        };
        let v = compare(&Objective::default(), "best", &fast, &reference).unwrap();
        assert!((v.ratio - 2.0).abs() < 0.02, "{v:?}");
        assert!(
            v.ratio_low.unwrap() > 1.9 && v.ratio_high.unwrap() < 2.1,
            "{v:?}"
        );
        assert!((v.value - 100.0).abs() < 0.1 && v.runs == 3, "{v:?}");
        assert!(
            clause(&v, "best").starts_with("2.00× your baseline (95% CI 1.9"),
            "{}",
            clause(&v, "best")
        );

        // Latency: the recommendation takes half the time of the reference.
        let latency = Objective {
            metric: Metric::E2eMs,
            direction: Direction::Minimize,
            constraints: Vec::new(),
        };
        let reference = Measured {
            role: Role::Defaults,
            trial_id: "defaults",
            logs: &fast,
        };
        let v = compare(&latency, "best", &slow, &reference).unwrap();
        assert!((v.ratio - 2.0).abs() < 0.02, "{v:?}");
        assert!(v.ratio_low.unwrap() > 1.0 && v.ratio_low < v.ratio_high);
        assert!(clause(&v, "best").contains("× llama-server's defaults (95% CI"));
    }

    #[test]
    fn a_reference_that_is_the_recommendation_is_one_and_unmeasured_is_none() {
        let runs = logs(&[150.0, 140.0]);
        let reference = Measured {
            role: Role::Baseline,
            trial_id: "same",
            logs: &runs,
        };
        let v = compare(&Objective::default(), "same", &runs, &reference).unwrap();
        assert_eq!(
            (v.ratio, v.ratio_low, v.ratio_high),
            (1.0, Some(1.0), Some(1.0))
        );
        assert_eq!(clause(&v, "same"), "it is your baseline");
        let none = Measured {
            role: Role::Baseline,
            trial_id: "base",
            logs: &[],
        };
        assert!(compare(&Objective::default(), "same", &runs, &none).is_none());
        let one = logs(&[75.0]);
        let single = Measured {
            role: Role::Baseline,
            trial_id: "base",
            logs: &one,
        };
        let v = compare(&Objective::default(), "same", &runs, &single).unwrap();
        assert!(v.ratio_low.is_none());
        assert!(clause(&v, "same").contains("too few runs"));
    }
}
