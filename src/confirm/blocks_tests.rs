//! The confirmation side by side, over mock resident children: blocks are
//! alternated and paired within their cycle, a swing of the machine that
//! hits a whole cycle cancels out, the verdict is decided within dozens of
//! pairs, a subject that cannot load is passed over, and everything goes to
//! confirm.csv.

use super::*;
use crate::objective::{Metric, Objective};
use crate::plan::references::Role;
use crate::protocol::BlockFigures;
use crate::runner::mock::MockExecutor;
use crate::runner::{Execution, Resident, Residents};
use crate::sweep::Silent;
use crate::test_support::{defaults, row, spec};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Blocks of a trial: its true speed times the machine's swing in the
/// block's cycle (the k-th block of every subject is in cycle k), times a
/// little noise of its own.
struct MockResident {
    id: String,
    truth: f64,
    blocks: usize,
    swing: Rc<dyn Fn(usize) -> f64>,
}

impl Resident for MockResident {
    fn block(&mut self) -> Result<BlockFigures, String> {
        let k = self.blocks;
        self.blocks += 1;
        let own = 1.0 + 0.01 * (((k * 7 + self.id.len() * 3) % 5) as f64 - 2.0);
        let v = self.truth * (self.swing)(k) * own;
        Ok(BlockFigures {
            figures: vec![(Metric::RequestTps, v), (Metric::TtftMs, 100.0)],
            robust: Vec::new(),
        })
    }

    fn pids(&self) -> Vec<u32> {
        Vec::new()
    }
}

struct MockResidents {
    truth: HashMap<String, f64>,
    swing: Rc<dyn Fn(usize) -> f64>,
    started: Rc<RefCell<Vec<String>>>,
}

impl Residents for MockResidents {
    fn start(
        &mut self,
        job: &crate::protocol::ResidentJob,
        _log: &std::path::Path,
    ) -> anyhow::Result<Result<Box<dyn Resident>, String>> {
        let id = job.spec.trial_id.clone();
        self.started.borrow_mut().push(id.clone());
        Ok(match self.truth.get(&id) {
            Some(&truth) => Ok(Box::new(MockResident {
                id,
                truth,
                blocks: 0,
                swing: self.swing.clone(),
            })),
            None => Err("failed: cannot load model".into()),
        })
    }
}

fn rows(ids: &[&str]) -> Vec<TrialRow> {
    ids.iter()
        .map(|id| row(id, &crate::runner::mock::measured(100.0, 400.0)))
        .collect()
}

/// The confirmation of `ids` (best first) and `references` with resident
/// subjects whose true speeds are `truth`; the machine swings by `swing`.
fn confirm_side_by_side(
    ids: &[&str],
    references: &[Reference],
    truth: &[(&str, f64)],
    swing: impl Fn(usize) -> f64 + 'static,
) -> (Confirmation, Vec<ConfirmRun>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let rows = rows(ids);
    let ranked: Vec<&TrialRow> = rows.iter().collect();
    let started = Rc::new(RefCell::new(Vec::new()));
    let mut residents = MockResidents {
        truth: truth.iter().map(|(id, v)| (id.to_string(), *v)).collect(),
        swing: Rc::new(swing),
        started: started.clone(),
    };
    let mut executor = MockExecutor::new(|_| -> Execution { panic!("no whole trials") });
    let objective = Objective::default();
    let defaults = defaults();
    let facts = crate::sweep::RowFacts {
        sweep_name: "s",
        build: "test",
        defaults: &defaults,
        objective: &objective,
        noise_cv_max: f64::INFINITY,
        facts: None,
        origin: &super::tests::DEFAULT_ORIGIN,
        quiet: None,
    };
    let end = confirm(
        &ranked,
        references,
        &|id| Some(spec(id)),
        &mut executor,
        dir.path(),
        &facts,
        &ConfirmSettings::default(),
        &mut Silent,
        Some(ResidentSetup {
            residents: &mut residents,
            // Nothing else runs in a test's mock: no block is busy.
            quiet: crate::machine_load::QuietRule {
                cores_max: f64::INFINITY,
                wait_s: 0.0,
            },
            seed: 7,
        }),
    )
    .unwrap();
    let runs = read_runs(dir.path()).unwrap();
    let started = started.borrow().clone();
    (end, runs, started)
}

fn decided(end: Confirmation) -> Recommendation {
    match end {
        Confirmation::Decided(r) => *r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_swinging_machine_cancels_in_pairs_of_blocks_and_five_percent_is_decided() {
    // Every cycle the whole machine is up to 30% slower or faster: far
    // more than the 5% between the two.
    let swing = |k: usize| 1.0 + 0.3 * ((k as f64 * 1.7).sin());
    let (end, runs, started) =
        confirm_side_by_side(&["a", "b"], &[], &[("a", 100.0), ("b", 105.0)], swing);
    let rec = decided(end);
    assert_eq!(started, ["a", "b"], "each loaded once");
    assert_eq!(rec.trial_id, "b", "{}", rec.verdict);
    let r = rec.runner_up.as_ref().unwrap();
    assert!(r.distinguishable, "{}", rec.verdict);
    assert!(
        rec.verdict.contains("faster than the runner-up a (95% CI")
            && rec.verdict.contains("pairs of blocks"),
        "{}",
        rec.verdict
    );
    let reached = rec.reached.as_ref().unwrap();
    assert_eq!(reached.stopped, Stopped::Decided);
    assert_eq!(reached.rounds, 10, "decided at the first look");
    // One block of each per cycle, every one in confirm.csv.
    assert_eq!(runs.len(), 2 * reached.rounds);
    assert!(runs.iter().all(|r| r.repetitions == 1 && r.status == "ok"));
}

#[test]
fn two_equal_configurations_are_said_to_be_within_the_margin() {
    let swing = |k: usize| 1.0 + 0.2 * ((k as f64 * 0.9).cos());
    let (end, _, _) = confirm_side_by_side(&["a", "b"], &[], &[("a", 100.0), ("b", 100.0)], swing);
    let rec = decided(end);
    assert!(
        rec.verdict.contains("as fast as the runner-up") && rec.verdict.contains("within 5%"),
        "{}",
        rec.verdict
    );
    assert_eq!(rec.reached.as_ref().unwrap().stopped, Stopped::Decided);
}

#[test]
fn references_are_compared_in_the_same_cycles_and_a_subject_that_cannot_load_is_passed_over() {
    let reference = Reference {
        role: Role::Baseline,
        spec: spec("base"),
        note: None,
    };
    let swing = |k: usize| 1.0 + 0.25 * ((k as f64 * 2.3).sin());
    let (end, _, started) = confirm_side_by_side(
        &["a", "broken"],
        &[reference],
        &[("a", 100.0), ("base", 50.0)],
        swing,
    );
    let rec = decided(end);
    assert_eq!(started.len(), 3);
    assert_eq!(rec.trial_id, "a", "{}", rec.verdict);
    assert!(
        rec.verdict
            .contains("2.00× faster than your baseline (95% CI"),
        "{}",
        rec.verdict
    );
    assert!(
        rec.verdict.contains("broken was passed over"),
        "{}",
        rec.verdict
    );
    let reached = rec.reached.as_ref().unwrap();
    assert_eq!(reached.comparisons, 2, "the runner-up and the baseline");
}
