//! The confirmation round. A sweep ranks trials by measurements taken hours
//! apart on a machine whose speed drifts; before recommending one, the top
//! few feasible configurations are measured again, interleaved (A B C, B C A,
//! C A B ...) with more repetitions, and the winner is picked on those runs.
//! The difference to the runner-up gets a 95% confidence interval (Welch, on
//! the logarithms of the per-run means, so it reads as a ratio); when the
//! interval includes "no difference", the configurations cannot be told
//! apart, and the one using less memory is preferred. The reference trials
//! (the user's baseline, llama-server's defaults) are measured in the same
//! rounds, and the recommendation is stated against them (`versus`).

mod versus;

pub use versus::Versus;

use crate::clock::now_rfc3339;
use crate::config::ConfirmSettings;
use crate::objective::Objective;
use crate::plan::references::Reference;
use crate::protocol::TrialSpec;
use crate::runner::Executor;
use crate::search::core::orient;
use crate::stats::{Summary, welch_interval};
use crate::store::csv_log::{CsvLog, SerdeCodec};
use crate::store::row::TrialRow;
use crate::sweep::{RowFacts, SweepObserver, measure_once};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

pub const CONFIRM_CSV: &str = "confirm.csv";
/// Configurations whose confirmation runs differ by less than this (3%),
/// and not significantly, count as equally fast.
const TIE_MARGIN: f64 = 0.03;
pub const RECOMMENDATION_JSON: &str = "recommendation.json";

/// One re-measurement, as written to confirm.csv.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfirmRun {
    pub trial_id: String,
    pub round: usize,
    pub metric: String,
    /// Mean of the metric over this run's repetitions; empty if the run failed.
    pub value: Option<f64>,
    pub sd: Option<f64>,
    pub repetitions: u32,
    pub status: String,
    pub at: String,
}

/// The outcome of the round: the recommended trial and how sure we are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub trial_id: String,
    pub metric: String,
    /// Geometric mean of the confirmation runs' means.
    pub value: f64,
    pub runs: usize,
    pub runner_up: Option<RunnerUp>,
    /// One sentence for people.
    pub verdict: String,
    /// The trials that were measured again; a later run of the same sweep
    /// with the same top trials and references reuses this recommendation.
    #[serde(default)]
    pub candidates: Vec<String>,
    /// The reference trials measured in the same rounds.
    #[serde(default)]
    pub references: Vec<String>,
    /// The recommendation against each reference, in the order of the
    /// references (a reference whose runs all failed has none).
    #[serde(default)]
    pub versus: Vec<Versus>,
}

impl Recommendation {
    /// Whether this round confirmed exactly these trials (in any order).
    pub fn covers(&self, trial_ids: &[&str]) -> bool {
        !self.candidates.is_empty() && same_set(&self.candidates, trial_ids)
    }

    /// Whether this round measured exactly these reference trials.
    pub fn compares_with(&self, reference_ids: &[&str]) -> bool {
        same_set(&self.references, reference_ids)
    }
}

fn same_set(mine: &[String], theirs: &[&str]) -> bool {
    let mut mine: Vec<&str> = mine.iter().map(String::as_str).collect();
    let mut theirs = theirs.to_vec();
    mine.sort_unstable();
    mine.dedup();
    theirs.sort_unstable();
    theirs.dedup();
    mine == theirs
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunnerUp {
    pub trial_id: String,
    pub value: f64,
    /// How many times better the recommendation is (>1 is better, whatever
    /// the direction), with its 95% confidence interval.
    pub ratio: f64,
    pub ratio_low: Option<f64>,
    pub ratio_high: Option<f64>,
    /// Whether the interval excludes 1.
    pub distinguishable: bool,
}

/// How a confirmation round ended.
#[derive(Debug)]
pub enum Confirmation {
    Decided(Box<Recommendation>),
    /// No candidate could be measured again (all failed): the sweep's own
    /// ranking stands.
    Undecided,
    /// A stop was asked for.
    Interrupted,
}

/// A confirmed candidate: its row and the log values of its runs.
struct Candidate<'a> {
    row: &'a TrialRow,
    spec: TrialSpec,
    logs: Vec<f64>,
}

/// A trial measured in the round: a candidate or a reference.
struct Subject {
    spec: TrialSpec,
    logs: Vec<f64>,
}

/// Runs the round over `ranked` (feasible rows, best first), measuring the
/// `references` (those that ran in the sweep) in the same rounds.
#[allow(clippy::too_many_arguments)]
pub fn confirm(
    ranked: &[&TrialRow],
    references: &[Reference],
    spec_of: &dyn Fn(&str) -> Option<TrialSpec>,
    executor: &mut dyn Executor,
    folder: &Path,
    facts: &RowFacts,
    settings: &ConfirmSettings,
    observer: &mut dyn SweepObserver,
) -> anyhow::Result<Confirmation> {
    let objective = facts.objective;
    let repetitions = |spec: &TrialSpec| {
        settings
            .repetitions
            .unwrap_or(spec.workload.repetitions * 2)
    };
    let top: Vec<(&TrialRow, TrialSpec)> = ranked
        .iter()
        .take(settings.top)
        .filter_map(|row| spec_of(&row.trial_id).map(|spec| (*row, spec)))
        .collect();
    if top.is_empty() {
        return Ok(Confirmation::Undecided);
    }
    let mut subjects: Vec<Subject> = top
        .iter()
        .map(|(_, spec)| spec)
        .chain(references.iter().map(|r| &r.spec))
        .fold(Vec::new(), |mut subjects: Vec<Subject>, spec| {
            if !subjects.iter().any(|s| s.spec.trial_id == spec.trial_id) {
                let mut spec = spec.clone();
                spec.workload.repetitions = repetitions(&spec);
                subjects.push(Subject {
                    spec,
                    logs: Vec::new(),
                });
            }
            subjects
        });
    let extra = subjects.len() - top.len();
    observer.note(&format!(
        "confirmation: measuring the best {}{} again, {} interleaved rounds of {} repetitions",
        top.len(),
        match extra {
            0 => String::new(),
            1 => " and 1 reference trial".into(),
            n => format!(" and {n} reference trials"),
        },
        settings.rounds,
        subjects[0].spec.workload.repetitions
    ));
    let n = subjects.len();
    std::fs::create_dir_all(folder.join("logs"))
        .with_context(|| format!("cannot create {}", folder.join("logs").display()))?;
    for round in 0..settings.rounds {
        for k in 0..n {
            let c = &mut subjects[(k + round) % n];
            let log = format!("logs/{}.confirm{}.log", c.spec.trial_id, round + 1);
            let Some(row) = measure_once(executor, &c.spec, folder, log, 0, facts)? else {
                return Ok(Confirmation::Interrupted);
            };
            let value = objective.score(&row);
            if let Some(v) = value {
                c.logs.push(v.max(1e-12).ln());
            }
            let run = ConfirmRun {
                trial_id: c.spec.trial_id.clone(),
                round: round + 1,
                metric: objective.metric.name().into(),
                value,
                sd: row.sd_of(objective.metric),
                repetitions: c.spec.workload.repetitions,
                status: row.status.name().into(),
                at: now_rfc3339(),
            };
            append_run(folder, &run)?;
            observer.note(&format!(
                "confirmation round {}: {} {}",
                round + 1,
                run.trial_id,
                value.map_or(format!("{} (not measured)", run.status), |v| format!(
                    "{v:.1} {}",
                    objective.metric.unit()
                ))
            ));
        }
    }
    let logs_of = |id: &str| {
        subjects
            .iter()
            .find(|s| s.spec.trial_id == id)
            .map_or(&[][..], |s| s.logs.as_slice())
    };
    let candidates: Vec<Candidate> = top
        .iter()
        .map(|(row, spec)| Candidate {
            row,
            spec: spec.clone(),
            logs: logs_of(&spec.trial_id).to_vec(),
        })
        .collect();
    let Some(mut r) = decide(&candidates, objective) else {
        return Ok(Confirmation::Undecided);
    };
    let chosen_logs = logs_of(&r.trial_id);
    for reference in references {
        let measured = versus::Measured {
            role: reference.role,
            trial_id: &reference.spec.trial_id,
            logs: logs_of(&reference.spec.trial_id),
        };
        let clause = match versus::compare(objective, &r.trial_id, chosen_logs, &measured) {
            Some(v) => {
                let clause = versus::clause(&v, &r.trial_id);
                r.versus.push(v);
                clause
            }
            None => format!("{} could not be measured again", reference.role.phrase()),
        };
        r.verdict.push_str("; ");
        r.verdict.push_str(&clause);
    }
    r.references = references.iter().map(|r| r.spec.trial_id.clone()).collect();
    let json = serde_json::to_string_pretty(&r)?;
    crate::store::write_atomically(&folder.join(RECOMMENDATION_JSON), json.as_bytes())?;
    Ok(Confirmation::Decided(Box::new(r)))
}

fn runs_log(folder: &Path) -> CsvLog<SerdeCodec<ConfirmRun>> {
    CsvLog::new(folder.join(CONFIRM_CSV), SerdeCodec::new())
}

fn append_run(folder: &Path, run: &ConfirmRun) -> anyhow::Result<()> {
    runs_log(folder).append(run)
}

/// Every confirmation run recorded in `folder` (none without confirm.csv).
pub fn read_runs(folder: &Path) -> anyhow::Result<Vec<ConfirmRun>> {
    runs_log(folder).read()
}

fn memory(row: &TrialRow) -> f64 {
    row.device_memory_mib
        .filter(|m| *m > 0.0)
        .or(row.peak_rss_mib)
        .unwrap_or(f64::INFINITY)
}

fn decide(candidates: &[Candidate], objective: &Objective) -> Option<Recommendation> {
    let mut measured: Vec<(&Candidate, f64)> = candidates
        .iter()
        .filter_map(|c| Summary::of(&c.logs).map(|s| (c, orient(objective, s.mean))))
        .collect();
    measured.sort_by(|a, b| b.1.total_cmp(&a.1));
    let (best, _) = *measured.first()?;
    // Configurations the best cannot be told apart from: no significant
    // difference, and measured within a few percent of it. (One measured
    // far slower whose interval is merely wide is not a tie: the best stays,
    // and the verdict says the runs were too noisy to be sure.)
    let ties: Vec<&Candidate> = measured
        .iter()
        .skip(1)
        .filter(|(c, _)| match welch_interval(&best.logs, &c.logs) {
            // How much better the best measured, whatever the direction.
            Some((d, lo, hi)) => {
                lo <= 0.0 && hi >= 0.0 && orient(objective, d) <= TIE_MARGIN.ln_1p()
            }
            None => false,
        })
        .map(|(c, _)| *c)
        .collect();
    let lightest = std::iter::once(best)
        .chain(ties.iter().copied())
        .min_by(|a, b| memory(a.row).total_cmp(&memory(b.row)))
        .unwrap_or(best);
    let chosen = if !ties.is_empty() { lightest } else { best };
    let geo = |c: &Candidate| Summary::of(&c.logs).map_or(0.0, |s| s.mean.exp());
    let runner = measured
        .iter()
        .map(|(c, _)| *c)
        .find(|c| c.row.trial_id != chosen.row.trial_id);
    let runner_up = runner.map(|r| {
        let interval = welch_interval(&chosen.logs, &r.logs);
        let (d, lo, hi) = interval.map_or(
            (
                Summary::of(&chosen.logs).map_or(0.0, |s| s.mean)
                    - Summary::of(&r.logs).map_or(0.0, |s| s.mean),
                None,
                None,
            ),
            |(d, lo, hi)| (d, Some(lo), Some(hi)),
        );
        let (low, high) = match (lo, hi) {
            (Some(lo), Some(hi)) => {
                let (a, b) = (orient(objective, lo).exp(), orient(objective, hi).exp());
                (Some(a.min(b)), Some(a.max(b)))
            }
            _ => (None, None),
        };
        RunnerUp {
            trial_id: r.row.trial_id.clone(),
            value: geo(r),
            ratio: orient(objective, d).exp(),
            ratio_low: low,
            ratio_high: high,
            distinguishable: matches!((low, high), (Some(l), Some(h)) if l > 1.0 || h < 1.0),
        }
    });
    let unit = objective.metric.unit();
    let mut verdict = String::new();
    let _ = write!(
        verdict,
        "{} measured {:.1} {unit} over {} confirmation runs",
        chosen.row.trial_id,
        geo(chosen),
        chosen.logs.len()
    );
    match &runner_up {
        Some(r) if r.distinguishable => {
            let _ = write!(
                verdict,
                "; {:.3}× the runner-up {} (95% CI {:.3}–{:.3}×)",
                r.ratio,
                r.trial_id,
                r.ratio_low.unwrap_or(r.ratio),
                r.ratio_high.unwrap_or(r.ratio)
            );
        }
        Some(r) => {
            let ci = match (r.ratio_low, r.ratio_high) {
                (Some(l), Some(h)) => format!("95% CI {l:.3}–{h:.3}×"),
                _ => "too few runs for an interval".into(),
            };
            let tie = ties.iter().any(|t| t.row.trial_id == r.trial_id)
                || chosen.row.trial_id != best.row.trial_id;
            if !tie {
                let _ = write!(
                    verdict,
                    "; {:.3}× the runner-up {}, but the runs were too noisy to be sure ({ci}): more [confirm] rounds or a quieter machine would tell",
                    r.ratio, r.trial_id
                );
            } else if chosen.row.trial_id == best.row.trial_id {
                let _ = write!(
                    verdict,
                    "; it cannot be told apart from {} ({:.3}×, {ci}) and uses the least memory of those",
                    r.trial_id, r.ratio
                );
            } else {
                let _ = write!(
                    verdict,
                    "; the best measured, {}, cannot be told apart from it ({:.3}×, {ci}), and this one uses less memory",
                    r.trial_id, r.ratio
                );
            }
        }
        None => {}
    }
    Some(Recommendation {
        trial_id: chosen.row.trial_id.clone(),
        metric: objective.metric.name().into(),
        value: geo(chosen),
        runs: chosen.logs.len(),
        runner_up,
        verdict,
        candidates: candidates.iter().map(|c| c.spec.trial_id.clone()).collect(),
        references: Vec::new(),
        versus: Vec::new(),
    })
}

/// The recommendation of a folder's last confirmation round, if any.
pub fn read_recommendation(folder: &Path) -> Option<Recommendation> {
    let text = std::fs::read_to_string(folder.join(RECOMMENDATION_JSON)).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::references::Role;
    use crate::runner::Execution;
    use crate::runner::mock::{self, MockExecutor};
    use crate::sweep::Silent;
    use crate::test_support::{defaults, row, spec};

    static DEFAULT_ORIGIN: crate::workers::Origin = crate::workers::Origin {
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
    fn confirm_all(
        ranked: &[&TrialRow],
        executor: &mut dyn Executor,
        folder: &Path,
    ) -> Confirmation {
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
            rec.verdict.contains("cannot be told apart"),
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
        assert!(
            rec.verdict.contains("too noisy to be sure"),
            "{}",
            rec.verdict
        );
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
        )
        .unwrap();
        let Confirmation::Decided(rec) = end else {
            panic!("{end:?}")
        };
        assert_eq!(rec.trial_id, "fast", "{}", rec.verdict);
        assert!(
            rec.verdict.contains("too noisy to be sure"),
            "{}",
            rec.verdict
        );
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
        assert!(matches!(end, Confirmation::Undecided), "{end:?}");
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
            rec.verdict
                .contains(&format!("; {:.2}× your baseline (95% CI ", base.ratio))
                && rec.verdict.contains("× llama-server's defaults (95% CI "),
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
            rec.verdict.contains(
                "; it is your baseline; llama-server's defaults could not be measured again"
            ),
            "{}",
            rec.verdict
        );
    }
}
