//! The phases of `run` about the model variants, before any trial: derive
//! the missing quantizations, measure the machine's bandwidth and each
//! variant's bytes per token, run the backend self-test (and force its
//! fallbacks), and measure each variant's quality.

use super::Sweep;
use crate::knobs::Params;
use crate::knobs::{KnobId, Value};
use crate::models::{self, derive};
use crate::protocol::{ModelVariant, TrialSpec};
use crate::quality;
use crate::runner::Children;
use crate::selftest::{self, Use};
use crate::store::{self, manifest};
use crate::sweep::SweepEnd;
use std::collections::HashSet;

/// Derives the quantizations the trials still to run need.
pub(super) fn derive(sweep: &mut Sweep, children: &mut dyn Children) -> anyhow::Result<()> {
    let recorded = sweep.store.recorded_ids();
    let needed: HashSet<String> = sweep
        .plan
        .trials
        .iter()
        .chain(sweep.references.iter().map(|r| &r.spec))
        .filter(|t| !recorded.contains(&t.trial_id))
        .map(|t| t.model.identity.clone())
        .collect();
    let logs = sweep.folder.join(store::LOGS);
    let progress = &mut sweep.progress;
    sweep.unavailable =
        derive::derive_missing(&sweep.variants, &needed, children, &logs, &mut |line| {
            progress.line(&line)
        })?;
    Ok(())
}

/// The ceiling of generation speed: the memory bandwidth (into the
/// manifest) and each variant's bytes per token.
pub(super) fn machine_facts(sweep: &mut Sweep) -> anyhow::Result<()> {
    let bandwidth = crate::bandwidth::measure_host();
    sweep.progress.line(&format!(
        "  host memory bandwidth: {:.1} GB/s ({})",
        bandwidth.gb_per_s,
        bandwidth.method()
    ));
    sweep.manifest.memory_bandwidth = Some(bandwidth);
    manifest::write(&sweep.manifest_path(), &sweep.manifest)?;
    for v in sweep.variants.iter().filter(|v| v.is_ready()) {
        let header = models::gguf::GgufHeader::read(&v.variant.path).ok();
        if let Some(bytes) = header.and_then(|h| h.bytes_read_per_token()) {
            sweep.facts.set_bytes_per_token(&v.variant.identity, bytes);
        }
    }
    Ok(())
}

/// The backend self-test of every variant the trials use, with the
/// settings of its first trial. A fallback that works is forced on the
/// variant's trials; a variant nothing works for is unavailable; when no
/// variant works, the sweep stops here.
pub(super) fn check_backend(sweep: &mut Sweep, children: &mut dyn Children) -> anyhow::Result<()> {
    if !sweep.going() {
        return Ok(());
    }
    let mut tested: Vec<(ModelVariant, Params)> = Vec::new();
    for spec in sweep.every_trial() {
        let usable =
            !sweep.unavailable.contains_key(&spec.model.identity) && spec.model.path.is_file();
        if usable
            && !tested
                .iter()
                .any(|(v, _)| v.identity == spec.model.identity)
        {
            tested.push((spec.model.clone(), spec.params.clone()));
        }
    }
    if tested.is_empty() {
        return Ok(());
    }
    sweep.progress.line(&format!(
        "backend self-test: {} model variant(s), a {}-token prompt in one batch and {} single tokens each",
        tested.len(),
        selftest::PROMPT_TOKENS,
        selftest::GEN_TOKENS
    ));
    let config = &sweep.config;
    // A fallback is forced on a knob the sweep leaves unset; on one it
    // sets, it only shows the variant works when the sweep measures it too.
    let usable = |knob: KnobId, value: &Value| {
        let in_baseline = config.baseline.as_ref().and_then(|b| b.params.get(knob));
        match (config.space.get(knob), in_baseline) {
            (None, None) => Use::Force,
            (space, baseline)
                if space.is_some_and(|s| s.contains(value)) || baseline == Some(value) =>
            {
                Use::Measured
            }
            _ => Use::No,
        }
    };
    let progress = &mut sweep.progress;
    let Some(check) = selftest::check(children, &tested, &usable, &sweep.folder, &mut |l| {
        progress.line(&l)
    })?
    else {
        sweep.end = SweepEnd::Interrupted;
        return Ok(());
    };
    for line in check.lines() {
        sweep.progress.line(&format!("warning: {line}"));
    }
    if check.lines().is_empty() {
        sweep
            .progress
            .line("  llama.cpp's kernels work with the sweep's settings");
    }
    for v in check.broken() {
        sweep.unavailable.insert(
            v.identity.clone(),
            format!(
                "not run: the backend self-test of {} failed with every setting it tried (see {})",
                v.model, v.attempts[0].log
            ),
        );
    }
    for spec in sweep.specs_mut().filter(|spec| spec.python.is_none()) {
        // The app's llama-cpp-python runs its own build's kernels, and
        // Llama() cannot be told to route around llama-sweep's.
        spec.forced = check.forced_for(&spec.model.identity);
    }
    let all_broken = check.broken().len() == check.variants.len();
    sweep.manifest.backend_check = Some(check.clone());
    manifest::write(&sweep.manifest_path(), &sweep.manifest)?;
    sweep.backend = Some(check);
    if all_broken {
        sweep.end = SweepEnd::BackendBroken;
    }
    Ok(())
}

/// The quality of each variant (and KV type), before the speed trials; rows
/// recorded before their variant's quality was known get it now.
pub(super) fn quality(sweep: &mut Sweep, children: &mut dyn Children) -> anyhow::Result<()> {
    if !sweep.going() {
        return Ok(());
    }
    if sweep.config.quality.measure {
        let every: Vec<TrialSpec> = sweep.every_trial();
        let specs: Vec<&TrialSpec> = every.iter().collect();
        let unavailable = &sweep.unavailable;
        let size = |v: &ModelVariant| {
            (!unavailable.contains_key(&v.identity))
                .then(|| std::fs::metadata(&v.path).ok().map(|m| m.len()))
                .flatten()
        };
        let settings = &sweep.config.quality;
        let (text, text_name, text_sha) = quality::phase::text_file(settings, &sweep.folder)?;
        let tasks = quality::tasks::plan(&specs, &sweep.probe.defaults, &size, &text_sha, settings);
        let backend = sweep.backend.clone().unwrap_or_default();
        let mut phase = quality::phase::Phase {
            settings,
            folder: &sweep.folder,
            text: &text,
            text_name: &text_name,
            text_sha256: &text_sha,
            children,
            threads: sweep.manifest.machine.physical_cores.unwrap_or(1).max(1) as i32,
            forced: &|identity: &str| backend.forced_for(identity),
        };
        let progress = &mut sweep.progress;
        let (phase_end, measured) = phase.run(&tasks, &mut |line| progress.line(&line))?;
        if phase_end == quality::phase::PhaseEnd::Interrupted {
            sweep.end = SweepEnd::Interrupted;
        }
        quality::phase::figures(&measured, &tasks, &mut sweep.facts);
    }
    let planned = sweep.planned_ids();
    let updated: Vec<_> = sweep
        .rows_of(&planned)
        .into_iter()
        .filter_map(|mut r| {
            r.update_facts(&sweep.facts, &sweep.config.objective)
                .then_some(r)
        })
        .collect();
    if !updated.is_empty() {
        sweep.store.replace(&updated)?;
    }
    Ok(())
}
