//! `status`'s lines on the leader: the best trial of the sweep, and, once a
//! confirmation round has decided (recommendation.json), the trial it
//! recommended — the one config.yaml holds, which need not be the sweep's
//! best: the round measures the best few again and picks on those runs.

use crate::confirm::Recommendation;
use crate::objective::{Measured, Objective};
use crate::store::row::TrialRow;
use std::fmt::Write;

/// The lines; `rows` are every row of the folder (a reference trial can be
/// recommended too), `current` those of the plan, which are ranked.
pub fn lines(
    rows: &[TrialRow],
    current: &[TrialRow],
    objective: &Objective,
    recommendation: Option<&Recommendation>,
    running: bool,
) -> String {
    let mut out = String::new();
    let best = objective.rank(current).first().map(|&i| &current[i]);
    let Some(recommendation) = recommendation else {
        let _ = writeln!(out, "Best so far: {}", describe_best(best, objective));
        return out;
    };
    let (best_label, recommended_label) = if running {
        ("Best so far", "Recommended by the last confirmation round")
    } else {
        ("Best in the sweep", "Recommended (confirmed)")
    };
    let _ = writeln!(out, "{best_label}: {}", describe_best(best, objective));
    let id = &recommendation.trial_id;
    let which = if best.is_some_and(|b| &b.trial_id == id) {
        format!("{id}, the sweep's best")
    } else {
        rows.iter()
            .find(|r| &r.trial_id == id)
            .map_or(id.clone(), |row| {
                format!("{id} {} {}", row.model_name, row.model_variant)
            })
    };
    let unit = if recommendation.metric == objective.metric.name() {
        format!(" {}", objective.metric.unit())
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{recommended_label}: {which}: {} {:.1}{unit} over {} confirmation runs",
        recommendation.metric, recommendation.value, recommendation.runs
    );
    out
}

/// `a m Q4_1: tg_tps 100.0 ± 1.0 t/s`.
fn describe_best(best: Option<&TrialRow>, objective: &Objective) -> String {
    let Some(best) = best else {
        return "none feasible yet".into();
    };
    let sd = best
        .sd_of(objective.metric)
        .map(|sd| format!(" ± {sd:.1}"))
        .unwrap_or_default();
    format!(
        "{} {} {}: {} {:.1}{sd} {}",
        best.trial_id,
        best.model_name,
        best.model_variant,
        objective.metric,
        best.mean_of(objective.metric).unwrap_or(0.0),
        objective.metric.unit()
    )
}
