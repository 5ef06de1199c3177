//! `llama-sweep run`: validate, plan, probe llama.cpp, prepare the output
//! folder, derive missing quantizations, measure the reference trials (the
//! baseline, llama.cpp's defaults), run the trials under the budget, confirm
//! the best against the references, then summarise and write config.yaml.
//! Returns the exit status.

mod confirmation;

use super::run_setup;
use crate::cli::RunArgs;
use crate::config::{self, SweepConfig};
use crate::confirm::{Confirmation, Recommendation};
use crate::drift::DriftSettings;
use crate::exit;
use crate::export;
use crate::models::{self, derive};
use crate::plan::{self, references};
use crate::protocol::{ModelVariant, ProbeReport, TrialSpec};
use crate::quality::{self, VariantFacts};
use crate::report::progress::Progress;
use crate::report::{summary, warnings};
use crate::runner::ProcessExecutor;
use crate::runner::child::ChildRunner;
use crate::search::{self, GridStrategy};
use crate::store::manifest;
use crate::store::plan_file::{self, PlanFile, PlannedReference};
use crate::store::row::TrialRow;
use crate::store::{self, Store};
use crate::sweep::{self, SweepContext, SweepEnd, SweepOptions};
use anyhow::Context;
use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

pub fn run(args: &RunArgs) -> anyhow::Result<u8> {
    crate::interrupt::install();
    let mut config = config::load(&args.sweep)?;
    apply_flags(&mut config, args);
    let variants = models::plan_variants(&config)?;
    let plan = plan::build(&config, &variants);
    let runner = ChildRunner::current()?;

    // Everything that can refuse the sweep happens before the first write.
    let (probe, probe_log) = run_setup::probe(&runner)?;
    let folder = config.sweep.output_folder();
    let mut references = Vec::new();
    let ready = run_setup::check_defaults(&config, &probe).and_then(|()| {
        references = references::references(
            &config,
            &variants,
            probe.defaults.int(crate::knobs::N_CTX) as u32,
        )?;
        if args.fresh {
            if let Some(aside) = run_setup::move_aside(&folder)? {
                eprintln!(
                    "llama-sweep: earlier results moved aside to {}",
                    aside.display()
                );
            }
        }
        run_setup::check_meaning(&config, &folder, args.allow_changed)?;
        Store::open(&folder)
    });
    let mut store = match ready {
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

    let recorded = store.recorded_ids();
    let mut manifest = run_setup::manifest(
        &config,
        &folder,
        &probe,
        plan.trials.len(),
        store.rows().len(),
    );
    manifest::write(&folder.join(store::MANIFEST), &manifest)?;
    store::write_atomically(&folder.join(store::SWEEP_COPY), config.source.as_bytes())?;
    plan_file::write(
        &folder,
        &PlanFile {
            sweep: config.sweep.name.clone(),
            trial_ids: plan.trials.iter().map(|t| t.trial_id.clone()).collect(),
            strategy: Some(config.sweep.strategy.name().into()),
            max_trials: config.sweep.max_trials,
            references: references.iter().map(PlannedReference::from).collect(),
        },
    )?;

    // The rows of this sweep: its plan's and its references'.
    let trial_ids: HashSet<&str> = plan.trials.iter().map(|t| t.trial_id.as_str()).collect();
    let planned_ids: HashSet<&str> = trial_ids
        .iter()
        .copied()
        .chain(references.iter().map(|r| r.spec.trial_id.as_str()))
        .collect();
    let recorded_in_plan = rows_of_plan(&store, &trial_ids).len();
    let left_in_plan = plan.trials.len() - recorded_in_plan;
    let to_run = match config.sweep.max_trials {
        Some(max) => left_in_plan.min(max.saturating_sub(recorded_in_plan)),
        None => left_in_plan,
    };
    // Reference trials not recorded yet, each once, measured before the search.
    let mut references_to_run: Vec<TrialSpec> = Vec::new();
    for r in &references {
        let id = &r.spec.trial_id;
        if !recorded.contains(id) && !references_to_run.iter().any(|s| &s.trial_id == id) {
            references_to_run.push(r.spec.clone());
        }
    }
    let mut progress = Progress::new(
        &folder,
        to_run + references_to_run.len(),
        config.space.swept_axes(),
        &config.objective,
        std::io::stderr().is_terminal(),
    );
    progress.line(&format!(
        "llama-sweep: sweep {:?}, {} search: {} trials planned ({recorded_in_plan} already recorded, up to {to_run} to run) → {}",
        config.sweep.name,
        config.sweep.strategy.name(),
        plan.trials.len(),
        folder.display()
    ));
    progress.line(&format!("  {}", probe.llama_cpp_build));
    progress.line("  reference trials (measured first, and again in the confirmation round):");
    for line in references::describe(&references, &|id| recorded.contains(id)) {
        progress.line(&format!("    {line}"));
    }

    let needed: HashSet<String> = plan
        .trials
        .iter()
        .filter(|t| !recorded.contains(&t.trial_id))
        .chain(&references_to_run)
        .map(|t| t.model.identity.clone())
        .collect();
    let logs = folder.join(store::LOGS);
    let unavailable = derive::derive_missing(&variants, &needed, &runner, &logs, &mut |line| {
        progress.line(&line)
    })?;

    let build = format!(
        "llama-sweep {}, {}",
        env!("CARGO_PKG_VERSION"),
        probe.llama_cpp_build
    );
    // Rows of references outside the plan are numbered after it.
    let every_trial: Vec<TrialSpec> = plan
        .trials
        .iter()
        .chain(
            references
                .iter()
                .map(|r| &r.spec)
                .filter(|s| !trial_ids.contains(s.trial_id.as_str())),
        )
        .cloned()
        .collect();
    let mut end = SweepEnd::Completed;

    // The ceiling of generation speed: memory bandwidth and bytes per token.
    let bandwidth = crate::bandwidth::measure_host();
    progress.line(&format!(
        "  host memory bandwidth: {:.1} GB/s ({})",
        bandwidth.gb_per_s,
        bandwidth.method()
    ));
    manifest.memory_bandwidth = Some(bandwidth);
    manifest::write(&folder.join(store::MANIFEST), &manifest)?;
    let mut facts = VariantFacts::default();
    for v in variants.iter().filter(|v| v.is_ready()) {
        let header = models::gguf::GgufHeader::read(&v.variant.path).ok();
        if let Some(bytes) = header.and_then(|h| h.bytes_read_per_token()) {
            facts.set_bytes_per_token(&v.variant.identity, bytes);
        }
    }
    // Quality of each variant, before the speed trials.
    if config.quality.measure {
        let specs: Vec<&TrialSpec> = every_trial.iter().collect();
        let size = |v: &ModelVariant| {
            (!unavailable.contains_key(&v.identity))
                .then(|| std::fs::metadata(&v.path).ok().map(|m| m.len()))
                .flatten()
        };
        let (text, text_name, text_sha) = quality::phase::text_file(&config.quality, &folder)?;
        let tasks =
            quality::tasks::plan(&specs, &probe.defaults, &size, &text_sha, &config.quality);
        let phase = quality::phase::Phase {
            settings: &config.quality,
            folder: &folder,
            text: &text,
            text_name: &text_name,
            text_sha256: &text_sha,
            runner: &runner,
            threads: manifest.machine.physical_cores.unwrap_or(1).max(1) as i32,
        };
        let (phase_end, measured) = phase.run(&tasks, &mut |line| progress.line(&line))?;
        if phase_end == quality::phase::PhaseEnd::Interrupted {
            end = SweepEnd::Interrupted;
        }
        quality::phase::figures(&measured, &tasks, &mut facts);
    }
    // Rows recorded before their variant's quality was known get it now.
    let updated: Vec<TrialRow> = store
        .rows()
        .iter()
        .filter(|r| planned_ids.contains(r.trial_id.as_str()))
        .filter_map(|r| {
            let mut r = r.clone();
            r.update_facts(&facts, &config.objective).then_some(r)
        })
        .collect();
    if !updated.is_empty() {
        store.replace(&updated)?;
    }

    let ctx = SweepContext {
        sweep_name: &config.sweep.name,
        build: &build,
        defaults: &probe.defaults,
        objective: &config.objective,
        plan: &plan.trials,
        unavailable,
        facts: Some(&facts),
    };
    let options = SweepOptions {
        retries: args.retries,
        max_trials: config.sweep.max_trials,
        max_time: config.sweep.max_time,
        drift: config.drift.clone(),
        noise_cv_max: config.noise_cv_max,
    };
    let mut executor = ProcessExecutor {
        runner,
        timeout: config.trial_timeout,
    };
    if end == SweepEnd::Completed && !references_to_run.is_empty() {
        // Outside the budgets: a few trials, and every verdict needs them.
        let reference_ctx = SweepContext {
            plan: &every_trial,
            unavailable: ctx.unavailable.clone(),
            ..ctx
        };
        let reference_options = SweepOptions {
            max_trials: None,
            max_time: None,
            drift: DriftSettings {
                every: 0,
                ..options.drift.clone()
            },
            ..options.clone()
        };
        end = sweep::run(
            &mut GridStrategy::new(&references_to_run, &HashSet::new()),
            &mut executor,
            &mut store,
            &reference_ctx,
            &reference_options,
            &mut progress,
        )?;
    }
    if end == SweepEnd::Completed {
        // Built now, so it knows the rows the reference trials added.
        let mut strategy = search::build(
            config.sweep.strategy,
            &plan.trials,
            &rows_of_plan(&store, &trial_ids),
            &config.objective,
            &config.search,
            config.sweep.seed,
        );
        end = sweep::run(
            strategy.as_mut(),
            &mut executor,
            &mut store,
            &ctx,
            &options,
            &mut progress,
        )?;
        if let Some(reason) = strategy.stop_reason() {
            progress.line(&format!("search stopped early: {reason}"));
        }
    }

    // The confirmation round, unless the sweep was stopped or ran out of time.
    let confirms = matches!(
        end,
        SweepEnd::Completed
            | SweepEnd::BudgetReached {
                out_of_time: false,
                ..
            }
    );
    let mut recommendation = None;
    if confirms && config.confirm.top > 0 {
        let current = rows_of_plan(&store, &planned_ids);
        let round = confirmation::Round {
            config: &config,
            folder: &folder,
            plan: &plan.trials,
            references: &references,
            defaults: &probe.defaults,
        };
        match round.run(&current, &mut executor, &mut progress)? {
            Some(Confirmation::Decided(r)) => recommendation = Some(*r),
            Some(Confirmation::Interrupted) => end = SweepEnd::Interrupted,
            Some(Confirmation::Undecided) | None => {}
        }
    }
    progress.finish();

    manifest.trials_recorded = store.rows().len();
    manifest.updated_at = sweep::now_rfc3339();
    manifest::write(&folder.join(store::MANIFEST), &manifest)?;

    // Rows of this plan only: the folder may also hold rows of an earlier
    // version of the sweep file, measured under other settings.
    let current = rows_of_plan(&store, &planned_ids);
    if current.len() < store.rows().len() {
        eprintln!(
            "note: {} rows in {} belong to an earlier version of the sweep file; they are kept but not ranked",
            store.rows().len() - current.len(),
            folder.display()
        );
    }
    let recommended = finish(
        &config,
        &current,
        &folder,
        &probe,
        &manifest,
        recommendation.as_ref(),
        args.top,
    )?;
    let recorded_in_plan = rows_of_plan(&store, &trial_ids).len();
    let left = plan.trials.len() - recorded_in_plan;
    let resume = format!("llama-sweep run {}", args.sweep.display());
    Ok(match end {
        SweepEnd::Interrupted => {
            println!(
                "Interrupted: {recorded_in_plan} of {} trials recorded, {left} left (the running trial was discarded). Resume with: {resume}",
                plan.trials.len()
            );
            exit::INTERRUPTED
        }
        SweepEnd::BudgetReached { reason, left, .. } => {
            println!(
                "Budget reached ({reason}): {left} trials not run. Run again to go on: {resume}"
            );
            exit::BUDGET_REACHED
        }
        SweepEnd::Completed if recommended => exit::OK,
        SweepEnd::Completed => exit::NOTHING_FEASIBLE,
    })
}

/// The rows of the current plan, in recording order.
fn rows_of_plan(store: &Store, planned: &HashSet<&str>) -> Vec<TrialRow> {
    store
        .rows()
        .iter()
        .filter(|r| planned.contains(r.trial_id.as_str()))
        .cloned()
        .collect()
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

/// Prints the summary and warnings, writes config.yaml for the best trial
/// and report.html.
/// Returns whether a configuration was recommended.
fn finish(
    config: &SweepConfig,
    rows: &[TrialRow],
    folder: &Path,
    probe: &ProbeReport,
    manifest: &manifest::Manifest,
    recommendation: Option<&Recommendation>,
    top: usize,
) -> anyhow::Result<bool> {
    println!();
    print!("{}", summary::render(rows, &config.objective, top));
    for w in warnings::warnings(rows, Some(probe)) {
        println!("warning: {w}");
    }
    let output = folder.join("config.yaml");
    // The confirmation round's winner, else the best row.
    let wanted = recommendation.map(|r| r.trial_id.as_str());
    let recommended = match export::choose(rows, &config.objective, wanted) {
        Ok(best) => {
            if let Some(w) = warnings::ceiling_warning(best, manifest) {
                println!("warning: {w}");
            }
            crate::cmd::export::write_config(best, &manifest.sweep, recommendation, &output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!(
                "\nRecommended configuration (trial {}): {}",
                best.trial_id,
                output.display()
            );
            true
        }
        Err(why) => {
            println!("\nNo config.yaml written: {why}");
            false
        }
    };
    // The report is a view of what is stored: failing to draw it loses
    // nothing, and `llama-sweep report` can draw it again.
    match crate::report::write(folder, None) {
        Ok(written) => println!("Report: {}", written.html.display()),
        Err(e) => println!(
            "warning: report.html not written ({e:#}); run `llama-sweep report {}` to try again",
            folder.display()
        ),
    }
    println!("Results: {}", folder.join(store::RESULTS_CSV).display());
    Ok(recommended)
}
