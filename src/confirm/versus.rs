//! The recommendation against the reference trials (the user's baseline,
//! llama-server's defaults), on the runs of the same interleaved confirmation
//! rounds: a ratio oriented so that above 1 means the recommendation is
//! better, whatever the metric's direction, with its 95% interval, paired by
//! round (a slow minute of the machine hits both runs of a round alike).

use super::sequential::{Finding, Rule};
use crate::objective::Objective;
use crate::plan::references::Role;
use crate::search::core::orient_ratio;
use crate::stats::{Summary, ratio_by_rounds};
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
    /// The rounds the interval pairs (0: over all runs, unpaired).
    #[serde(default)]
    pub paired_rounds: usize,
}

/// A reference's confirmation runs by round, as logarithms of the metric
/// (`None`: not measured in that round).
pub struct Measured<'a> {
    pub role: Role,
    pub trial_id: &'a str,
    pub rounds: &'a [Option<f64>],
}

/// The comparison of the chosen trial (its runs by round, `chosen_rounds`)
/// with `reference`, its interval `rule`'s; `None` when the reference has
/// no measured run.
pub fn compare(
    objective: &Objective,
    chosen_id: &str,
    chosen_rounds: &[Option<f64>],
    reference: &Measured,
    rule: Rule,
) -> Option<Versus> {
    let logs: Vec<f64> = reference.rounds.iter().flatten().copied().collect();
    let value = Summary::of(&logs)?.mean.exp();
    let runs = logs.len();
    let (ratio, ratio_low, ratio_high, paired_rounds) = if reference.trial_id == chosen_id {
        (1.0, Some(1.0), Some(1.0), 0)
    } else {
        let (r, paired) = ratio_by_rounds(chosen_rounds, reference.rounds, rule.alpha)?;
        let r = orient_ratio(objective, r);
        (r.ratio, r.low, r.high, paired)
    };
    Some(Versus {
        role: reference.role,
        trial_id: reference.trial_id.to_string(),
        value,
        ratio,
        ratio_low,
        ratio_high,
        runs,
        paired_rounds,
    })
}

/// The verdict's clause: `2.70× your baseline (95% CI 2.61–2.80×)`, `it
/// is your baseline` when the recommendation is that trial, or `within 3%
/// of llama-server's defaults (1.01×, 95% CI ...)` when the interval lies
/// inside the equivalence margin of `rule`.
pub fn clause(v: &Versus, chosen_id: &str, rule: Rule) -> String {
    if v.trial_id == chosen_id {
        return format!("it is {}", v.role.phrase());
    }
    let ci = match (v.ratio_low, v.ratio_high) {
        (Some(l), Some(h)) => format!("95% CI {l:.2}–{h:.2}×{}", paired_over(v.paired_rounds)),
        _ => "too few runs for an interval".into(),
    };
    if rule.finding(v.ratio_low, v.ratio_high) == Finding::Equivalent {
        return format!(
            "within {} of {} ({:.2}×, {ci})",
            margin_pct(rule.margin),
            v.role.phrase(),
            v.ratio
        );
    }
    format!("{:.2}× {} ({ci})", v.ratio, v.role.phrase())
}

/// `3%`, `2.5%`.
pub fn margin_pct(margin: f64) -> String {
    format!("{}%", (margin * 1000.0).round() / 10.0)
}

/// How an interval was reached, after its bounds: `, paired over 3
/// rounds`, or `, unpaired` when fewer than two rounds measured both.
pub fn paired_over(rounds: usize) -> String {
    match rounds {
        0 => ", unpaired".into(),
        n => format!(", paired over {n} rounds"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::{Direction, Metric};

    const RULE: Rule = Rule {
        alpha: 0.05,
        margin: 0.03,
    };

    fn logs(values: &[f64]) -> Vec<Option<f64>> {
        values.iter().map(|v| Some(v.ln())).collect()
    }

    #[test]
    fn the_ratio_reads_better_is_above_one_in_both_directions() {
        // Each round's pair is 2× apart; the rounds themselves swing.
        let fast = logs(&[200.0, 180.0, 212.0]);
        let slow = logs(&[100.5, 89.0, 106.5]);
        let reference = Measured {
            role: Role::Baseline,
            trial_id: "base",
            rounds: &slow,
        };
        let v = compare(&Objective::default(), "best", &fast, &reference, RULE).unwrap();
        assert!((v.ratio - 2.0).abs() < 0.02, "{v:?}");
        assert!(
            v.ratio_low.unwrap() > 1.9 && v.ratio_high.unwrap() < 2.1,
            "{v:?}"
        );
        assert!((v.value - 98.4).abs() < 0.1 && v.runs == 3, "{v:?}");
        assert_eq!(v.paired_rounds, 3);
        assert!(
            clause(&v, "best", RULE).starts_with("2.00× your baseline (95% CI 1.9"),
            "{}",
            clause(&v, "best", RULE)
        );
        assert!(
            clause(&v, "best", RULE).ends_with(", paired over 3 rounds)"),
            "{}",
            clause(&v, "best", RULE)
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
            rounds: &fast,
        };
        let v = compare(&latency, "best", &slow, &reference, RULE).unwrap();
        assert!((v.ratio - 2.0).abs() < 0.02, "{v:?}");
        assert!(v.ratio_low.unwrap() > 1.0 && v.ratio_low < v.ratio_high);
        assert!(clause(&v, "best", RULE).contains("× llama-server's defaults (95% CI"));
    }

    #[test]
    fn a_reference_that_is_the_recommendation_is_one_and_unmeasured_is_none() {
        let runs = logs(&[150.0, 140.0]);
        let reference = Measured {
            role: Role::Baseline,
            trial_id: "same",
            rounds: &runs,
        };
        let v = compare(&Objective::default(), "same", &runs, &reference, RULE).unwrap();
        assert_eq!(
            (v.ratio, v.ratio_low, v.ratio_high),
            (1.0, Some(1.0), Some(1.0))
        );
        assert_eq!(clause(&v, "same", RULE), "it is your baseline");
        let none = Measured {
            role: Role::Baseline,
            trial_id: "base",
            rounds: &[],
        };
        assert!(compare(&Objective::default(), "same", &runs, &none, RULE).is_none());
        let one = logs(&[75.0]);
        let single = Measured {
            role: Role::Baseline,
            trial_id: "base",
            rounds: &one,
        };
        let v = compare(&Objective::default(), "same", &runs, &single, RULE).unwrap();
        assert!(v.ratio_low.is_none());
        assert!(clause(&v, "same", RULE).contains("too few runs"));
    }
}
