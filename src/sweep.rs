//! The sweep loop: ask the strategy for a trial, run it with the executor,
//! store its row, tell the strategy, report progress — until the strategy is
//! done. A trial that fails is a row like any other; only a failure of the
//! sweep's own machinery (the store cannot be written) stops the loop.

use crate::objective::Objective;
use crate::protocol::{EffectiveParams, TrialSpec};
use crate::runner::{Executor, TrialOutcome, TrialStatus};
use crate::search::Strategy;
use crate::store::Store;
use crate::store::row::{RowContext, TrialRow};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// What the loop needs besides the strategy, executor and store.
pub struct SweepContext<'a> {
    pub sweep_name: &'a str,
    /// Recorded in every row: llama-sweep's version and llama.cpp's build.
    pub build: &'a str,
    pub defaults: &'a EffectiveParams,
    pub objective: &'a Objective,
    /// Position of each trial id in the plan (the row's `seq`).
    pub seq_of: HashMap<String, u32>,
    /// Model variants that could not be prepared (identity → reason): their
    /// trials are recorded as failed without being run.
    pub unavailable: HashMap<String, String>,
}

/// A finished trial, for progress display.
pub struct TrialEvent<'a> {
    pub done: usize,
    pub total: usize,
    pub row: &'a TrialRow,
    pub spec: &'a TrialSpec,
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

/// Runs trials until the strategy has none left. Returns the number run.
pub fn run(
    strategy: &mut dyn Strategy,
    executor: &mut dyn Executor,
    store: &mut Store,
    ctx: &SweepContext,
    on_trial: &mut dyn FnMut(TrialEvent),
) -> anyhow::Result<usize> {
    let total = strategy.remaining().unwrap_or(0);
    let mut done = 0;
    while let Some(spec) = strategy.propose() {
        let started_at = now_rfc3339();
        let log_file = Store::log_file(&spec.trial_id);
        let outcome = match ctx.unavailable.get(&spec.model.identity) {
            Some(reason) => unavailable_outcome(reason),
            None => executor.execute(&spec, &store.folder().join(&log_file))?,
        };
        let row = TrialRow::new(
            &spec,
            &outcome,
            RowContext {
                sweep: ctx.sweep_name,
                seq: ctx.seq_of.get(&spec.trial_id).copied().unwrap_or(u32::MAX),
                defaults: ctx.defaults,
                objective: ctx.objective,
                started_at,
                finished_at: now_rfc3339(),
                build: ctx.build,
                log_file,
            },
        );
        store.append(row.clone())?;
        strategy.observe(&spec, &row);
        done += 1;
        on_trial(TrialEvent {
            done,
            total: total.max(done),
            row: &row,
            spec: &spec,
        });
    }
    Ok(done)
}

fn unavailable_outcome(reason: &str) -> TrialOutcome {
    TrialOutcome {
        status: TrialStatus::Failed,
        error: Some(reason.to_string()),
        metrics: None,
        exit: None,
        peak_rss_kib: None,
        wall: Duration::ZERO,
        log_tail: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ModelVariant, Params, Workload};
    use crate::runner::mock::{self, MockExecutor};
    use crate::search::GridStrategy;
    use std::collections::HashSet;

    fn specs(n: usize) -> Vec<TrialSpec> {
        (0..n)
            .map(|i| TrialSpec {
                trial_id: format!("t{i}"),
                model: ModelVariant {
                    name: "m".into(),
                    variant: if i == 3 { "Q8_0".into() } else { "Q4_1".into() },
                    path: "m.gguf".into(),
                    identity: if i == 3 {
                        "derived".into()
                    } else {
                        "file".into()
                    },
                },
                params: Params {
                    n_threads: Some(i as i32 + 1),
                    ..Params::default()
                },
                workload: Workload {
                    prompt_tokens: 8,
                    gen_tokens: 4,
                    repetitions: 2,
                    warmup: 0,
                    request_prompt_tokens: 8,
                    request_max_tokens: 4,
                },
                seed: 0,
            })
            .collect()
    }

    use crate::test_support::defaults;

    #[test]
    fn every_trial_becomes_one_row_whatever_its_ending() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let trials = specs(5);
        let mut strategy = GridStrategy::new(&trials, &HashSet::new());
        let mut executor = MockExecutor::new(|spec: &TrialSpec| match spec.trial_id.as_str() {
            "t1" => mock::failed(TrialStatus::Crashed, "signal 11"),
            "t2" => mock::failed(TrialStatus::Timeout, "too slow"),
            id => mock::measured(100.0 + id[1..].parse::<f64>().unwrap(), 500.0),
        });
        let defaults = defaults();
        let objective = Objective::default();
        let ctx = SweepContext {
            sweep_name: "s",
            build: "test build",
            defaults: &defaults,
            objective: &objective,
            seq_of: trials
                .iter()
                .enumerate()
                .map(|(i, t)| (t.trial_id.clone(), i as u32))
                .collect(),
            unavailable: [("derived".to_string(), "could not derive Q8_0".to_string())].into(),
        };
        let mut events = Vec::new();
        let n = run(&mut strategy, &mut executor, &mut store, &ctx, &mut |e| {
            events.push((e.done, e.total, e.row.status))
        })
        .unwrap();
        assert_eq!(n, 5);
        // The unavailable variant's trial was not executed but recorded.
        assert_eq!(executor.executed, vec!["t0", "t1", "t2", "t4"]);
        let statuses: Vec<_> = store.rows().iter().map(|r| r.status).collect();
        use TrialStatus::*;
        assert_eq!(statuses, vec![Ok, Crashed, Timeout, Failed, Ok]);
        assert_eq!(
            store.rows()[3].error.as_deref(),
            Some("could not derive Q8_0")
        );
        assert_eq!(store.rows()[4].seq, 4);
        assert_eq!(events.last().unwrap().0, 5);
        assert_eq!(events[0].1, 5);
        assert!(dir.path().join("logs/t0.log").exists());
    }

    #[test]
    fn recorded_trials_are_not_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let trials = specs(4);
        let defaults = defaults();
        let objective = Objective::default();
        let ctx = SweepContext {
            sweep_name: "s",
            build: "test build",
            defaults: &defaults,
            objective: &objective,
            seq_of: HashMap::new(),
            unavailable: HashMap::new(),
        };
        let answer = |_: &TrialSpec| mock::measured(50.0, 100.0);
        {
            let mut store = Store::open(dir.path()).unwrap();
            let mut first_two = GridStrategy::new(&trials[..2], &HashSet::new());
            run(
                &mut first_two,
                &mut MockExecutor::new(answer),
                &mut store,
                &ctx,
                &mut |_| {},
            )
            .unwrap();
        }
        let mut store = Store::open(dir.path()).unwrap();
        let mut strategy = GridStrategy::new(&trials, &store.recorded_ids());
        let mut executor = MockExecutor::new(answer);
        run(&mut strategy, &mut executor, &mut store, &ctx, &mut |_| {}).unwrap();
        assert_eq!(executor.executed, vec!["t2", "t3"]);
        let ids: Vec<_> = store.rows().iter().map(|r| r.trial_id.as_str()).collect();
        assert_eq!(ids, vec!["t0", "t1", "t2", "t3"]);
    }
}
