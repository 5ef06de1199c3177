//! The confirmation round. A sweep ranks trials by measurements taken hours
//! apart on a machine whose speed drifts; before recommending one, the top
//! few feasible configurations are measured again, interleaved (A B C, B C A,
//! C A B ...) with more repetitions, and the winner is picked on those runs
//! (`decide`): a candidate whose runs failed or broke a constraint of the
//! objective ranks behind those that ran cleanly (`faults`), and
//! configurations that cannot be told apart go to the one using less memory
//! of the same kind (`footprint`). The reference trials (the user's
//! baseline, llama-server's defaults) are measured in the same rounds, and
//! the recommendation is stated against them (`versus`).

pub mod blocks;
#[cfg(test)]
mod blocks_tests;
mod decide;
mod faults;
mod footprint;
pub mod sequential;
#[cfg(test)]
mod tests;
mod versus;

pub use versus::Versus;

use crate::clock::now_rfc3339;
use crate::config::ConfirmSettings;
use crate::plan::references::Reference;
use crate::protocol::TrialSpec;
use crate::runner::Executor;
use crate::store::csv_log::{CsvLog, SerdeCodec};
use crate::store::row::TrialRow;
use crate::sweep::{RowFacts, SweepObserver, measure_once};
use anyhow::Context;
pub use blocks::ResidentSetup;
use decide::{Candidate, decide};
use faults::RunRecord;
use sequential::{Looks, Pairing, Reached, Rule, Stopped};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const CONFIRM_CSV: &str = "confirm.csv";
pub const RECOMMENDATION_JSON: &str = "recommendation.json";
/// The version of the rules that pick the recommendation, kept beside it in
/// recommendation.json (none: 0). 1: failed runs and broken constraints
/// count, and memory is weighed like with like. 2: candidates and
/// references are compared round by round (paired). 3: the rounds go on
/// until the verdict is decided (sequential, with Bonferroni intervals), and
/// configurations within the equivalence margin are said to be. 4: the
/// subjects are measured side by side in alternated blocks, the intervals
/// hold together over the verdict's comparisons, and the objective is the
/// app's request by default.
pub const DECISION_RULES: u32 = 4;

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
    /// How many rounds were run and why they stopped (none before rules 3).
    #[serde(default)]
    pub reached: Option<Reached>,
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
    /// The rounds the interval pairs (0: over all runs, unpaired).
    #[serde(default)]
    pub paired_rounds: usize,
}

/// How a confirmation round ended.
#[derive(Debug)]
pub enum Confirmation {
    Decided(Box<Recommendation>),
    /// No candidate ran cleanly in most of its runs (or none could be
    /// measured again): the sweep's own ranking stands. `reason` says what
    /// went wrong with each.
    Undecided {
        reason: String,
    },
    /// A stop was asked for.
    Interrupted,
}

/// A trial measured in the round: a candidate or a reference.
struct Subject {
    spec: TrialSpec,
    /// The log of the metric in each round so far (`None`: not measured).
    rounds: Vec<Option<f64>>,
    record: RunRecord,
}

/// Runs the round over `ranked` (feasible rows, best first), measuring the
/// `references` (those that ran in the sweep) in the same rounds: side by
/// side in alternated blocks when `resident` lends resident children
/// (`blocks`), else in rounds of whole trials through `executor`.
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
    resident: Option<ResidentSetup>,
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
        return Ok(Confirmation::Undecided {
            reason: "none of the best trials is in the plan".into(),
        });
    }
    let mut subjects: Vec<Subject> = top
        .iter()
        .map(|(_, spec)| spec)
        .chain(references.iter().map(|r| &r.spec))
        .fold(Vec::new(), |mut subjects: Vec<Subject>, spec| {
            if !subjects.iter().any(|s| s.spec.trial_id == spec.trial_id) {
                let mut spec = spec.clone();
                spec.workload.repetitions = repetitions(&spec);
                if spec.schedule.first.is_none() {
                    spec.schedule.first = Some(objective.metric);
                }
                subjects.push(Subject {
                    spec,
                    rounds: Vec::new(),
                    record: RunRecord::default(),
                });
            }
            subjects
        });
    let rows: Vec<Option<&TrialRow>> = subjects
        .iter()
        .map(|s| {
            top.iter()
                .find(|(_, spec)| spec.trial_id == s.spec.trial_id)
                .map(|(row, _)| *row)
        })
        .collect();
    let extra = subjects.len() - top.len();
    let pairing = match resident {
        Some(_) => Pairing::Blocks,
        None => Pairing::Rounds,
    };
    let looks = match pairing {
        Pairing::Blocks => Looks::at(&blocks::look_points(settings.pairs, settings.max_pairs)),
        Pairing::Rounds => Looks::new(settings.rounds, settings.max_rounds),
    };
    // The runner-up and each reference: their intervals hold together.
    let comparisons = usize::from(top.len() > 1) + references.len();
    let rule = Rule {
        alpha: looks.alpha(comparisons),
        margin: settings.equivalent_within,
        pairing,
    };
    let whom = format!(
        "the best {}{}",
        top.len(),
        match extra {
            0 => String::new(),
            1 => " and 1 reference trial".into(),
            n => format!(" and {n} reference trials"),
        }
    );
    let how_many = |unit: &str| match looks.count() {
        1 => format!("{} {unit}", looks.first()),
        _ => format!(
            "{} to {} {unit} (until the verdict is decided)",
            looks.first(),
            looks.max()
        ),
    };
    observer.note(&match pairing {
        Pairing::Blocks => format!(
            "confirmation: measuring {whom} side by side, each loaded once in its own process: \
             blocks of one {} each, alternated in a random order, {}",
            block_of(objective),
            how_many("pairs")
        ),
        Pairing::Rounds => format!(
            "confirmation: measuring {whom} again, {} of {} repetitions",
            how_many("interleaved rounds"),
            subjects[0].spec.workload.repetitions
        ),
    });
    std::fs::create_dir_all(folder.join("logs"))
        .with_context(|| format!("cannot create {}", folder.join("logs").display()))?;
    let started = std::time::Instant::now();
    let mut cycles = match resident {
        Some(setup) => Some(blocks::Cycles::start(
            &subjects, setup, objective, folder, observer,
        )?),
        None => None,
    };
    let mut done = 0;
    let (judged, stopped) = loop {
        let busy = match &mut cycles {
            Some(c) => match c.cycle(done, &mut subjects, &rows, folder, observer)? {
                blocks::CycleEnd::Measured => false,
                blocks::CycleEnd::Interrupted => return Ok(Confirmation::Interrupted),
                blocks::CycleEnd::Busy => true,
            },
            None => {
                if !measure_round(done, &mut subjects, executor, folder, facts, observer)? {
                    return Ok(Confirmation::Interrupted);
                }
                false
            }
        };
        if !busy {
            done += 1;
        }
        let look = busy || looks.looks_after(done);
        let judged = look.then(|| {
            judge(
                &top,
                &subjects,
                references,
                objective,
                rule,
                (done, looks.max()),
            )
        });
        if busy {
            break (judged.expect("judged when busy"), Stopped::Busy);
        }
        let decided = judged.as_ref().is_some_and(|j| j.decided);
        let hopeless = judged.as_ref().is_some_and(|j| j.hopeless);
        let minutes = started.elapsed().as_secs_f64() / 60.0;
        let next = sequential::another_round(
            &looks,
            done,
            decided,
            hopeless,
            minutes,
            settings.max_minutes,
        );
        match next {
            Ok(()) => {
                if let Some(j) = &judged {
                    observer.note(&format!(
                        "confirmation after {}: {}; going on",
                        pairing.count(done),
                        j.open
                    ));
                }
            }
            Err(stopped) => break (judged.expect("the rounds stop only at a look"), stopped),
        }
    };
    drop(cycles);
    let mut r = match judged.recommendation {
        Ok(r) => r,
        Err(reason) => {
            forget_recommendation(folder)?;
            return Ok(Confirmation::Undecided { reason });
        }
    };
    let reached = Reached {
        rounds: done,
        max_rounds: looks.max(),
        looks: looks.count(),
        comparisons,
        stopped,
        minutes: started.elapsed().as_secs_f64() / 60.0,
        pairing,
    };
    r.verdict.push_str("; ");
    r.verdict.push_str(&reached.clause(settings.max_minutes));
    r.reached = Some(reached);
    let json = serde_json::to_string_pretty(&DecisionFile {
        rules: DECISION_RULES,
        machine_id: &facts.origin.machine_id,
        recommendation: &r,
    })?;
    crate::store::write_atomically(&folder.join(RECOMMENDATION_JSON), json.as_bytes())?;
    Ok(Confirmation::Decided(Box::new(r)))
}

/// What one block of the objective's test is, for the progress line.
fn block_of(objective: &crate::objective::Objective) -> &'static str {
    match crate::early_drop::Test::of(objective.metric) {
        Some(crate::early_drop::Test::Request) => "request",
        Some(crate::early_drop::Test::Generation(_)) => "generation run",
        Some(crate::early_drop::Test::Prompt(_)) => "prompt run",
        None => "run",
    }
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

/// recommendation.json: the recommendation, the rules that chose it and
/// the machine it was measured on.
#[derive(Serialize)]
struct DecisionFile<'a> {
    rules: u32,
    machine_id: &'a str,
    #[serde(flatten)]
    recommendation: &'a Recommendation,
}

/// The rules and the machine recorded in recommendation.json.
#[derive(Deserialize)]
struct RulesOfDecision {
    #[serde(default)]
    rules: u32,
    #[serde(default)]
    machine_id: String,
}

/// The recommendation of a folder's last confirmation round, if any.
pub fn read_recommendation(folder: &Path) -> Option<Recommendation> {
    let text = std::fs::read_to_string(folder.join(RECOMMENDATION_JSON)).ok()?;
    serde_json::from_str(&text).ok()
}

/// The last round's recommendation if the current rules chose it on the
/// machine `machine_id` (one chosen by older rules, or measured on other
/// hardware, is to be decided again).
pub fn read_current_recommendation(folder: &Path, machine_id: &str) -> Option<Recommendation> {
    let text = std::fs::read_to_string(folder.join(RECOMMENDATION_JSON)).ok()?;
    let decision: RulesOfDecision = serde_json::from_str(&text).ok()?;
    (decision.rules == DECISION_RULES && decision.machine_id == machine_id)
        .then(|| serde_json::from_str(&text).ok())?
}

/// Removes an earlier round's recommendation: after a round that decided
/// nothing, the sweep's ranking stands everywhere (report, export, verify).
fn forget_recommendation(folder: &Path) -> anyhow::Result<()> {
    let path = folder.join(RECOMMENDATION_JSON);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Measures every subject once, in round `round` (0-based), interleaved:
/// each round starts one subject later than the last. `false` when a stop
/// was asked for.
fn measure_round(
    round: usize,
    subjects: &mut [Subject],
    executor: &mut dyn Executor,
    folder: &Path,
    facts: &RowFacts,
    observer: &mut dyn SweepObserver,
) -> anyhow::Result<bool> {
    let objective = facts.objective;
    let n = subjects.len();
    for k in 0..n {
        let c = &mut subjects[(k + round) % n];
        let log = format!("logs/{}.confirm{}.log", c.spec.trial_id, round + 1);
        let Some(row) = measure_once(executor, &c.spec, folder, log, 0, facts)? else {
            return Ok(false);
        };
        let value = objective.score(&row);
        c.rounds.push(value.map(|v| v.max(1e-12).ln()));
        c.record.record(round + 1, &row, objective);
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
        // A failed run breaks every constraint; its status says enough.
        let violations = row.is_ok().then(|| objective.violations(&row));
        let broken = match violations.filter(|v| !v.is_empty()) {
            Some(v) => format!(", breaks {}", v.join(", ")),
            None => String::new(),
        };
        observer.note(&format!(
            "confirmation round {}: {} {}{}",
            round + 1,
            run.trial_id,
            value.map_or(format!("{} (not measured)", run.status), |v| format!(
                "{v:.1} {}",
                objective.metric.unit()
            )),
            broken
        ));
    }
    Ok(true)
}

/// The verdict at a look: the recommendation on the rounds so far (or why
/// there is none) with its comparisons, whether each is decided, and what
/// is still open.
struct Judged {
    recommendation: Result<Recommendation, String>,
    decided: bool,
    /// No undecided comparison could be decided by the last round, were
    /// its estimate and noise to stay as measured.
    hopeless: bool,
    /// The comparisons still undecided, for the progress notes.
    open: String,
}

fn judge(
    top: &[(&TrialRow, TrialSpec)],
    subjects: &[Subject],
    references: &[Reference],
    objective: &crate::objective::Objective,
    rule: Rule,
    (done, max_rounds): (usize, usize),
) -> Judged {
    let subject_of = |id: &str| subjects.iter().find(|s| s.spec.trial_id == id);
    let rounds_of = |id: &str| subject_of(id).map_or(&[][..], |s| s.rounds.as_slice());
    let candidates: Vec<Candidate> = top
        .iter()
        .map(|(row, spec)| Candidate {
            row,
            rounds: rounds_of(&spec.trial_id).to_vec(),
            record: subject_of(&spec.trial_id)
                .map(|s| s.record.clone())
                .unwrap_or_default(),
        })
        .collect();
    let mut r = match decide(&candidates, objective, rule) {
        Ok(r) => r,
        // More rounds would not make most runs of a candidate clean.
        Err(reason) => {
            return Judged {
                recommendation: Err(reason),
                decided: true,
                hopeless: false,
                open: String::new(),
            };
        }
    };
    // The undecided comparisons, and whether each could still be decided.
    let mut open: Vec<(String, bool)> = Vec::new();
    let mut judge_one = |what: String, ratio: f64, low: Option<f64>, high: Option<f64>| {
        if !rule.finding(low, high).decided() {
            let could = rule.could_decide(ratio, low, high, done, max_rounds);
            open.push((what, could));
        }
    };
    if let Some(runner_up) = &r.runner_up {
        judge_one(
            format!("against the runner-up {}", runner_up.trial_id),
            runner_up.ratio,
            runner_up.ratio_low,
            runner_up.ratio_high,
        );
    }
    let chosen_rounds = rounds_of(&r.trial_id);
    for reference in references {
        let measured = versus::Measured {
            role: reference.role,
            trial_id: &reference.spec.trial_id,
            rounds: rounds_of(&reference.spec.trial_id),
        };
        let clause = match versus::compare(objective, &r.trial_id, chosen_rounds, &measured, rule) {
            Some(v) => {
                judge_one(
                    format!("against {}", reference.role.phrase()),
                    v.ratio,
                    v.ratio_low,
                    v.ratio_high,
                );
                let clause = versus::clause(&v, &r.trial_id, objective.metric, rule);
                r.versus.push(v);
                clause
            }
            None => format!("{} could not be measured again", reference.role.phrase()),
        };
        r.verdict.push_str("; ");
        r.verdict.push_str(&clause);
    }
    r.references = references.iter().map(|r| r.spec.trial_id.clone()).collect();
    let open_ones: Vec<&str> = open.iter().map(|(what, _)| what.as_str()).collect();
    Judged {
        decided: open.is_empty(),
        hopeless: !open.is_empty() && open.iter().all(|(_, could)| !could),
        open: format!("{} undecided {}", r.trial_id, open_ones.join(" and ")),
        recommendation: Ok(r),
    }
}
