//! Many workers on one folder, killed and restarted at random, with the
//! mock executor: every trial of the plan ends up recorded exactly once.

use crate::failure_watch::FailureWatch;
use crate::objective::Objective;
use crate::protocol::TrialSpec;
use crate::rng::SplitMix64;
use crate::runner::Execution;
use crate::runner::mock::{self, MockExecutor};
use crate::search::GridStrategy;
use crate::store::Store;
use crate::sweep::{self, Silent, SweepContext, SweepEnd, SweepOptions};
use crate::test_support::{defaults, spec};
use crate::workers::Origin;
use crate::workers::claims::Claims;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

const LEASE: Duration = Duration::from_millis(1500);

/// Runs one worker (or, `worker == None`, the finishing run) over `plan`
/// until it ends; `kill` says after which trial it dies (a panic: no row,
/// no release, renewals stop, as a SIGKILL leaves things).
fn work(folder: &Path, plan: &[TrialSpec], worker: Option<&str>, kill_at: Option<usize>) -> bool {
    let name = worker.unwrap_or("finish");
    let claims = Claims::new(folder, name, "host", LEASE).unwrap();
    let origin = Origin {
        host: "host".into(),
        worker: worker.unwrap_or_default().into(),
        ..Origin::default()
    };
    let defaults = defaults();
    let objective = Objective::default();
    let ctx = SweepContext {
        sweep_name: "s",
        build: "test",
        defaults: &defaults,
        objective: &objective,
        plan,
        unavailable: HashMap::new(),
        facts: None,
        origin: &origin,
        claims: &claims,
    };
    let options = SweepOptions {
        retries: 0,
        wait_for_others: worker.is_none(),
        ..SweepOptions::default()
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut store = Store::open_as(folder, worker).unwrap();
        let mut strategy = GridStrategy::new(plan, &store.recorded_ids());
        let mut calls = 0;
        let mut executor = MockExecutor::new(|_| {
            calls += 1;
            if Some(calls) == kill_at {
                panic!("killed");
            }
            Execution::Done(mock::measured(100.0, 400.0))
        });
        sweep::run(
            &mut strategy,
            &mut executor,
            &mut store,
            &ctx,
            &options,
            &mut Silent,
            &mut FailureWatch::new(true),
        )
        .unwrap()
    }));
    match result {
        Ok(end) => {
            assert_eq!(end, SweepEnd::Completed);
            true
        }
        Err(_) => {
            // Killed mid-write now and then: half a record at the end.
            if kill_at.unwrap_or(0) % 3 == 0 {
                use std::io::Write;
                let path = super::rows_file(folder, name);
                let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
                f.write_all(b"half-a-row,s,1").unwrap();
            }
            false
        }
    }
}

#[test]
fn eight_workers_killed_at_random_record_every_trial_once() {
    let dir = tempfile::tempdir().unwrap();
    let plan: Vec<TrialSpec> = (0..1000).map(|i| spec(&format!("t{i:04}"))).collect();
    std::thread::scope(|s| {
        for w in 0..8u64 {
            let (folder, plan) = (dir.path(), &plan);
            s.spawn(move || {
                let mut rng = SplitMix64::new(w + 1);
                for life in 0.. {
                    // Most lives end in a kill after a few dozen trials;
                    // the fifth runs to the end.
                    let kill_at = (life < 4).then(|| 1 + (rng.next_u64() % 60) as usize);
                    // A restarted worker is a new one (a new SLURM task).
                    let name = format!("w{w}-life{life}");
                    if work(folder, plan, Some(&name), kill_at) {
                        break;
                    }
                }
            });
        }
    });
    // What dead workers held and nobody took over yet is the finishing
    // run's: it waits out their leases.
    assert!(work(dir.path(), &plan, None, None));

    let rows = crate::store::read_rows(dir.path()).unwrap();
    let mut ids: Vec<&str> = rows.iter().map(|r| r.trial_id.as_str()).collect();
    ids.sort();
    let expected: Vec<String> = plan.iter().map(|t| t.trial_id.clone()).collect();
    assert_eq!(ids, expected, "every trial once in the merged rows");
    // Nor twice across files: no trial was measured by two workers.
    let mut in_files = 0;
    for file in super::rows_files(dir.path())
        .into_iter()
        .chain([dir.path().join(crate::store::RESULTS_CSV)])
    {
        in_files += crate::store::csv_file::read(&file).unwrap().len();
    }
    assert_eq!(in_files, 1000, "no trial measured twice");
    assert!(
        Claims::live_in(dir.path()).is_empty(),
        "every claim released or lapsed"
    );
}
