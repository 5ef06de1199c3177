//! What `llama-sweep run` does before its first trial: ask llama.cpp for its
//! build and defaults, refuse inputs those defaults make impossible, and make
//! the output folder ready — moved aside with `--fresh`, refused when its
//! rows were measured under another workload or objective.

use crate::config::{ConfigError, SweepConfig};
use crate::exit::FolderUnusable;
use crate::knobs;
use crate::machine::Machine;
use crate::protocol::{ChildJob, ChildReply, ProbeReport};
use crate::runner::Children;
use crate::store::manifest::{self, Manifest, SweepInfo, ToolInfo};
use crate::store::{self, lock};
use anyhow::bail;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Asks a child for llama.cpp's build, devices and defaults, logging to a
/// temporary file (nothing is written to the output folder yet).
pub fn probe(children: &mut dyn Children) -> anyhow::Result<(ProbeReport, PathBuf)> {
    let log = std::env::temp_dir().join(format!("llama-sweep-probe-{}.log", std::process::id()));
    let ending = children.run(&ChildJob::Probe, &log, Duration::from_secs(120))?;
    match ending.reply {
        Ok(ChildReply::Probe(report)) => Ok((report, log)),
        Ok(ChildReply::Failed { reason }) => {
            bail!("llama.cpp cannot start: {reason} (log: {})", log.display())
        }
        other => bail!(
            "llama.cpp cannot start: the probe process ended ({}) with {other:?}; see {}",
            ending.exit,
            log.display()
        ),
    }
}

/// Refuses a sweep whose unset n_ctx (in `[space]` or `[baseline]`) leaves
/// llama.cpp's default context smaller than the workload: those trials
/// would fail after loading the model.
pub fn check_defaults(config: &SweepConfig, probe: &ProbeReport) -> anyhow::Result<()> {
    let needed = config.workload.context_needed();
    let unset = [
        ("space", config.space.get(knobs::N_CTX).is_none()),
        (
            "baseline",
            config
                .baseline
                .as_ref()
                .is_some_and(|b| !b.params.is_set(knobs::N_CTX)),
        ),
    ];
    let default_n_ctx = probe.defaults.int(knobs::N_CTX);
    for (table, _) in unset.iter().filter(|(_, unset)| *unset) {
        if default_n_ctx < i64::from(needed) {
            return Err(ConfigError::new(
                &config.file,
                Some(&format!("{table}.n_ctx")),
                format!(
                    "not set, and llama.cpp's default context ({} tokens) is smaller than the workload \
                     needs ({needed}): set n_ctx in [{table}]",
                    default_n_ctx
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// With `fresh`, moves an existing output folder aside (never deletes it)
/// and returns where it went.
pub fn move_aside(folder: &Path) -> anyhow::Result<Option<PathBuf>> {
    if !folder.exists() {
        return Ok(None);
    }
    if lock::is_held(folder) {
        return Err(FolderUnusable(format!(
            "{} is in use by a running sweep; it cannot be moved aside",
            folder.display()
        ))
        .into());
    }
    let stamp = crate::clock::now_rfc3339().replace(':', "-");
    let mut aside = PathBuf::from(format!("{}.{stamp}", folder.display()));
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = PathBuf::from(format!("{}.{stamp}.{n}", folder.display()));
    }
    std::fs::rename(folder, &aside)
        .map_err(|e| FolderUnusable(format!("cannot move {} aside: {e}", folder.display())))?;
    Ok(Some(aside))
}

/// Refuses to add to a folder whose rows were measured under another
/// workload or objective, unless `allow_changed`.
pub fn check_meaning(
    config: &SweepConfig,
    folder: &Path,
    allow_changed: bool,
) -> anyhow::Result<()> {
    let path = folder.join(store::MANIFEST);
    if allow_changed || !path.exists() {
        return Ok(());
    }
    let Ok(old) = manifest::read(&path) else {
        return Ok(());
    };
    let mut changes = Vec::new();
    if let Some(w) = &old.sweep.workload {
        if *w != config.workload {
            changes.push(format!(
                "the workload (was {}, now {})",
                serde_json::to_string(w)?,
                serde_json::to_string(&config.workload)?
            ));
        }
    }
    if old.sweep.objective != config.objective {
        changes.push(format!(
            "the objective (was \"{}\", now \"{}\")",
            old.sweep.objective, config.objective
        ));
    }
    if changes.is_empty() {
        return Ok(());
    }
    bail!(FolderUnusable(format!(
        "{} holds results measured under another version of this sweep: {} changed. Old and new \
         rows would not be comparable. Run with --fresh to move the old results aside and start over, \
         or with --allow-changed to add to them anyway",
        folder.display(),
        changes.join(" and ")
    )))
}

/// The manifest for this run, keeping the first run's start time.
pub fn manifest(
    config: &SweepConfig,
    folder: &Path,
    probe: &ProbeReport,
    planned: usize,
    recorded: usize,
) -> Manifest {
    let now = crate::clock::now_rfc3339();
    let started_at = manifest::read(&folder.join(store::MANIFEST))
        .map(|m| m.started_at)
        .unwrap_or_else(|_| now.clone());
    Manifest {
        tool: ToolInfo::current(),
        sweep: SweepInfo {
            name: config.sweep.name.clone(),
            file: config.file.display().to_string(),
            sha256: config.source_sha256.clone(),
            strategy: config.sweep.strategy.name().into(),
            objective: config.objective.clone(),
            workload: Some(config.workload.clone()),
            temperature: config.export.temperature,
        },
        machine: Machine::detect(),
        llama_cpp: probe.clone(),
        started_at,
        updated_at: now,
        trials_planned: planned,
        trials_recorded: recorded,
        memory_bandwidth: None,
        backend_check: None,
        fit: None,
        app_verification: None,
    }
}

/// The knobs the sweep sweeps that cannot change anything with this build
/// and these models, one warning each (see `knobs::effect`).
pub fn knobs_without_effect(config: &SweepConfig, probe: &ProbeReport) -> Vec<String> {
    // A single value that cannot act changes nothing; a swept one makes
    // trials that differ only by noise.
    let turned: Vec<knobs::KnobId> = config
        .space
        .iter()
        .filter(|(_, values)| values.len() > 1)
        .map(|(knob, _)| knob)
        .collect();
    // The GGUF headers are read only when a swept knob needs experts.
    let needs_experts = turned
        .iter()
        .any(|k| k.knob().needs == knobs::Needs::Experts);
    let dense_models = if needs_experts {
        config
            .models
            .iter()
            .filter(|m| {
                crate::models::gguf::GgufHeader::read(&m.path)
                    .ok()
                    .is_some_and(|h| h.n_expert().is_none())
            })
            .map(|m| m.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    let facts = knobs::effect::Facts {
        gpu: probe.accelerators().next().is_some(),
        openmp: knobs::effect::Facts::openmp_in(&probe.system_info),
        dense_models,
        models: config.models.len(),
    };
    knobs::effect::without_effect(turned, &facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> ProbeReport {
        ProbeReport {
            llama_cpp_build: "test".into(),
            system_info: String::new(),
            supports_gpu_offload: false,
            supports_mmap: true,
            backends: vec!["CPU".into()],
            devices: Vec::new(),
            cpu_extra_buffer_types: Vec::new(),
            defaults: crate::test_support::defaults(),
        }
    }

    fn check(dir: &Path, tables: &str) -> Result<(), ConfigError> {
        std::fs::write(dir.join("m.gguf"), b"GGUF").unwrap();
        // The default workload needs 640 tokens; llama.cpp's default is 512.
        let text = format!("[sweep]\nname = \"s\"\n[[model]]\npath = \"m.gguf\"\n{tables}");
        let config = crate::config::parse(&dir.join("s.toml"), &text).unwrap();
        check_defaults(&config, &probe()).map_err(|e| e.downcast().unwrap())
    }

    #[test]
    fn an_unset_context_too_small_for_the_workload_is_refused_in_space_and_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let e = check(dir.path(), "").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("space.n_ctx"));
        let e = check(
            dir.path(),
            "[space]\nn_ctx = 1024\n[baseline]\nn_threads = 2\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("baseline.n_ctx"));
        assert!(e.message.contains("set n_ctx in [baseline]"), "{e}");
        assert!(
            check(
                dir.path(),
                "[space]\nn_ctx = 1024\n[baseline]\nn_ctx = 2048\n"
            )
            .is_ok()
        );
        assert!(check(dir.path(), "[space]\nn_ctx = 1024\n").is_ok());
    }
}
