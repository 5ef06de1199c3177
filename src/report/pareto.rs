//! The Pareto front of speed against memory: the trials no other trial
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

/// Indices of the feasible rows on the front, by increasing memory.
pub fn front(rows: &[TrialRow], objective: &Objective) -> Vec<usize> {
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
            Some((i, memory_mib(r)?, better))
        })
        .collect();
    // By memory, then best first, so the first of equal memory wins.
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
}
