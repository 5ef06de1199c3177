//! The trials a sweep consists of: the Cartesian product of the model
//! variants and the space's axes, in an order that changes model-level
//! parameters as rarely as possible, each with a stable id; and the
//! reference trials (the user's baseline, llama-server's defaults) the
//! recommendation is measured against.

pub mod grid;
pub mod references;
pub mod trial_id;

use crate::config::SweepConfig;
use crate::models::PlannedVariant;
use crate::protocol::{Sampling, ServerTrial, TrialSpec};
use std::path::Path;

/// The ordered list of trials, and what was left out.
#[derive(Debug, Clone)]
pub struct Plan {
    pub trials: Vec<TrialSpec>,
    /// Combinations left out because llama.cpp would run them as another
    /// trial of the grid (it clamps n_batch to n_ctx, n_ubatch to n_batch).
    pub skipped_equivalent: usize,
    /// Combinations left out because llama.cpp refuses them (a quantized V
    /// cache needs flash attention).
    pub skipped_impossible: usize,
    /// Trials dropped because an earlier one has the same id (two
    /// `[[model]]` entries with the same weights).
    pub duplicates: usize,
}

/// How the sweep's trials run through a llama-server, if they do.
pub fn server_trial(config: &SweepConfig) -> Option<ServerTrial> {
    config.trial_runtime.server().map(|binary| ServerTrial {
        binary: binary.to_path_buf(),
        bounds: crate::protocol::RequestBounds::of(&config.objective),
    })
}

/// Builds the grid plan for `variants` (from `models::plan_variants`).
pub fn build(config: &SweepConfig, variants: &[PlannedVariant]) -> Plan {
    let mut trials = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = 0;
    let expansion = grid::expand(&config.space);
    let server = server_trial(config);
    let python = config.trial_runtime.python().map(Path::to_path_buf);
    let runtime = config.trial_runtime.name();
    for planned in variants {
        for params in expansion.combos.iter().cloned() {
            let trial_id = trial_id::trial_id(
                &planned.variant.identity,
                &params,
                &config.workload,
                config.sweep.seed,
                runtime,
            );
            if !seen.insert(trial_id.clone()) {
                duplicates += 1;
                continue;
            }
            trials.push(TrialSpec {
                schedule: Default::default(),
                server: server.clone(),
                python: python.clone(),
                trial_id,
                model: planned.variant.clone(),
                params,
                workload: config.workload.clone(),
                seed: config.sweep.seed,
                sampling: Sampling::llama_cpp_python(config.export.temperature),
                forced: Default::default(),
            });
        }
    }
    Plan {
        trials,
        skipped_equivalent: expansion.equivalent * variants.len(),
        skipped_impossible: expansion.impossible * variants.len(),
        duplicates,
    }
}

/// The value a trial gives knob `name`, as text (`None` when it keeps
/// llama.cpp's default).
pub fn param_value(params: &crate::knobs::Params, name: &str) -> Option<String> {
    let knob = crate::knobs::by_name(name)?;
    params.get(knob.id).map(ToString::to_string)
}

/// `n_batch=512 n_threads=2` for the named knobs.
pub fn describe(params: &crate::knobs::Params, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!(
                "{n}={}",
                param_value(params, n).unwrap_or_else(|| "default".into())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path, extra_model: &str) -> SweepConfig {
        std::fs::write(dir.join("m.gguf"), b"GGUF weights").unwrap();
        std::fs::write(dir.join("copy.gguf"), b"GGUF weights").unwrap();
        let text = format!(
            "[sweep]\nname = \"p\"\n[[model]]\npath = \"m.gguf\"\n{extra_model}\n\
             [space]\nn_batch = [256, 512]\nn_ubatch = [256, 512]\nn_threads = [1, 2]\n"
        );
        crate::config::parse(&dir.join("s.toml"), &text).unwrap()
    }

    #[test]
    fn plan_has_stable_unique_ids_in_grid_order() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), "");
        let variants = crate::models::plan_variants(&c).unwrap();
        let plan = build(&c, &variants);
        // 2 n_batch × 2 n_ubatch × 2 threads, minus (256, 512) × 2 threads,
        // which llama.cpp runs as (256, 256).
        assert_eq!(plan.trials.len(), 6);
        assert_eq!(plan.skipped_equivalent, 2);
        let again = build(&c, &variants);
        let ids: Vec<_> = plan.trials.iter().map(|t| &t.trial_id).collect();
        assert_eq!(
            ids,
            again.trials.iter().map(|t| &t.trial_id).collect::<Vec<_>>()
        );
        assert_eq!(
            describe(&plan.trials[0].params, &["n_batch", "n_ctx"]),
            "n_batch=256 n_ctx=default"
        );
    }

    #[test]
    fn the_same_weights_twice_are_measured_once() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            dir.path(),
            "[[model]]\nname = \"again\"\npath = \"copy.gguf\"\n",
        );
        let plan = build(&c, &crate::models::plan_variants(&c).unwrap());
        assert_eq!(plan.trials.len(), 6);
        assert_eq!(plan.duplicates, 6);
    }
}
