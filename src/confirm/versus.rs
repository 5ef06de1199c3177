//! The recommendation against the reference trials (the user's baseline,
//! llama-server's defaults), on the runs of the same interleaved confirmation
//! rounds: a ratio oriented so that above 1 means the recommendation is
//! better, whatever the metric's direction, with its 95% interval, paired by
//! round (a slow minute of the machine hits both runs of a round alike).

use super::sequential::{Finding, Rule};
use crate::objective::{Metric, Objective};
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

/// The verdict's clause on a reference: `it is your baseline` when the
/// recommendation is that trial, else [`reading`] of the ratio.
pub fn clause(v: &Versus, chosen_id: &str, metric: Metric, rule: Rule) -> String {
    if v.trial_id == chosen_id {
        return format!("it is {}", v.role.phrase());
    }
    reading(
        &Ratio {
            ratio: v.ratio,
            low: v.ratio_low,
            high: v.ratio_high,
            pairs: v.paired_rounds,
        },
        v.role.phrase(),
        metric,
        rule,
    )
}

/// A comparison's ratio (above 1: the recommendation is better) with its
/// interval and the pairs it was taken over.
pub struct Ratio {
    pub ratio: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub pairs: usize,
}

/// An interval whose ends are further apart than this (a factor) says
/// nothing a reader can use.
const UNINFORMATIVE: f64 = 3.0;

/// How a comparison with `other` reads, in words first: `1.65× faster than
/// your baseline (95% CI 1.58–1.72×, 24 pairs of blocks)`, `as fast as
/// llama-server's defaults, within 5% (1.01×, ...)`, `cannot be told apart
/// from it (1.03×, ...): too noisy to tell`, or, when the data cannot say
/// anything, why.
pub fn reading(r: &Ratio, other: &str, metric: Metric, rule: Rule) -> String {
    let (better, worse, same) = words(metric);
    let pairs = rule.pairing.count(r.pairs);
    let (Some(low), Some(high)) = (r.low, r.high) else {
        return format!("{other} could not be compared: too few runs for an interval ({pairs})");
    };
    let ci = format!("95% CI {low:.2}–{high:.2}×, {pairs}");
    match rule.finding(r.low, r.high) {
        Finding::Better => format!("{:.2}× {better} than {other} ({ci})", r.ratio),
        Finding::Worse => format!("{:.2}× {worse} than {other} ({ci})", 1.0 / r.ratio),
        Finding::Equivalent => format!(
            "{same} {other}, within {} ({:.2}×, {ci})",
            margin_pct(rule.margin),
            r.ratio
        ),
        Finding::Undecided if high / low > UNINFORMATIVE => format!(
            "nothing can be said yet against {other}: {pairs} were too few or too noisy to \
             bound the difference"
        ),
        Finding::Undecided => format!(
            "cannot be told apart from {other} ({:.2}×, {ci}): too noisy to tell whether the \
             difference is real",
            r.ratio
        ),
    }
}

/// How the metric's better, worse and equal read: `faster`, `slower`, `as
/// fast as`.
fn words(metric: Metric) -> (&'static str, &'static str, &'static str) {
    match metric.unit() {
        "t/s" => ("faster", "slower", "as fast as"),
        "ms" => ("quicker", "slower", "as quick as"),
        "MiB" => ("smaller", "larger", "as small as"),
        _ => ("better", "worse", "as good as"),
    }
}

/// `3%`, `2.5%`.
pub fn margin_pct(margin: f64) -> String {
    format!("{}%", (margin * 1000.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::confirm::sequential::Pairing;
    use crate::objective::{Direction, Metric};

    const RULE: Rule = Rule {
        alpha: 0.05,
        margin: 0.03,
        pairing: Pairing::Rounds,
    };
    const SPEED: Metric = Metric::RequestTps;

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
        let text = clause(&v, "best", SPEED, RULE);
        assert!(
            text.starts_with("2.00× faster than your baseline (95% CI 1.9"),
            "{text}"
        );
        assert!(text.ends_with(", 3 rounds)"), "{text}");

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
        let text = clause(&v, "best", Metric::E2eMs, RULE);
        assert!(
            text.starts_with("2.00× quicker than llama-server's defaults (95% CI"),
            "{text}"
        );
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
        assert_eq!(clause(&v, "same", SPEED, RULE), "it is your baseline");
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
        assert!(clause(&v, "same", SPEED, RULE).contains("too few runs"));
    }

    /// Every finding reads as words first: which is faster and by how much,
    /// that the two are the same within the margin, or why nothing could
    /// be decided; an interval too wide to mean anything is not printed.
    #[test]
    fn verdicts_say_in_words_what_was_decided() {
        let blocks = Rule {
            alpha: 0.05,
            margin: 0.05,
            pairing: Pairing::Blocks,
        };
        let r = |ratio, low, high| Ratio {
            ratio,
            low: Some(low),
            high: Some(high),
            pairs: 24,
        };
        let them = "the runner-up abc";
        assert_eq!(
            reading(&r(0.98, 0.96, 1.01), them, SPEED, blocks),
            "as fast as the runner-up abc, within 5% (0.98×, 95% CI 0.96–1.01×, 24 pairs of blocks)"
        );
        assert_eq!(
            reading(&r(0.5, 0.45, 0.55), "your baseline", SPEED, blocks),
            "2.00× slower than your baseline (95% CI 0.45–0.55×, 24 pairs of blocks)"
        );
        let noisy = reading(&r(1.03, 0.76, 1.39), them, SPEED, blocks);
        assert!(
            noisy.starts_with("cannot be told apart from the runner-up abc (1.03×")
                && noisy.ends_with("too noisy to tell whether the difference is real"),
            "{noisy}"
        );
        let nothing = reading(&r(1.23, 0.0001, 345.87), them, SPEED, blocks);
        assert_eq!(
            nothing,
            "nothing can be said yet against the runner-up abc: 24 pairs of blocks were too few \
             or too noisy to bound the difference"
        );
        assert!(!nothing.contains("345"));
    }
}
