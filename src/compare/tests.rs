use super::*;
use crate::runner::{TrialStatus, mock};

fn join(samples: &[f64]) -> String {
    samples
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(";")
}

/// A completed row for `n_threads` whose generation samples are `tg`.
fn measured(id: &str, n_threads: i32, tg: &[f64]) -> TrialRow {
    let mut row = crate::test_support::row(id, &mock::measured(100.0, 400.0));
    let s = Summary::of(tg).unwrap();
    row.params.set(crate::knobs::N_THREADS, (n_threads).into());
    row.tg_tps_samples = join(tg);
    row.tg_tps_mean = Some(s.mean);
    row.tg_tps_sd = Some(s.stddev);
    row.n_samples = Some(s.n as u32);
    row
}

fn failed(id: &str, n_threads: i32, status: TrialStatus, reason: &str) -> TrialRow {
    let mut row = crate::test_support::row(id, &mock::failed(status, reason));
    row.params.set(crate::knobs::N_THREADS, (n_threads).into());
    row
}

const A_NOISY: [f64; 5] = [100.0, 110.0, 90.0, 105.0, 95.0];
const A_STEADY: [f64; 5] = [100.0, 101.0, 99.0, 100.5, 99.5];

fn scaled(samples: &[f64], k: f64) -> Vec<f64> {
    samples.iter().map(|x| x * k).collect()
}

/// Comparing on llama-bench's tg, whose samples `measured` sets.
fn tg() -> Objective {
    Objective {
        metric: crate::objective::Metric::TgTps,
        ..Objective::default()
    }
}

/// A sweep of `rows` without extra runs.
fn sw(rows: &[TrialRow]) -> SweepData<'_> {
    SweepData::rows(rows)
}

/// A sweep of `rows` in which trial `id` also ran again with these values
/// (a confirmation round).
fn with_runs<'a>(rows: &'a [TrialRow], runs: &[(&str, &[f64])]) -> SweepData<'a> {
    SweepData {
        rows,
        runs: runs
            .iter()
            .map(|(id, v)| (id.to_string(), v.to_vec()))
            .collect(),
    }
}

#[test]
fn a_real_ten_percent_speed_up_over_separate_runs_is_significant() {
    let a = [measured("a4", 4, &A_STEADY)];
    let b = [measured("b4", 4, &scaled(&A_STEADY, 1.1))];
    let c = compare(
        &with_runs(&a, &[("a4", &[101.0, 99.0, 100.5])]),
        &with_runs(&b, &[("b4", &[111.0, 109.0, 110.5])]),
        &tg(),
    )
    .unwrap();
    assert_eq!(c.changes.len(), 1);
    let change = &c.changes[0];
    assert_eq!(change.basis, Basis::Runs);
    assert!((change.ratio.ratio - 1.1).abs() < 0.005, "{change:?}");
    assert!(change.ratio.low.unwrap() > 1.05 && change.ratio.high.unwrap() < 1.15);
    assert_eq!(change.verdict, Verdict::Better);
    assert_eq!(c.count(Verdict::Better), 1);
}

#[test]
fn repetitions_inside_one_run_are_not_a_test_of_change() {
    // Steady repetitions, 10% apart: a run of each. The repetitions shared
    // their process; how much runs differ is unknown, so nothing is called.
    let a = [measured("a4", 4, &A_STEADY)];
    let b = [measured("b4", 4, &scaled(&A_STEADY, 1.1))];
    let c = compare(&sw(&a), &sw(&b), &tg()).unwrap();
    let change = &c.changes[0];
    assert_eq!(change.basis, Basis::Repetitions);
    assert!(
        change.ratio.significant(),
        "the repetitions alone look certain"
    );
    assert_eq!(change.verdict, Verdict::Unchanged);
    let text = render::render(&c, 5, "a", "b");
    assert!(
        text.contains("repetitions  n_threads=4") || text.contains("repetitions"),
        "{text}"
    );
    assert!(text.contains("no change is called on it"), "{text}");
}

#[test]
fn configurations_run_once_use_the_run_to_run_spread_of_those_run_again() {
    // n_threads=2 ran three times in each sweep: runs differ by about 1%.
    let a = [
        measured("a2", 2, &A_STEADY),
        measured("a4", 4, &A_STEADY),
        measured("a8", 8, &A_STEADY),
    ];
    let b = [
        measured("b2", 2, &A_STEADY),
        measured("b4", 4, &scaled(&A_STEADY, 1.1)),
        measured("b8", 8, &scaled(&A_STEADY, 1.004)),
    ];
    let c = compare(
        &with_runs(&a, &[("a2", &[101.0, 99.0])]),
        &with_runs(&b, &[("b2", &[99.5, 100.5])]),
        &tg(),
    )
    .unwrap();
    let by = |t: &str| {
        c.changes
            .iter()
            .find(|x| x.key.label(&c.varying) == format!("n_threads={t}"))
            .unwrap()
    };
    assert_eq!(by("2").basis, Basis::Runs);
    assert_eq!(by("4").basis, Basis::PooledRuns);
    assert_eq!(
        by("4").verdict,
        Verdict::Better,
        "10% is far outside 1% run-to-run"
    );
    assert_eq!(by("8").verdict, Verdict::Unchanged, "0.4% is not");
}

#[test]
fn identical_noisy_samples_are_not_a_change() {
    let mut shuffled = A_NOISY;
    shuffled.reverse();
    let a = [measured("a", 4, &A_NOISY)];
    let b = [measured("b", 4, &shuffled)];
    let c = compare(&sw(&a), &sw(&b), &tg()).unwrap();
    let change = &c.changes[0];
    assert!((change.ratio.ratio - 1.0).abs() < 1e-12);
    assert!(change.ratio.low.unwrap() < 1.0 && change.ratio.high.unwrap() > 1.0);
    assert_eq!(change.verdict, Verdict::Unchanged);
}

#[test]
fn a_small_change_within_the_noise_is_not_significant_either() {
    let a = [measured("a", 4, &A_NOISY)];
    let b = [measured("b", 4, &scaled(&A_NOISY, 1.03))];
    let c = compare(&sw(&a), &sw(&b), &tg()).unwrap();
    assert_eq!(
        c.changes[0].verdict,
        Verdict::Unchanged,
        "{:?}",
        c.changes[0]
    );
}

#[test]
fn a_slow_down_of_a_latency_is_worse_and_a_speed_up_better() {
    let objective = Objective {
        metric: Metric::TtftMs,
        direction: Direction::Minimize,
        constraints: vec![],
    };
    let mut a = measured("a", 4, &A_STEADY);
    a.ttft_ms_samples = join(&A_STEADY);
    a.ttft_ms_mean = Some(100.0);
    let mut b = a.clone();
    b.ttft_ms_samples = join(&scaled(&A_STEADY, 0.8));
    b.ttft_ms_mean = Some(80.0);
    let (ra, rb) = ([a], [b]);
    let (runs_a, runs_b) = ([("a", &[101.0, 99.0][..])], [("a", &[80.5, 79.5][..])]);
    let c = compare(
        &with_runs(&ra, &runs_a),
        &with_runs(&rb, &runs_b),
        &objective,
    )
    .unwrap();
    assert_eq!(c.changes[0].verdict, Verdict::Better, "lower latency");
    let c = compare(
        &with_runs(&rb, &runs_b),
        &with_runs(&ra, &runs_a),
        &objective,
    )
    .unwrap();
    assert_eq!(c.changes[0].verdict, Verdict::Worse);
}

fn ttft() -> Objective {
    Objective {
        metric: Metric::TtftMs,
        direction: Direction::Minimize,
        constraints: vec![],
    }
}

/// Four requests arriving together each repetition, repetition by
/// repetition: request j's time to first token is `queue[j]` × its
/// repetition's mean.
fn queued_requests(repetition_means: &[f64], queue: [f64; 4]) -> Vec<f64> {
    repetition_means
        .iter()
        .flat_map(|m| queue.map(|k| m * k))
        .collect()
}

/// Where the requests of a repetition wait their turn: the last waits four
/// times as long as the first.
const QUEUE: [f64; 4] = [0.4, 0.8, 1.2, 1.6];
/// Where they do not: the four requests of a repetition take the same time.
const NO_QUEUE: [f64; 4] = [0.985, 0.995, 1.005, 1.015];

/// A row with n_parallel = 4 whose TTFT repetitions average
/// `repetition_means`; its mean and sd over every request, as a row of an
/// earlier version recorded them.
fn queued(id: &str, repetition_means: &[f64], queue: [f64; 4]) -> TrialRow {
    let mut row = measured(id, 4, &A_STEADY);
    crate::test_support::set(&mut row, crate::knobs::N_PARALLEL, 4.into());
    let requests = queued_requests(repetition_means, queue);
    let all = Summary::of(&requests).unwrap();
    row.ttft_ms_samples = join(&requests);
    (row.ttft_ms_mean, row.ttft_ms_sd) = (Some(all.mean), Some(all.stddev));
    row
}

fn close(x: f64, y: f64) -> bool {
    (x - y).abs() < 1e-9 * y.abs().max(1.0)
}

#[test]
fn a_ttft_interval_rests_on_one_value_per_repetition_not_per_request() {
    // 3 repetitions × 4 requests: 3 values a side, whose spread is the
    // repetitions' (1%), not the queue's (45%).
    let (means_a, means_b) = ([250.0, 252.5, 247.5], [275.0, 277.0, 272.5]);
    let c = compare(
        &sw(&[queued("a", &means_a, QUEUE)]),
        &sw(&[queued("b", &means_b, QUEUE)]),
        &ttft(),
    )
    .unwrap();
    let change = &c.changes[0];
    assert_eq!(change.basis, Basis::Repetitions);
    for (side, means) in [(&change.a, &means_a), (&change.b, &means_b)] {
        assert_eq!(side.samples.len(), 3, "one value per repetition: {side:?}");
        assert!(
            side.samples.iter().zip(means).all(|(x, m)| close(*x, *m)),
            "{side:?}"
        );
        assert_eq!(side.n, Some(3), "{side:?}");
        let spread = Summary::of(means).unwrap().stddev;
        assert!(close(side.sd.unwrap(), spread), "{side:?}");
    }
    let expected = stats::ratio_of(&means_b, &means_a).unwrap();
    let r = change.ratio;
    assert!(close(r.ratio, expected.ratio), "{r:?} {expected:?}");
    assert!(
        close(r.low.unwrap(), expected.low.unwrap()),
        "{r:?} {expected:?}"
    );
    assert!(
        close(r.high.unwrap(), expected.high.unwrap()),
        "{r:?} {expected:?}"
    );
    assert!(r.significant(), "steady repetitions 10% apart: {r:?}");
}

#[test]
fn requests_of_one_repetition_moving_together_count_once() {
    // Each repetition's four requests took the same time, and the
    // repetitions differ by 20%: 20% slower is within the noise of three
    // repetitions, though twelve independent requests would make it certain.
    let means = [100.0, 120.0, 85.0];
    let c = compare(
        &sw(&[queued("a", &means, NO_QUEUE)]),
        &sw(&[queued("b", &scaled(&means, 1.2), NO_QUEUE)]),
        &ttft(),
    )
    .unwrap();
    let r = c.changes[0].ratio;
    assert!((r.ratio - 1.2).abs() < 1e-6, "{r:?}");
    assert!(!r.significant(), "{r:?}");
}

#[test]
fn rows_match_by_configuration_not_trial_id_or_model_path() {
    let a = [measured("old-id", 4, &A_STEADY)];
    let mut moved = measured("new-id", 4, &A_STEADY);
    moved.model_path = "elsewhere/m.gguf".into();
    moved.model_identity = "file:rebuilt".into();
    moved.repetitions = 10;
    let c = compare(&sw(&a), &sw(&[moved]), &tg()).unwrap();
    assert_eq!(c.changes.len(), 1);
    assert!(c.only_in_a.is_empty() && c.only_in_b.is_empty());
}

#[test]
fn a_different_workload_or_parameter_does_not_match() {
    let a = [measured("a4", 4, &A_STEADY), measured("a8", 8, &A_STEADY)];
    let mut other_workload = measured("b4", 4, &A_STEADY);
    other_workload.gen_tokens = 32;
    let b = [other_workload, measured("b8", 8, &A_STEADY)];
    let c = compare(&sw(&a), &sw(&b), &tg()).unwrap();
    assert_eq!(c.changes.len(), 1);
    assert_eq!(c.only_in_a.len(), 1);
    assert_eq!(c.only_in_b.len(), 1);
    assert!(c.only_in_a[0].label(&c.varying).contains("n_threads=4"));
    assert!(c.only_in_b[0].label(&c.varying).contains("gen_tokens=32"));
}

#[test]
fn sweeps_that_share_no_configuration_are_an_error_saying_why() {
    let a = [measured("a", 4, &A_STEADY)];
    let mut b = measured("b", 4, &A_STEADY);
    b.gen_tokens = 32;
    let err = compare(&sw(&a), &sw(&[b]), &tg()).unwrap_err().to_string();
    assert!(err.contains("share no configuration"), "{err}");
    assert!(err.contains("gen_tokens: A has 16, B has 32"), "{err}");
    assert!(!err.contains("n_threads"), "{err}");
}

#[test]
fn failures_in_one_or_both_sweeps_are_reported_with_their_reason() {
    let a = [
        measured("a4", 4, &A_STEADY),
        measured("a8", 8, &A_STEADY),
        failed("a16", 16, TrialStatus::Crashed, "abort"),
        measured("a2", 2, &A_STEADY),
    ];
    let b = [
        failed("b4", 4, TrialStatus::Oom, "failed to allocate 8 GiB"),
        measured("b8", 8, &A_STEADY),
        failed("b16", 16, TrialStatus::Timeout, "no answer in 60 s"),
        measured("b2", 2, &A_STEADY),
    ];
    let c = compare(&sw(&a), &sw(&b), &tg()).unwrap();
    assert_eq!(c.changes.len(), 2);
    assert_eq!(c.failed_in_one.len(), 1);
    let one = &c.failed_in_one[0];
    assert_eq!(one.failed_in, 'B');
    assert_eq!(one.failure.status, "oom");
    assert_eq!(one.failure.reason, "failed to allocate 8 GiB");
    assert_eq!(one.measured.mean, Summary::of(&A_STEADY).unwrap().mean);
    assert_eq!(c.failed_in_both.len(), 1);
    assert_eq!(c.failed_in_both[0].2.reason, "no answer in 60 s");
}

#[test]
fn without_samples_mean_and_sd_still_give_an_interval() {
    let strip = |mut r: TrialRow| {
        r.tg_tps_samples.clear();
        r
    };
    let a = [strip(measured("a", 4, &A_STEADY))];
    let b = [strip(measured("b", 4, &scaled(&A_STEADY, 1.1)))];
    let c = compare(&sw(&a), &sw(&b), &tg()).unwrap();
    let change = &c.changes[0];
    assert!((change.ratio.ratio - 1.1).abs() < 1e-9);
    assert!(change.ratio.low.unwrap() > 1.05, "{change:?}");
    assert_eq!(change.basis, Basis::Repetitions);
    let b = [strip(measured("b", 4, &A_NOISY))];
    let a = [strip(measured("a", 4, &scaled(&A_NOISY, 1.02)))];
    let noisy = compare(&sw(&a), &sw(&b), &tg()).unwrap();
    assert!(!noisy.changes[0].ratio.significant());
}

#[test]
fn the_overall_ratio_is_the_geometric_mean_most_changed_first() {
    let a = [
        measured("a1", 1, &A_STEADY),
        measured("a2", 2, &A_STEADY),
        measured("a4", 4, &A_STEADY),
    ];
    let b = [
        measured("b1", 1, &scaled(&A_STEADY, 1.08)),
        measured("b2", 2, &scaled(&A_STEADY, 1.12)),
        measured("b4", 4, &scaled(&A_STEADY, 1.1)),
    ];
    let c = compare(&sw(&a), &sw(&b), &tg()).unwrap();
    let overall = c.overall.unwrap();
    let expected = (1.08f64 * 1.12 * 1.1).powf(1.0 / 3.0);
    assert!((overall.ratio - expected).abs() < 1e-9, "{overall:?}");
    assert!(overall.significant());
    let order: Vec<String> = c.changes.iter().map(|x| x.key.label(&c.varying)).collect();
    assert_eq!(order, ["n_threads=2", "n_threads=4", "n_threads=1"]);
    assert_eq!(c.varying, ["n_threads"]);
}

#[test]
fn different_objective_metrics_need_an_explicit_metric() {
    let tg = Objective::default();
    let ttft = Objective {
        metric: Metric::TtftMs,
        direction: Direction::Minimize,
        constraints: vec![],
    };
    let err = choose_objective(Some(&tg), Some(&ttft), None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("metrics differ") && err.contains("--metric"),
        "{err}"
    );
    let chosen = choose_objective(Some(&tg), Some(&ttft), Some(Metric::PpTps)).unwrap();
    assert_eq!(
        (chosen.metric, chosen.direction),
        (Metric::PpTps, Direction::Maximize)
    );
    assert_eq!(
        choose_objective(None, Some(&ttft), None).unwrap().metric,
        Metric::TtftMs
    );
}

#[test]
fn the_table_and_csv_show_changes_failures_and_the_summary() {
    let a = [
        measured("a4", 4, &A_STEADY),
        measured("a8", 8, &A_STEADY),
        measured("a16", 16, &A_STEADY),
    ];
    let b = [
        measured("b4", 4, &scaled(&A_STEADY, 1.1)),
        measured("b8", 8, &A_STEADY),
        failed("b16", 16, TrialStatus::Oom, "=cannot\nallocate"),
    ];
    let c = compare(
        &with_runs(&a, &[("a4", &[100.5, 99.5])]),
        &with_runs(&b, &[("b4", &[110.5, 109.5])]),
        &tg(),
    )
    .unwrap();
    let text = render::render(&c, 1, "before", "after");
    assert!(text.contains("A = before, B = after"), "{text}");
    assert!(text.contains("faster   runs        n_threads=4"), "{text}");
    assert!(!text.contains("n_threads=8\n"), "--top 1 shows one: {text}");
    assert!(
        text.contains("... and 1 more (--top 2 shows all)"),
        "{text}"
    );
    assert!(
        text.contains("failed in B (oom: =cannot); A measured 100.0 t/s — n_threads=16"),
        "{text}"
    );
    assert!(
        text.contains("significantly faster: 1, significantly slower: 0, no significant change: 1"),
        "{text}"
    );
    let csv = render::render_csv(&c).unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), 3);
    let col = |r: &csv::StringRecord, name: &str| {
        r[header.iter().position(|h| h == name).unwrap()].to_string()
    };
    assert_eq!(col(&records[0], "change"), "faster");
    assert_eq!(col(&records[0], "interval_of"), "runs");
    assert_eq!(
        col(&records[0], "n_gpu_layers"),
        "-1",
        "numbers are not defused"
    );
    assert_eq!(col(&records[2], "change"), "failed_in_b");
    assert_eq!(col(&records[2], "reason"), "'=cannot\nallocate");
}
