//! The reference trials every recommendation is measured against: the
//! user's `[baseline]` (when the sweep file has one) and llama.cpp's own
//! defaults. They are ordinary trials with ordinary ids, so a reference that
//! is also a trial of the grid shares its id and its row.

use super::trial_id::trial_id;
use crate::config::SweepConfig;
use crate::knobs::{self, Params, Value};
use crate::models::{self, PlannedVariant};
use crate::protocol::{ModelVariant, Sampling, TrialSpec};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a reference stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The configuration the user runs today (`[baseline]`).
    Baseline,
    /// llama.cpp's default settings.
    Defaults,
}

impl Role {
    /// How the role reads in a sentence: "2.7× your baseline".
    pub fn phrase(self) -> &'static str {
        match self {
            Role::Baseline => "your baseline",
            Role::Defaults => "llama.cpp's defaults",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Baseline => "baseline",
            Role::Defaults => "defaults",
        })
    }
}

/// A reference trial.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub role: Role,
    pub spec: TrialSpec,
    /// Where the trial departs from what its role promises, and why.
    pub note: Option<String>,
}

/// The reference trials: the baseline (if configured), then llama.cpp's
/// defaults on the baseline's model variant (else the first planned one).
/// `default_n_ctx` is llama.cpp's default context size (from the probe):
/// when it cannot hold the workload, the defaults trial sets n_ctx to what
/// the workload needs, and its note says so.
pub fn references(
    config: &SweepConfig,
    variants: &[PlannedVariant],
    default_n_ctx: u32,
) -> anyhow::Result<Vec<Reference>> {
    let spec = |model: &ModelVariant, params: Params| TrialSpec {
        trial_id: trial_id(
            &model.identity,
            &params,
            &config.workload,
            config.sweep.seed,
        ),
        model: model.clone(),
        params,
        workload: config.workload.clone(),
        seed: config.sweep.seed,
        sampling: Sampling::llama_cpp_python(config.export.temperature),
    };
    let mut out = Vec::new();
    let baseline_model = match &config.baseline {
        Some(b) => {
            let model = baseline_variant(config, variants)?;
            out.push(Reference {
                role: Role::Baseline,
                spec: spec(&model, b.params.clone()),
                note: None,
            });
            Some(model)
        }
        None => None,
    };
    let model = match baseline_model {
        Some(m) => m,
        None => match variants.first() {
            Some(v) => v.variant.clone(),
            None => return Ok(out),
        },
    };
    let needed = config.workload.context_needed();
    let (params, note) = if default_n_ctx < needed {
        (
            Params::default().with(knobs::N_CTX, Value::Int(i64::from(needed))),
            Some(format!(
                "n_ctx set to {needed}: llama.cpp's default context ({default_n_ctx} tokens) \
                 cannot hold the workload"
            )),
        )
    } else {
        (Params::default(), None)
    };
    out.push(Reference {
        role: Role::Defaults,
        spec: spec(&model, params),
        note,
    });
    Ok(out)
}

/// One line per reference trial for `plan` and `run`: its role, id, model
/// variant, settings (those it sets; the rest are llama.cpp's defaults) and
/// note, marked `recorded` when `recorded` says so.
pub fn describe(references: &[Reference], recorded: &dyn Fn(&str) -> bool) -> Vec<String> {
    references
        .iter()
        .map(|r| {
            let set = r
                .spec
                .params
                .iter()
                .map(|(knob, value)| format!("{knob}={value}"))
                .collect::<Vec<_>>()
                .join(" ");
            let settings = if set.is_empty() {
                "llama.cpp's defaults".to_string()
            } else {
                set
            };
            let note = r
                .note
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default();
            let state = if recorded(&r.spec.trial_id) {
                "  recorded"
            } else {
                ""
            };
            format!(
                "{:<8}  {}  {} {}  {settings}{note}{state}",
                r.role.to_string(),
                r.spec.trial_id,
                r.spec.model.name,
                r.spec.model.variant
            )
        })
        .collect()
}

/// The model variant `[baseline]` names: one of the planned variants, or
/// the entry's own file when the sweep leaves it out (`include_source =
/// false`).
fn baseline_variant(
    config: &SweepConfig,
    variants: &[PlannedVariant],
) -> anyhow::Result<ModelVariant> {
    let Some(b) = &config.baseline else {
        anyhow::bail!("the sweep has no [baseline]");
    };
    let wanted = |v: &PlannedVariant| {
        v.variant.name == b.model
            && match (b.quant, &v.derive_from) {
                (Some(q), Some((_, derived))) => q == *derived,
                (None, None) => true,
                _ => false,
            }
    };
    if let Some(v) = variants.iter().find(|v| wanted(v)) {
        return Ok(v.variant.clone());
    }
    // Not planned: the entry's own file, left out of the sweep.
    let mut own = config.clone();
    own.models.retain(|m| m.name == b.model);
    for m in &mut own.models {
        m.include_source = true;
        m.quantize.clear();
    }
    models::plan_variants(&own)?
        .into_iter()
        .find(|v| wanted(v))
        .map(|v| v.variant)
        .ok_or_else(|| anyhow::anyhow!("no [[model]] is named {:?}", b.model))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    fn setup(dir: &std::path::Path, model_extra: &str, rest: &str) -> SweepConfig {
        std::fs::write(dir.join("m.gguf"), b"GGUF weights").unwrap();
        let text = format!(
            "[sweep]\nname = \"p\"\n[[model]]\nname = \"m\"\npath = \"m.gguf\"\n{model_extra}\n\
             [space]\nn_ctx = 1024\nn_batch = [256, 512]\nn_threads = [1, 2]\n\
             [workload]\nprompt_tokens = 600\ngen_tokens = 16\n{rest}"
        );
        parse(&dir.join("s.toml"), &text).unwrap()
    }

    fn refs(config: &SweepConfig, default_n_ctx: u32) -> (Vec<Reference>, super::super::Plan) {
        let variants = models::plan_variants(config).unwrap();
        let plan = super::super::build(config, &variants);
        (references(config, &variants, default_n_ctx).unwrap(), plan)
    }

    #[test]
    fn without_a_baseline_the_defaults_run_on_the_first_variant() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(dir.path(), "quantize = [\"Q8_0\"]", "");
        let (r, plan) = refs(&c, 4096);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].role, Role::Defaults);
        assert_eq!(r[0].spec.params, Params::default());
        assert_eq!(r[0].spec.model, plan.trials[0].model);
        assert_eq!(r[0].note, None);
        assert!(plan.trials.iter().all(|t| t.trial_id != r[0].spec.trial_id));
    }

    #[test]
    fn a_default_context_too_small_for_the_workload_is_raised_and_noted() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(dir.path(), "", "");
        let (r, _) = refs(&c, 512);
        // The workload needs 600 + 16 tokens.
        assert_eq!(r[0].spec.params.int(knobs::N_CTX), Some(616));
        let note = r[0].note.as_deref().unwrap();
        assert!(
            note.contains("616") && note.contains("512 tokens"),
            "{note}"
        );
        assert_ne!(r[0].spec.trial_id, refs(&c, 4096).0[0].spec.trial_id);
    }

    #[test]
    fn a_baseline_equal_to_a_grid_trial_shares_its_id() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(
            dir.path(),
            "",
            "[baseline]\nn_ctx = 1024\nn_batch = 512\nn_threads = 2\n",
        );
        let (r, plan) = refs(&c, 4096);
        assert_eq!(
            r.iter().map(|r| r.role).collect::<Vec<_>>(),
            [Role::Baseline, Role::Defaults]
        );
        let twin = plan
            .trials
            .iter()
            .find(|t| t.params == r[0].spec.params)
            .unwrap();
        assert_eq!(twin.trial_id, r[0].spec.trial_id);
        assert_eq!(twin, &r[0].spec);
    }

    #[test]
    fn the_baseline_runs_its_variant_and_the_defaults_follow_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(
            dir.path(),
            "quantize = [\"Q8_0\", \"Q4_K_M\"]",
            "[baseline]\nquant = \"Q4_K_M\"\nn_ctx = 1024\n",
        );
        let (r, _) = refs(&c, 4096);
        assert_eq!(r[0].spec.model.variant, "Q4_K_M");
        assert!(r[0].spec.model.identity.starts_with("derived:"));
        assert_eq!(r[1].spec.model, r[0].spec.model);
    }

    #[test]
    fn references_are_described_by_role_and_the_settings_they_set() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(
            dir.path(),
            "",
            "[baseline]\nn_ctx = 1024\nflash_attn = \"off\"\n",
        );
        let (r, _) = refs(&c, 512);
        let base = r[0].spec.trial_id.clone();
        let lines = describe(&r, &|id| id == base);
        assert_eq!(
            lines[0],
            format!(
                "baseline  {base}  m {}  n_ctx=1024 flash_attn=off  recorded",
                r[0].spec.model.variant
            )
        );
        assert!(
            lines[1].starts_with("defaults") && lines[1].contains("n_ctx=616 (n_ctx set to 616"),
            "{}",
            lines[1]
        );
        assert!(!lines[1].ends_with("recorded"));
    }

    #[test]
    fn a_source_left_out_of_the_sweep_can_still_be_the_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(
            dir.path(),
            "quantize = [\"Q8_0\"]\ninclude_source = false",
            "[baseline]\nn_ctx = 1024\n",
        );
        let variants = models::plan_variants(&c).unwrap();
        assert!(variants.iter().all(|v| v.derive_from.is_some()));
        let r = references(&c, &variants, 4096).unwrap();
        assert!(r[0].spec.model.identity.starts_with("file:"), "{r:?}");
        assert!(r[0].spec.model.path.ends_with("m.gguf"));
    }
}
