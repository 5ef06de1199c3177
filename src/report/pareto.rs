//! Pareto fronts of the objective against a cost where less is better —
//! memory, or the quality lost (KL divergence): the trials no other trial
//! beats on both at once. Memory is what the configuration occupies on the
//! device it runs on: device memory where a GPU was used, else peak RSS.

use crate::objective::{Direction, Objective};
use crate::store::row::TrialRow;

/// The memory a trial used, in MiB.
pub fn memory_mib(row: &TrialRow) -> Option<f64> {
    row.device_memory_mib
        .filter(|m| *m > 0.0)
        .or(row.peak_rss_mib)
}

/// Indices of the feasible rows on the memory front, by increasing memory.
pub fn front(rows: &[TrialRow], objective: &Objective) -> Vec<usize> {
    front_by(rows, objective, memory_mib)
}

/// Indices of the feasible rows on the front of the objective against
/// `cost` (smaller is better), by increasing cost.
pub fn front_by(
    rows: &[TrialRow],
    objective: &Objective,
    cost: impl Fn(&TrialRow) -> Option<f64>,
) -> Vec<usize> {
    let mut points: Vec<(usize, f64, f64)> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.feasible)
        .filter_map(|(i, r)| {
            let score = objective.score(r)?;
            let better = match objective.direction {
                Direction::Maximize => score,
                Direction::Minimize => -score,
            };
            Some((i, cost(r).filter(|c| c.is_finite())?, better))
        })
        .collect();
    // By cost, then best first, so the first of equal cost wins.
    points.sort_by(|a, b| a.1.total_cmp(&b.1).then(b.2.total_cmp(&a.2)));
    let mut out = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for (i, _, better) in points {
        if better > best {
            best = better;
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::Metric;
    use crate::runner::mock;
    use crate::test_support::row;

    fn trial(id: &str, rss: f64, tg: f64) -> TrialRow {
        let mut r = row(id, &mock::measured(tg, 500.0));
        r.peak_rss_mib = Some(rss);
        r.tg_tps_mean = Some(tg);
        r.e2e_ms_mean = Some(1000.0 / tg);
        r.feasible = true;
        r
    }

    #[test]
    fn keeps_only_trials_nothing_beats_on_both() {
        let rows = vec![
            trial("small-slow", 100.0, 50.0),
            trial("dominated", 300.0, 60.0),
            trial("mid", 200.0, 80.0),
            trial("big-fast", 400.0, 90.0),
            trial("big-slow", 400.0, 70.0),
        ];
        let front = front(&rows, &Objective::default());
        let ids: Vec<&str> = front.iter().map(|&i| rows[i].trial_id.as_str()).collect();
        assert_eq!(ids, ["small-slow", "mid", "big-fast"]);
    }

    #[test]
    fn minimizing_flips_the_direction_and_infeasible_rows_are_left_out() {
        let mut rows = vec![trial("a", 100.0, 50.0), trial("b", 200.0, 100.0)];
        rows[1].feasible = false;
        let latency = Objective {
            metric: Metric::E2eMs,
            direction: Direction::Minimize,
            constraints: vec![],
        };
        assert_eq!(front(&rows, &latency), [0]);
        rows[1].feasible = true;
        assert_eq!(front(&rows, &latency), [0, 1]);
    }

    #[test]
    fn a_front_over_kl_divergence_prefers_less_of_it() {
        let kld = |id, kld: Option<f64>, tg| {
            let mut r = trial(id, 100.0, tg);
            r.kld = kld;
            r
        };
        let rows = vec![
            kld("q8", Some(0.0), 60.0),
            kld("q4-slow", Some(0.05), 55.0),
            kld("q4", Some(0.05), 90.0),
            kld("q2", Some(0.4), 80.0),
            kld("unmeasured", None, 200.0),
            kld("q3", Some(0.2), 120.0),
        ];
        let front = front_by(&rows, &Objective::default(), |r| r.kld);
        let ids: Vec<&str> = front.iter().map(|&i| rows[i].trial_id.as_str()).collect();
        assert_eq!(ids, ["q8", "q4", "q3"]);
    }
}
