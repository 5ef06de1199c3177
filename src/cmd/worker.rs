//! `llama-sweep worker`: one of several processes measuring one sweep. It
//! is `run` with its own rows file and claims, and without the confirmation
//! round, the report and config.yaml, which the finishing `run` makes.

use crate::cli::{RunArgs, WorkerArgs, WorkerMode};
use std::time::Duration;

pub fn run(args: &WorkerArgs) -> anyhow::Result<u8> {
    let machine = crate::machine::Machine::detect();
    let name = crate::workers::worker_name(args.name.as_deref(), &machine.hostname);
    let run_args = RunArgs {
        sweep: args.sweep.clone(),
        top: 0,
        fresh: false,
        allow_changed: false,
        retries: args.retries,
        max_trials: args.max_trials,
        max_hours: args.max_hours,
        test_fault: args.test_fault,
        workers: None,
        cpus: None,
        worker: Some(WorkerMode {
            name,
            lease: Duration::from_secs_f64(args.lease_s.max(1.0)),
            shares_cores: args.shares_cores,
        }),
    };
    crate::cmd::run::run(&run_args)
}
