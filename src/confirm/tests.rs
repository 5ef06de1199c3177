//! The confirmation round end to end over a mock executor: which candidate
//! wins, what the verdict says, what is written, and how failed runs, broken
//! constraints and memory of different kinds weigh in the decision.

use super::*;
use crate::objective::Objective;
use crate::plan::references::Role;
use crate::runner::Execution;
use crate::runner::mock::{self, MockExecutor};
use crate::sweep::Silent;
use crate::test_support::{defaults, row, spec};

pub(super) static DEFAULT_ORIGIN: crate::workers::Origin = crate::workers::Origin {
    host: String::new(),
    worker: String::new(),
    machine_id: String::new(),
    machine: String::new(),
};

/// What the rows of a round in a test record.
fn facts<'a>(
    objective: &'a Objective,
    defaults: &'a crate::knobs::EffectiveParams,
) -> RowFacts<'a> {
    RowFacts {
        sweep_name: "s",
        build: "test",
        defaults,
        objective,
        noise_cv_max: f64::INFINITY,
        facts: None,
        origin: &DEFAULT_ORIGIN,
        quiet: None,
    }
}
use std::cell::Cell;

fn rows(values: &[(&str, f64, f64)]) -> Vec<TrialRow> {
    values
        .iter()
        .map(|(id, tg, rss)| {
            let mut r = row(id, &mock::measured(*tg, 100.0));
            r.peak_rss_mib = Some(*rss);
            r
        })
        .collect()
}

/// The round over `ranked` with the default settings.
fn confirm_all(ranked: &[&TrialRow], executor: &mut dyn Executor, folder: &Path) -> Confirmation {
    let settings = ConfirmSettings::default();
    let objective = Objective::default();
    confirm(
        ranked,
        &[],
        &|id| Some(spec(id)),
        executor,
        folder,
        &facts(&objective, &defaults()),
        &settings,
        &mut Silent,
        None,
    )
    .unwrap()
}

fn run_round(rows: &[TrialRow], truth: impl Fn(&str) -> f64) -> (Recommendation, usize) {
    let dir = tempfile::tempdir().unwrap();
    let ranked: Vec<&TrialRow> = rows.iter().collect();
    let calls = Cell::new(0);
    let mut executor = MockExecutor::new(|s: &TrialSpec| {
        calls.set(calls.get() + 1);
        // A little noise that differs per call.
        let wobble = 1.0 + 0.004 * ((calls.get() % 3) as f64 - 1.0);
        Execution::Done(mock::measured(truth(&s.trial_id) * wobble, 100.0))
    });
    let rec = confirm_all(&ranked, &mut executor, dir.path());
    let Confirmation::Decided(rec) = rec else {
        panic!("{rec:?}")
    };
    let runs: Vec<ConfirmRun> = csv::Reader::from_path(dir.path().join(CONFIRM_CSV))
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect();
    assert!(dir.path().join(RECOMMENDATION_JSON).exists());
    let stored = read_recommendation(dir.path()).unwrap();
    assert_eq!(
        (&stored.trial_id, &stored.verdict, &stored.candidates),
        (&rec.trial_id, &rec.verdict, &rec.candidates)
    );
    (*rec, runs.len())
}

#[test]
fn the_round_can_overturn_the_sweeps_ranking() {
    // The sweep ranked a first; measured again, b is clearly faster.
    let rows = rows(&[
        ("a", 150.0, 200.0),
        ("b", 140.0, 200.0),
        ("c", 100.0, 200.0),
    ]);
    let (rec, runs) = run_round(&rows, |id| match id {
        "a" => 120.0,
        "b" => 140.0,
        _ => 100.0,
    });
    assert_eq!(runs, 9, "3 configurations × 3 rounds");
    assert_eq!(rec.trial_id, "b");
    let r = rec.runner_up.unwrap();
    assert_eq!(r.trial_id, "a");
    assert!(r.distinguishable && r.ratio_low.unwrap() > 1.0, "{r:?}");
    assert!(
        rec.verdict.contains("the runner-up a (95% CI"),
        "{}",
        rec.verdict
    );
}

#[test]
fn configurations_that_cannot_be_told_apart_go_to_the_lighter_one() {
    let rows = rows(&[("fast", 150.0, 400.0), ("light", 149.0, 150.0)]);
    let (rec, _) = run_round(&rows, |_| 100.0);
    assert_eq!(rec.trial_id, "light");
    let r = rec.runner_up.clone().unwrap();
    assert!(!r.distinguishable);
    assert!(
        rec.verdict
            .contains("as fast as the runner-up fast, within 5% (")
            && rec.verdict.contains("and this one uses less host memory"),
        "{}",
        rec.verdict
    );
    assert!(rec.covers(&["light", "fast"]) && !rec.covers(&["light"]));
}

#[test]
fn a_wide_interval_alone_does_not_hand_the_win_to_a_slower_lighter_config() {
    // "fast" measured 100, 30, 100 (a noisy machine); "light" 60 each
    // time. Not significant, but far from equal: "fast" stays.
    let rows = rows(&[("fast", 150.0, 400.0), ("light", 149.0, 150.0)]);
    let ranked: Vec<&TrialRow> = rows.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let runs = std::cell::RefCell::new(std::collections::HashMap::<String, usize>::new());
    let mut executor = MockExecutor::new(|s: &TrialSpec| {
        let mut runs = runs.borrow_mut();
        let k = runs.entry(s.trial_id.clone()).or_default();
        *k += 1;
        let tg = match (s.trial_id.as_str(), *k) {
            ("fast", 2) => 30.0,
            ("fast", _) => 100.0,
            _ => 60.0,
        };
        Execution::Done(mock::measured(tg, 100.0))
    });
    let end = confirm_all(&ranked, &mut executor, dir.path());
    let Confirmation::Decided(rec) = end else {
        panic!("{end:?}")
    };
    assert_eq!(rec.trial_id, "fast");
    assert!(!rec.runner_up.as_ref().unwrap().distinguishable);
    assert!(rec.verdict.contains("too noisy"), "{}", rec.verdict);
}

#[test]
fn a_wide_interval_alone_does_not_hand_the_win_to_a_slower_lighter_config_when_minimizing() {
    // Time to first token, minimized: "fast" measured 100, 300, 100 ms
    // (a noisy machine), "light" 170 ms each time. Not significant, but
    // 15% apart: "fast" stays, however much less memory "light" uses.
    let rows = rows(&[("fast", 150.0, 400.0), ("light", 149.0, 150.0)]);
    let ranked: Vec<&TrialRow> = rows.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let runs = std::cell::RefCell::new(std::collections::HashMap::<String, usize>::new());
    // mock::measured's time to first token is 256 000 / pp ms.
    let pp_for = |ttft_ms: f64| 256_000.0 / ttft_ms;
    let mut executor = MockExecutor::new(|s: &TrialSpec| {
        let mut runs = runs.borrow_mut();
        let k = runs.entry(s.trial_id.clone()).or_default();
        *k += 1;
        let ttft = match (s.trial_id.as_str(), *k) {
            ("fast", 2) => 300.0,
            ("fast", _) => 100.0,
            _ => 170.0,
        };
        Execution::Done(mock::measured(100.0, pp_for(ttft)))
    });
    let objective = Objective {
        metric: crate::objective::Metric::TtftMs,
        direction: crate::objective::Direction::Minimize,
        constraints: Vec::new(),
    };
    let end = confirm(
        &ranked,
        &[],
        &|id| Some(spec(id)),
        &mut executor,
        dir.path(),
        &facts(&objective, &defaults()),
        &ConfirmSettings::default(),
        &mut Silent,
        None,
    )
    .unwrap();
    let Confirmation::Decided(rec) = end else {
        panic!("{end:?}")
    };
    assert_eq!(rec.trial_id, "fast", "{}", rec.verdict);
    assert!(rec.verdict.contains("too noisy"), "{}", rec.verdict);
}

#[test]
fn a_round_in_which_every_run_fails_decides_nothing() {
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let ranked: Vec<&TrialRow> = rows.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let mut executor = MockExecutor::new(|_: &TrialSpec| {
        Execution::Done(mock::failed(crate::runner::TrialStatus::Crashed, "boom"))
    });
    let end = confirm_all(&ranked, &mut executor, dir.path());
    assert!(matches!(end, Confirmation::Undecided { .. }), "{end:?}");
    assert_eq!(executor.executed.len(), 6);
    assert!(read_recommendation(dir.path()).is_none());
}
fn reference(role: Role, id: &str) -> Reference {
    Reference {
        role,
        spec: spec(id),
        note: None,
    }
}

/// The round over `rows` (the sweep's ranking) and `references`, each
/// run answering `truth(id)` t/s with a little noise; the decision and
/// the trial ids in the order they ran.
fn round_with_references(
    rows: &[TrialRow],
    references: &[Reference],
    objective: &Objective,
    truth: impl Fn(&str) -> Option<f64>,
) -> (Recommendation, Vec<String>, Vec<ConfirmRun>) {
    let dir = tempfile::tempdir().unwrap();
    let ranked: Vec<&TrialRow> = rows.iter().collect();
    let calls = Cell::new(0);
    let mut executor = MockExecutor::new(|s: &TrialSpec| {
        calls.set(calls.get() + 1);
        let wobble = 1.0 + 0.004 * ((calls.get() % 3) as f64 - 1.0);
        Execution::Done(match truth(&s.trial_id) {
            Some(tg) => mock::measured(tg * wobble, 400.0),
            None => mock::failed(crate::runner::TrialStatus::Oom, "out of memory"),
        })
    });
    let end = confirm(
        &ranked,
        references,
        &|id| Some(spec(id)),
        &mut executor,
        dir.path(),
        &facts(objective, &defaults()),
        &ConfirmSettings::default(),
        &mut Silent,
        None,
    )
    .unwrap();
    let Confirmation::Decided(rec) = end else {
        panic!("{end:?}")
    };
    let stored = read_recommendation(dir.path()).unwrap();
    assert_eq!(
        (&stored.verdict, &stored.references, stored.versus.len()),
        (&rec.verdict, &rec.references, rec.versus.len())
    );
    let runs = csv::Reader::from_path(dir.path().join(CONFIRM_CSV))
        .unwrap()
        .deserialize()
        .map(Result::unwrap)
        .collect();
    (*rec, executor.executed, runs)
}

#[test]
fn a_baseline_half_as_fast_is_measured_in_the_same_rounds_and_reads_two_times() {
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let references = [
        reference(Role::Baseline, "base"),
        reference(Role::Defaults, "dflt"),
    ];
    let (rec, executed, runs) =
        round_with_references(&rows, &references, &Objective::default(), |id| match id {
            "a" => Some(150.0),
            "b" => Some(120.0),
            "base" => Some(75.0),
            _ => Some(50.0),
        });
    assert_eq!(rec.trial_id, "a", "references are not candidates");
    assert_eq!(rec.candidates, ["a", "b"]);
    assert_eq!(rec.references, ["base", "dflt"]);
    // Interleaved: every round runs all four, each starting elsewhere.
    assert_eq!(executed.len(), 12);
    assert_eq!(&executed[..4], ["a", "b", "base", "dflt"]);
    assert_eq!(&executed[4..8], ["b", "base", "dflt", "a"]);
    assert_eq!(runs.iter().filter(|r| r.trial_id == "base").count(), 3);

    let base = &rec.versus[0];
    assert_eq!(
        (base.role, base.trial_id.as_str()),
        (Role::Baseline, "base")
    );
    assert!((base.ratio - 2.0).abs() < 0.02, "{base:?}");
    assert!(
        base.ratio_low.unwrap() > 1.0,
        "the interval excludes 1: {base:?}"
    );
    assert!(
        (base.value - 75.0).abs() < 0.5 && base.runs == 3,
        "{base:?}"
    );
    let dflt = &rec.versus[1];
    assert!((dflt.ratio - 3.0).abs() < 0.03, "{dflt:?}");
    assert!(
        rec.verdict.contains(&format!(
            "; {:.2}× faster than your baseline (95% CI ",
            base.ratio
        )) && rec
            .verdict
            .contains("× faster than llama-server's defaults (95% CI "),
        "{}",
        rec.verdict
    );
    assert!(rec.compares_with(&["dflt", "base"]) && !rec.compares_with(&["base"]));
}

#[test]
fn for_a_latency_the_ratio_is_still_above_one_when_the_winner_is_faster() {
    let objective = Objective {
        metric: crate::objective::Metric::E2eMs,
        direction: crate::objective::Direction::Minimize,
        constraints: Vec::new(),
    };
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let (rec, _, _) = round_with_references(
        &rows,
        &[reference(Role::Baseline, "base")],
        &objective,
        |id| match id {
            "a" => Some(150.0),
            "b" => Some(120.0),
            _ => Some(60.0),
        },
    );
    assert_eq!(rec.trial_id, "a");
    let v = &rec.versus[0];
    // e2e = 256 / 400 s + 64 / tg s: 1067 ms for a, 1707 ms for base.
    assert!(v.value > 1500.0, "{v:?}");
    assert!(v.ratio > 1.5 && v.ratio_low.unwrap() > 1.0, "{v:?}");
}

#[test]
fn a_baseline_among_the_best_can_win_and_is_then_one_times_itself() {
    let rows = rows(&[("a", 150.0, 200.0), ("base", 149.0, 200.0)]);
    let references = [
        reference(Role::Baseline, "base"),
        reference(Role::Defaults, "gone"),
    ];
    let (rec, executed, _) =
        round_with_references(&rows, &references, &Objective::default(), |id| match id {
            "a" => Some(100.0),
            "base" => Some(130.0),
            _ => None,
        });
    assert_eq!(rec.trial_id, "base");
    assert_eq!(executed.len(), 9, "the baseline is measured once a round");
    assert_eq!(rec.versus.len(), 1, "the failed reference has no ratio");
    let v = &rec.versus[0];
    assert_eq!(
        (v.ratio, v.ratio_low, v.ratio_high),
        (1.0, Some(1.0), Some(1.0))
    );
    assert!(
        rec.verdict
            .contains("; it is your baseline; llama-server's defaults could not be measured again"),
        "{}",
        rec.verdict
    );
}

/// The round over `rows` (the sweep's ranking) under `objective`, each
/// trial's k-th run (from 1) answering `answer(id, k)`.
fn round_of(
    rows: &[TrialRow],
    objective: &Objective,
    answer: impl Fn(&str, usize) -> crate::runner::TrialOutcome,
) -> Confirmation {
    let dir = tempfile::tempdir().unwrap();
    let ranked: Vec<&TrialRow> = rows.iter().collect();
    let runs = std::cell::RefCell::new(std::collections::HashMap::<String, usize>::new());
    let mut executor = MockExecutor::new(|s: &TrialSpec| {
        let mut runs = runs.borrow_mut();
        let k = runs.entry(s.trial_id.clone()).or_default();
        *k += 1;
        Execution::Done(answer(&s.trial_id, *k))
    });
    confirm(
        &ranked,
        &[],
        &|id| Some(spec(id)),
        &mut executor,
        dir.path(),
        &facts(objective, &defaults()),
        &ConfirmSettings::default(),
        &mut Silent,
        None,
    )
    .unwrap()
}

/// The k-th run of a trial generating `tg` t/s, a little noisy, whose
/// time to first token is `ttft_ms`.
fn steady(tg: f64, ttft_ms: f64, k: usize) -> crate::runner::TrialOutcome {
    let wobble = 1.0 + 0.004 * ((k % 3) as f64 - 1.0);
    // mock::measured's time to first token is 256 000 / pp ms.
    mock::measured(tg * wobble, 256_000.0 / ttft_ms)
}

fn out_of_memory() -> crate::runner::TrialOutcome {
    mock::failed(crate::runner::TrialStatus::Oom, "out of memory")
}

fn decided(end: Confirmation) -> Recommendation {
    let Confirmation::Decided(rec) = end else {
        panic!("{end:?}")
    };
    *rec
}

#[test]
fn issue_23_a_candidate_out_of_memory_in_two_of_three_rounds_does_not_win() {
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let rec = decided(round_of(&rows, &Objective::default(), |id, k| {
        match (id, k) {
            ("a", 1) => steady(150.0, 400.0, k),
            ("a", _) => out_of_memory(),
            _ => steady(120.0, 400.0, k),
        }
    }));
    assert_eq!(rec.trial_id, "b", "{}", rec.verdict);
    assert!(
        rec.verdict
            .contains("a was passed over: it ran out of memory in rounds 2 and 3 of 3"),
        "{}",
        rec.verdict
    );
}

#[test]
fn issue_23_one_failed_run_loses_to_a_candidate_that_ran_cleanly() {
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let rec = decided(round_of(&rows, &Objective::default(), |id, k| {
        match (id, k) {
            ("a", 2) => out_of_memory(),
            ("a", _) => steady(150.0, 400.0, k),
            _ => steady(120.0, 400.0, k),
        }
    }));
    assert_eq!(rec.trial_id, "b", "{}", rec.verdict);
    assert!(
        rec.verdict
            .contains("a was passed over: it ran out of memory in round 2 of 3"),
        "{}",
        rec.verdict
    );
}

#[test]
fn issue_23_a_candidate_breaking_a_constraint_in_every_run_does_not_win() {
    let objective = Objective {
        constraints: vec![crate::objective::Constraint {
            metric: crate::objective::Metric::TtftMsP95,
            bound: crate::objective::Bound::AtMost(500.0),
        }],
        ..Objective::default()
    };
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let rec = decided(round_of(&rows, &objective, |id, k| match id {
        "a" => steady(150.0, 700.0, k),
        _ => steady(120.0, 400.0, k),
    }));
    assert_eq!(rec.trial_id, "b", "{}", rec.verdict);
    assert!(
        rec.verdict.contains(
            "a was passed over: it broke ttft_ms_p95 ≤ 500 ms in rounds 1, 2 and 3 of 3 (measured 700.0 at worst)"
        ),
        "{}",
        rec.verdict
    );
}

#[test]
fn issue_23_the_failures_of_a_candidate_that_lost_anyway_are_reported() {
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let rec = decided(round_of(&rows, &Objective::default(), |id, k| {
        match (id, k) {
            ("b", 2) => out_of_memory(),
            ("b", _) => steady(120.0, 400.0, k),
            _ => steady(150.0, 400.0, k),
        }
    }));
    assert_eq!(rec.trial_id, "a", "{}", rec.verdict);
    assert!(
        rec.verdict
            .contains("b was passed over: it ran out of memory in round 2 of 3"),
        "{}",
        rec.verdict
    );
}

#[test]
fn issue_23_without_a_clean_candidate_the_one_failing_least_wins_and_says_so() {
    // b measured faster in the one run it finished; a failed only once.
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let rec = decided(round_of(&rows, &Objective::default(), |id, k| {
        match (id, k) {
            ("a", 2) | ("b", 2 | 3) => out_of_memory(),
            ("a", _) => steady(150.0, 400.0, k),
            _ => steady(200.0, 400.0, k),
        }
    }));
    assert_eq!(rec.trial_id, "a", "{}", rec.verdict);
    assert!(
        rec.verdict
            .contains("it ran out of memory in round 2 of 3 (no candidate ran cleanly)")
            && rec
                .verdict
                .contains("b was passed over: it ran out of memory in rounds 2 and 3 of 3"),
        "{}",
        rec.verdict
    );
}

#[test]
fn issue_23_a_round_in_which_every_candidate_breaks_a_constraint_decides_nothing() {
    let objective = Objective {
        constraints: vec![crate::objective::Constraint {
            metric: crate::objective::Metric::TtftMsP95,
            bound: crate::objective::Bound::AtMost(500.0),
        }],
        ..Objective::default()
    };
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let end = round_of(&rows, &objective, |id, k| match id {
        "a" => steady(150.0, 700.0, k),
        _ => steady(120.0, 600.0, k),
    });
    assert!(matches!(end, Confirmation::Undecided { .. }), "{end:?}");
}

/// Two rows that measure the same in the round, the first using 3000 MiB
/// of device memory (and 400 MiB of host memory), the second
/// `second_device` MiB of device memory and `second_rss` of host memory.
fn memory_tie(second_device: Option<f64>, second_rss: f64) -> Recommendation {
    let mut rows = rows(&[("first", 150.0, 400.0), ("second", 149.0, second_rss)]);
    rows[0].device_memory_mib = Some(3000.0);
    rows[1].device_memory_mib = second_device;
    decided(round_of(&rows, &Objective::default(), |_, k| {
        steady(100.0, 400.0, k)
    }))
}

#[test]
fn issue_23_device_memory_is_not_weighed_against_host_memory() {
    // "second" runs on the CPU: its 2500 MiB are host memory, not less
    // than "first"'s 3000 MiB of device memory.
    let rec = memory_tie(None, 2500.0);
    assert_eq!(rec.trial_id, "first", "{}", rec.verdict);
    assert!(
        rec.verdict.contains("as fast as the runner-up second, within 5% (")
            && rec.verdict.contains(
                "but their memory cannot be compared (first's is device memory, second's host memory), so the best measured stays"
            ),
        "{}",
        rec.verdict
    );
}

#[test]
fn device_memory_is_weighed_against_device_memory() {
    let rec = memory_tie(Some(2000.0), 900.0);
    assert_eq!(rec.trial_id, "second", "{}", rec.verdict);
    assert!(
        rec.verdict
            .contains("this one uses less device memory (2000 MiB against 3000 MiB)"),
        "{}",
        rec.verdict
    );
}

#[test]
fn a_decision_made_before_failures_and_constraints_counted_is_made_again() {
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let ranked: Vec<&TrialRow> = rows.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let mut executor = MockExecutor::new(|_: &TrialSpec| Execution::Done(steady(100.0, 400.0, 1)));
    let rec = decided(confirm_all(&ranked, &mut executor, dir.path()));
    let here = ""; // the test facts' machine
    assert_eq!(
        read_current_recommendation(dir.path(), here),
        Some(rec.clone())
    );
    // Decided on other hardware: to be decided again here.
    assert_eq!(
        read_current_recommendation(dir.path(), "0123456789ab"),
        None
    );
    // As the rules before issue 23 wrote it.
    let older = serde_json::to_string(&rec).unwrap();
    std::fs::write(dir.path().join(RECOMMENDATION_JSON), older).unwrap();
    assert_eq!(read_recommendation(dir.path()), Some(rec));
    assert_eq!(read_current_recommendation(dir.path(), here), None);
}

#[test]
fn a_timed_out_run_is_named_in_the_verdict() {
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let rec = decided(round_of(&rows, &Objective::default(), |id, k| {
        match (id, k) {
            ("a", 3) => mock::failed(crate::runner::TrialStatus::Timeout, "too slow"),
            ("a", _) => steady(150.0, 400.0, k),
            _ => steady(120.0, 400.0, k),
        }
    }));
    assert_eq!(rec.trial_id, "b", "{}", rec.verdict);
    assert!(
        rec.verdict
            .contains("; a was passed over: it timed out in round 3 of 3; decided after 3 rounds"),
        "{}",
        rec.verdict
    );
}

#[test]
fn a_round_that_decides_nothing_forgets_an_earlier_recommendation() {
    let rows = rows(&[("a", 150.0, 200.0), ("b", 140.0, 200.0)]);
    let ranked: Vec<&TrialRow> = rows.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let mut working = MockExecutor::new(|_: &TrialSpec| Execution::Done(steady(100.0, 400.0, 1)));
    decided(confirm_all(&ranked, &mut working, dir.path()));
    assert!(read_recommendation(dir.path()).is_some());
    let mut failing = MockExecutor::new(|_: &TrialSpec| Execution::Done(out_of_memory()));
    let end = confirm_all(&ranked, &mut failing, dir.path());
    let Confirmation::Undecided { reason } = end else {
        panic!("{end:?}")
    };
    assert_eq!(
        reason,
        "no candidate ran cleanly in most of its confirmation runs: a ran out of memory in rounds 1, 2 and 3 of 3; b ran out of memory in rounds 1, 2 and 3 of 3"
    );
    assert!(read_recommendation(dir.path()).is_none());
}

#[test]
fn issue_24_a_slow_round_for_every_candidate_cancels_in_the_paired_comparison() {
    // The machine runs 14% slower in round 2 and 12% faster in round 3, for
    // every candidate alike; a is 6% faster than b in each round. Over
    // independent runs (Welch) that swing hides the difference; paired by
    // round it cancels (the interval allows for stopping after any of 6
    // rounds, so it is wider than a single 95% interval).
    let rows = rows(&[("a", 106.0, 200.0), ("b", 100.0, 200.0)]);
    let swing = [1.0, 0.86, 1.12];
    let rec = decided(round_of(&rows, &Objective::default(), |id, k| match id {
        "a" => steady(106.0 * swing[k - 1], 100.0, k),
        _ => steady(100.0 * swing[k - 1], 100.0, k + 1),
    }));
    assert_eq!(rec.trial_id, "a");
    let r = rec.runner_up.unwrap();
    assert!(r.distinguishable, "{r:?}");
    assert_eq!(r.paired_rounds, 3);
    assert!(
        r.ratio_low.unwrap() > 1.01 && r.ratio_high.unwrap() < 1.11,
        "{r:?}"
    );
    assert!(
        rec.verdict.contains(", 3 rounds)") && !rec.verdict.contains("too noisy"),
        "{}",
        rec.verdict
    );
}

/// Runs whose ratio wobbles round by round: `a` is `truth` times `b`, and
/// each round's ratio is off by `wobble` in turn (+, −, 0, ...).
fn wobbling_round(truth: f64, wobble: f64) -> Recommendation {
    let rows = rows(&[("a", 110.0, 200.0), ("b", 100.0, 200.0)]);
    decided(round_of(&rows, &Objective::default(), |id, k| {
        let off = [1.0 + wobble, 1.0 - wobble, 1.0][(k - 1) % 3];
        match id {
            "a" => steady(100.0 * truth * off, 100.0, k),
            _ => steady(100.0, 100.0, k + 1),
        }
    }))
}

#[test]
fn issue_24_rounds_go_on_until_the_verdict_is_decided() {
    // 8% faster, each round's ratio 4% off: after 3 rounds the interval
    // still spans 1; more rounds narrow it until it excludes 1.
    let rec = wobbling_round(1.08, 0.04);
    let reached = rec.reached.clone().unwrap();
    assert_eq!(
        reached.stopped,
        sequential::Stopped::Decided,
        "{}",
        rec.verdict
    );
    assert!(
        (4..8).contains(&reached.rounds),
        "{}: {reached:?}",
        rec.verdict
    );
    assert_eq!(rec.trial_id, "a");
    assert!(rec.runner_up.unwrap().distinguishable);
    assert!(
        rec.verdict.contains(&format!(
            "decided after {} rounds of at most 8",
            reached.rounds
        )),
        "{}",
        rec.verdict
    );
}

#[test]
fn issue_24_rounds_stop_when_no_decision_is_in_reach_and_say_so() {
    // 4% faster, each round's ratio 6% off: after 3 rounds the interval is
    // so wide that even 8 rounds would leave it spanning 1 and the margin.
    let rec = wobbling_round(1.04, 0.06);
    let reached = rec.reached.clone().unwrap();
    assert_eq!(
        (reached.stopped, reached.rounds),
        (sequential::Stopped::Hopeless, 3),
        "{}",
        rec.verdict
    );
    assert!(
        rec.verdict.contains("too noisy")
            && rec.verdict.contains(
                "still undecided after 3 rounds, in 0 s: at the noise measured not even 8 rounds would decide it"
            ),
        "{}",
        rec.verdict
    );
}
