//! `llama-sweep run`, phase by phase; this function is the table of
//! contents. Every phase reads and updates one [`Sweep`], and a phase after
//! a stop (Ctrl-C, a budget, a systematic failure) does nothing, so what
//! was recorded is summarised and kept. Returns the exit status.

mod confirmation;
mod finish;
mod models;
mod prepare;
mod spread;
mod trials;
mod verification;

use crate::cli::RunArgs;
use crate::config::SweepConfig;
use crate::confirm::Recommendation;
use crate::failure_watch::FailureWatch;
use crate::models::PlannedVariant;
use crate::plan::Plan;
use crate::plan::references::Reference;
use crate::protocol::{ProbeReport, TrialSpec};
use crate::quality::VariantFacts;
use crate::report::progress::Progress;
use crate::runner::child::ChildRunner;
use crate::selftest::BackendCheck;
use crate::store::row::TrialRow;
use crate::store::{Store, manifest::Manifest};
use crate::sweep::SweepEnd;
use crate::workers::Origin;
use crate::workers::claims::Claims;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

pub fn run(args: &RunArgs) -> anyhow::Result<u8> {
    crate::interrupt::install();
    if let Some(workers) = &args.workers {
        if let Some(status) = spread::spread(args, workers)? {
            return Ok(status);
        }
    }
    let mut children = ChildRunner::current()?;
    children.test_fault = args.test_fault;
    let mut sweep = prepare::prepare(args, &mut children)?;
    trials::check_server_flags(&mut sweep)?;
    trials::check_python(&mut sweep)?;
    if sweep.worker.is_some() {
        sweep.write_worker_state("running", 0)?;
    }
    models::derive(&mut sweep, &mut children)?;
    models::machine_facts(&mut sweep)?;
    models::check_backend(&mut sweep, &mut children)?;
    models::quality(&mut sweep, &mut children)?;
    trials::fit_reference(&mut sweep, &mut children)?;
    trials::references(&mut sweep, &mut children, args)?;
    trials::search(&mut sweep, &mut children, args)?;
    confirmation::confirm(&mut sweep, &mut children)?;
    verification::verify(&mut sweep)?;
    finish::finish(sweep, args)
}

/// The state of a run, handed from phase to phase.
pub(super) struct Sweep {
    pub config: SweepConfig,
    pub variants: Vec<PlannedVariant>,
    pub plan: Plan,
    /// The baseline and llama.cpp's defaults, measured first.
    pub references: Vec<Reference>,
    pub probe: ProbeReport,
    pub folder: PathBuf,
    pub store: Store,
    pub manifest: Manifest,
    pub progress: Progress,
    /// Recorded in every row: llama-sweep's version and llama.cpp's build.
    pub build: String,
    /// Quality and bytes per token of the variants.
    pub facts: VariantFacts,
    /// Variants that cannot be measured (identity → why): their trials are
    /// recorded as failed without running.
    pub unavailable: HashMap<String, String>,
    pub backend: Option<BackendCheck>,
    /// How the phases so far ended; a phase runs only while `Completed`.
    pub end: SweepEnd,
    pub recommendation: Option<Recommendation>,
    /// Watches the first trials for a failure they all share.
    pub watch: FailureWatch,
    /// The worker's name when this is `llama-sweep worker`.
    pub worker: Option<String>,
    /// Where the trials run, for the rows.
    pub origin: Origin,
    /// Who measures what in the folder.
    pub claims: Claims,
}

impl Sweep {
    /// Gives the progress line's ETA the budget, the reference trials and
    /// the confirmation round as they stand now.
    pub(super) fn schedule_eta(&mut self) {
        self.progress
            .set_schedule(crate::report::progress::eta::Schedule::of(
                &self.config,
                self.references.len(),
                self.worker.is_some(),
            ));
    }

    fn going(&self) -> bool {
        self.end == SweepEnd::Completed
    }

    /// Writes `workers/<name>.json` for `status` (a worker only).
    fn write_worker_state(&self, state: &str, recorded: usize) -> anyhow::Result<()> {
        let Some(worker) = &self.worker else {
            return Ok(());
        };
        crate::workers::write_state(
            &self.folder,
            &crate::workers::WorkerState {
                worker: worker.clone(),
                host: self.origin.host.clone(),
                pid: std::process::id(),
                machine_id: self.origin.machine_id.clone(),
                machine: self.origin.machine.clone(),
                started_at: self.manifest.started_at.clone(),
                updated_at: crate::clock::now_rfc3339(),
                recorded,
                state: state.into(),
            },
        )
    }

    /// manifest.json, or a worker's own beside its rows.
    fn manifest_path(&self) -> PathBuf {
        match &self.worker {
            None => self.folder.join(crate::store::MANIFEST),
            Some(name) => self
                .folder
                .join(crate::workers::WORKERS)
                .join(format!("{name}.manifest.json")),
        }
    }

    /// The ids of the plan's trials.
    fn trial_ids(&self) -> HashSet<&str> {
        self.plan
            .trials
            .iter()
            .map(|t| t.trial_id.as_str())
            .collect()
    }

    /// The ids of the plan's trials and of the references.
    fn planned_ids(&self) -> HashSet<&str> {
        self.trial_ids()
            .into_iter()
            .chain(self.references.iter().map(|r| r.spec.trial_id.as_str()))
            .collect()
    }

    /// The recorded rows among `ids`, in recording order.
    fn rows_of(&self, ids: &HashSet<&str>) -> Vec<TrialRow> {
        self.store
            .rows()
            .iter()
            .filter(|r| ids.contains(r.trial_id.as_str()))
            .cloned()
            .collect()
    }

    /// The rows measured on this machine (and old rows that do not say
    /// where): rows of other hardware are never ranked against them.
    fn on_this_machine(&self, rows: Vec<TrialRow>) -> Vec<TrialRow> {
        crate::store::measured_on(rows, &self.origin.machine_id)
    }

    /// The plan's trials, then the references outside it (numbered after it).
    fn every_trial(&self) -> Vec<TrialSpec> {
        let in_plan = self.trial_ids();
        self.plan
            .trials
            .iter()
            .chain(
                self.references
                    .iter()
                    .map(|r| &r.spec)
                    .filter(|s| !in_plan.contains(s.trial_id.as_str())),
            )
            .cloned()
            .collect()
    }

    /// Every spec of the plan and the references, to give them what the
    /// self-test forced.
    fn specs_mut(&mut self) -> impl Iterator<Item = &mut TrialSpec> {
        self.plan
            .trials
            .iter_mut()
            .chain(self.references.iter_mut().map(|r| &mut r.spec))
    }
}
