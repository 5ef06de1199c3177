//! The first phase of `run`: read the sweep file, plan the trials, ask
//! llama.cpp for its build and defaults, and make the output folder ready.
//! Everything that can refuse the sweep happens before the first write.

use super::super::run_setup;
use super::Sweep;
use crate::cli::RunArgs;
use crate::config::{self, SweepConfig};
use crate::failure_watch::FailureWatch;
use crate::knobs;
use crate::models;
use crate::plan::{self, references};
use crate::quality::VariantFacts;
use crate::report::progress::Progress;
use crate::runner::Children;
use crate::store::plan_file::{self, PlanFile, PlannedReference};
use crate::store::{self, Store, manifest};
use crate::sweep::SweepEnd;
use crate::workers::Origin;
use crate::workers::claims::{self, Claims};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

pub(super) fn prepare(args: &RunArgs, children: &mut dyn Children) -> anyhow::Result<Sweep> {
    let mut config = config::load(&args.sweep)?;
    apply_flags(&mut config, args);
    let variants = models::plan_variants(&config)?;
    let plan = plan::build(&config, &variants);

    let (probe, probe_log) = run_setup::probe(children)?;
    let folder = config.sweep.output_folder();
    let mut references = Vec::new();
    let ready = run_setup::check_defaults(&config, &probe).and_then(|()| {
        let default_n_ctx = probe.defaults.int(knobs::N_CTX) as u32;
        let server = references::ServerDefaults::here(default_n_ctx);
        references = references::references(&config, &variants, &server)?;
        if args.fresh {
            if let Some(aside) = run_setup::move_aside(&folder)? {
                eprintln!(
                    "llama-sweep: earlier results moved aside to {}",
                    aside.display()
                );
            }
        }
        run_setup::check_meaning(&config, &folder, args.allow_changed)?;
        Store::open_as(&folder, args.worker.as_ref().map(|w| w.name.as_str()))
    });
    let store = match ready {
        Ok(store) => store,
        Err(e) => {
            let _ = std::fs::remove_file(&probe_log);
            return Err(e);
        }
    };
    if std::fs::copy(&probe_log, folder.join(store::LOGS).join("probe.log")).is_ok() {
        let _ = std::fs::remove_file(&probe_log);
    }
    if let Some(note) = store.repair_note() {
        eprintln!("warning: {note}");
    }
    let machine = crate::machine::Machine::detect();
    let (machine_id, mut machine_text) = crate::workers::fingerprint::of(&machine, &probe);
    if args.worker.as_ref().is_some_and(|w| w.shares_cores) {
        // Not part of the fingerprint: the same hardware, measured less
        // cleanly; the rows and the report say so.
        machine_text.push_str(" | CPU cores shared with the other GPU workers");
    }
    let mut store = store;
    count_what_this_run_can_use(&mut store, &machine_id, children.test_fault().is_some());
    let manifest = run_setup::manifest(
        &config,
        &folder,
        &probe,
        plan.trials.len(),
        store.rows().len(),
    );
    let origin = Origin {
        host: machine.hostname.clone(),
        worker: args
            .worker
            .as_ref()
            .map(|w| w.name.clone())
            .unwrap_or_default(),
        machine_id,
        machine: machine_text,
    };
    let lease = args
        .worker
        .as_ref()
        .map_or(claims::DEFAULT_LEASE, |w| w.lease);
    let claims = Claims::new(&folder, &origin.worker_or_host(), &origin.host, lease)?;
    match &args.worker {
        None => manifest::write(&folder.join(store::MANIFEST), &manifest)?,
        Some(w) => {
            manifest::write(
                &folder
                    .join(crate::workers::WORKERS)
                    .join(format!("{}.manifest.json", w.name)),
                &manifest,
            )?;
            // The finishing run reads the folder's manifest: the first
            // worker writes one if no run has.
            if !folder.join(store::MANIFEST).exists() {
                manifest::write(&folder.join(store::MANIFEST), &manifest)?;
            }
        }
    }
    store::write_atomically(&folder.join(store::SWEEP_COPY), config.source.as_bytes())?;
    plan_file::write(&folder, &plan_file_of(&config, &plan, &references))?;

    let mut build = format!(
        "llama-sweep {}, {}",
        env!("CARGO_PKG_VERSION"),
        probe.llama_cpp_build
    );
    if let Some(fault) = children.test_fault() {
        build.push_str(&format!(
            " [test fault {fault} injected: not a measurement]"
        ));
    }
    let progress = Progress::new(
        &folder,
        0,
        config.space.swept_axes(),
        &config.objective,
        std::io::stderr().is_terminal(),
    );
    let worked_before = store
        .rows()
        .iter()
        .any(|r| r.status.ran() && plan.trials.iter().any(|t| t.trial_id == r.trial_id));
    let mut sweep = Sweep {
        config,
        variants,
        plan,
        references,
        probe,
        folder,
        store,
        manifest,
        progress,
        build,
        facts: VariantFacts::default(),
        unavailable: HashMap::new(),
        backend: None,
        end: SweepEnd::Completed,
        recommendation: None,
        watch: FailureWatch::new(worked_before),
        worker: args.worker.as_ref().map(|w| w.name.clone()),
        origin,
        claims,
    };
    announce(&mut sweep, children);
    Ok(sweep)
}

/// Leaves out of the run's rows those it cannot use, and says so: rows of
/// other hardware (their trials are measured here too, so that this
/// machine's ranking covers the whole plan) and, in a run without
/// `--test-fault`, rows made under one (not measurements: measured again).
fn count_what_this_run_can_use(store: &mut Store, machine_id: &str, test_fault: bool) {
    store.count_only_machine(machine_id);
    if !test_fault {
        let faked = store.leave_out_test_fault_rows();
        if faked > 0 {
            eprintln!(
                "note: {faked} row(s) were made under --test-fault: their figures are not \
                 measurements, so those trials are measured again"
            );
        }
    }
    let recorded = store.recorded_ids();
    let mut elsewhere: Vec<(&str, &str)> = store
        .left_out()
        .iter()
        .filter(|r| (test_fault || !r.is_test_fault()) && !recorded.contains(&r.trial_id))
        .filter_map(|r| Some((r.trial_id.as_str(), r.machine_id.as_deref()?)))
        .collect();
    elsewhere.sort_unstable();
    elsewhere.dedup_by_key(|(id, _)| *id);
    if !elsewhere.is_empty() {
        let mut machines: Vec<&str> = elsewhere.iter().map(|(_, m)| *m).collect();
        machines.sort_unstable();
        machines.dedup();
        eprintln!(
            "note: {} trial(s) have rows only from other machines ({}): rows of other hardware \
             are not ranked with this one's ({machine_id}), so they are measured here too",
            elsewhere.len(),
            machines.join(", ")
        );
    }
}

/// What plan.json says of the plan and its references.
pub(super) fn plan_file_of(
    config: &SweepConfig,
    plan: &plan::Plan,
    references: &[references::Reference],
) -> PlanFile {
    PlanFile {
        sweep: config.sweep.name.clone(),
        trial_ids: plan.trials.iter().map(|t| t.trial_id.clone()).collect(),
        strategy: Some(config.sweep.strategy.name().into()),
        max_trials: config.sweep.max_trials,
        references: references.iter().map(PlannedReference::from).collect(),
    }
}

/// The first lines of the run: the plan, the build, the references.
fn announce(sweep: &mut Sweep, children: &dyn Children) {
    let recorded = sweep.store.recorded_ids();
    let trial_ids = sweep.trial_ids();
    let in_plan = sweep.rows_of(&trial_ids).len();
    let left = sweep.plan.trials.len().saturating_sub(in_plan);
    let to_run = match sweep.config.sweep.max_trials {
        Some(max) => left.min(max.saturating_sub(in_plan)),
        None => left,
    };
    let references_to_run = sweep
        .references
        .iter()
        .filter(|r| !recorded.contains(&r.spec.trial_id))
        .count();
    sweep.progress.set_total(to_run + references_to_run);
    sweep.schedule_eta();
    let as_worker = sweep
        .worker
        .as_ref()
        .map(|w| format!("worker {w} on "))
        .unwrap_or_default();
    let lines = [
        format!(
            "llama-sweep: {as_worker}sweep {:?}, {} search: {} trials planned ({in_plan} already recorded, up to {to_run} to run) → {}",
            sweep.config.sweep.name,
            sweep.config.sweep.strategy.name(),
            sweep.plan.trials.len(),
            sweep.folder.display()
        ),
        format!("  {}", sweep.probe.llama_cpp_build),
        format!(
            "  machine {}: {}",
            sweep.origin.machine_id, sweep.origin.machine
        ),
    ];
    for line in lines {
        sweep.progress.line(&line);
    }
    let env = &sweep.manifest.machine.speed_env;
    if !env.is_empty() {
        sweep.progress.line(&format!(
            "warning: set in the environment, and able to change llama.cpp's speed: {}; they are \
             recorded in manifest.json and in each row's machine",
            env.join(" ")
        ));
    }
    if let Some(fault) = children.test_fault() {
        sweep.progress.line(&format!(
            "warning: --test-fault {fault}: children misbehave on purpose; rows are marked and are \
             not measurements"
        ));
    }
    for line in follow_ups_without_cache(sweep) {
        sweep.progress.line(&format!("warning: {line}"));
    }
    for line in run_setup::knobs_without_effect(&sweep.config, &sweep.probe) {
        sweep.progress.line(&format!("warning: {line}"));
    }
    sweep
        .progress
        .line("  reference trials (measured first, and again in the confirmation round):");
    for line in references::describe(&sweep.references, &|id| recorded.contains(id)) {
        sweep.progress.line(&format!("    {line}"));
    }
}

/// Command-line budgets override the sweep file's.
fn apply_flags(config: &mut SweepConfig, args: &RunArgs) {
    if let Some(n) = args.max_trials {
        config.sweep.max_trials = Some(n);
    }
    if let Some(h) = args.max_hours {
        config.sweep.max_time = Some(Duration::from_secs_f64(h * 3600.0));
    }
}

/// The follow-up request is measured with the earlier conversation kept in
/// the cache; a model whose cache a server cannot keep that way is named.
fn follow_ups_without_cache(sweep: &Sweep) -> Vec<String> {
    let history = sweep.config.workload.request_history_tokens;
    if history == 0 {
        return Vec::new();
    }
    let mut lines: Vec<String> = Vec::new();
    for v in &sweep.variants {
        let header = crate::models::gguf::GgufHeader::read(&v.variant.path);
        let Some(why) = header.ok().and_then(|h| h.cache_not_reusable()) else {
            continue;
        };
        let line = format!(
            "{} has {why}: the follow-up request is measured with its {history} tokens of \
             conversation kept in the cache, but llama-server keeps them only through context \
             checkpoints (--ctx-checkpoints) or --swa-full, else it processes the whole \
             conversation again and the app waits longer for its first token",
            v.variant.name
        );
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    lines
}
