//! The reference trials every recommendation is measured against: the
//! user's `[baseline]` (when the sweep file has one) and what
//! `llama-server -m MODEL` runs on this machine (its threads and context,
//! which are not llama.cpp's C defaults). They are ordinary trials with
//! ordinary ids, so a reference that is also a trial of the grid shares its
//! id and its row.

use super::trial_id::trial_id;
use crate::config::SweepConfig;
use crate::knobs::{self, Params, Value};
use crate::models::{self, PlannedVariant};
use crate::protocol::{ModelVariant, Sampling, TrialSpec};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::Path;

/// What a reference stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The configuration the user runs today (`[baseline]`).
    Baseline,
    /// What `llama-server -m MODEL` runs with on this machine.
    Defaults,
    /// What llama.cpp's `--fit` changes of those defaults to fit the
    /// devices' free memory (only where it changes something).
    Fit,
}

impl Role {
    /// How the role reads in a sentence: "2.7× your baseline".
    pub fn phrase(self) -> &'static str {
        match self {
            Role::Baseline => "your baseline",
            Role::Defaults => "llama-server's defaults",
            Role::Fit => "what llama.cpp's --fit picks",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Baseline => "baseline",
            Role::Defaults => "defaults",
            Role::Fit => "fit",
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

/// What `llama-server -m MODEL` runs with on this machine where that is not
/// llama.cpp's C API default: no llama.cpp tool uses the C struct's 4
/// threads or 512-token context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServerDefaults {
    /// llama.cpp's `common_cpu_get_num_math()`: the physical cores (of a
    /// hybrid CPU, its performance cores), for generation and prompts.
    pub threads: u32,
    /// llama.cpp's C default context, used when the model's trained context
    /// cannot be read.
    pub c_api_n_ctx: u32,
}

impl ServerDefaults {
    /// This machine's: its physical cores.
    pub fn here(c_api_n_ctx: u32) -> ServerDefaults {
        let machine = crate::machine::Machine::detect();
        ServerDefaults {
            threads: machine
                .physical_cores
                .unwrap_or(machine.logical_cores)
                .max(1) as u32,
            c_api_n_ctx,
        }
    }
}

/// The settings of llama-server's defaults for `model`: its threads, and
/// `-c 0` (the model's trained context, read from `header_file`), raised to
/// what the workload needs; with a note saying so.
fn server_settings(
    server: &ServerDefaults,
    header_file: &std::path::Path,
    needed: u32,
) -> (Params, String) {
    let trained = models::gguf::GgufHeader::read(header_file)
        .ok()
        .and_then(|h| h.n_ctx_train());
    let (n_ctx, why) = match trained {
        Some(t) if t >= needed => (t, "-c 0: the model's trained context".to_string()),
        Some(t) => (
            needed,
            format!("raised from the model's trained context ({t}) to hold the workload"),
        ),
        None => (
            server.c_api_n_ctx.max(needed),
            "the model's trained context could not be read".to_string(),
        ),
    };
    let params = Params::default()
        .with(knobs::N_THREADS, Value::Int(i64::from(server.threads)))
        .with(knobs::N_CTX, Value::Int(i64::from(n_ctx)));
    let note = format!(
        "llama-server's defaults on this machine: n_threads = {} (its thread count, the \
         physical cores), n_ctx = {n_ctx} ({why})",
        server.threads
    );
    (params, note)
}

/// A reference trial of `model` with `params`, under the sweep's workload.
fn reference_spec(config: &SweepConfig, model: &ModelVariant, params: Params) -> TrialSpec {
    let server = super::server_trial(config);
    let python = config.trial_runtime.python().map(Path::to_path_buf);
    let runtime = config.trial_runtime.name();
    TrialSpec {
        schedule: Default::default(),
        trial_id: trial_id(
            &model.identity,
            &params,
            &config.workload,
            config.sweep.seed,
            runtime,
        ),
        server,
        python,
        model: model.clone(),
        params,
        workload: config.workload.clone(),
        seed: config.sweep.seed,
        sampling: Sampling::llama_cpp_python(config.export.temperature),
        forced: Default::default(),
    }
}

/// The fit reference: llama-server's defaults with what `--fit` changed
/// (`changed`), on the same model variant, with what the self-test forced.
pub fn fit_reference(
    config: &SweepConfig,
    defaults: &Reference,
    changed: &Params,
    note: String,
) -> Reference {
    let mut spec = reference_spec(
        config,
        &defaults.spec.model,
        defaults.spec.params.overlaid(changed),
    );
    spec.forced = defaults.spec.forced.clone();
    Reference {
        role: Role::Fit,
        spec,
        note: Some(note),
    }
}

/// The reference trials: the baseline (if configured), then llama-server's
/// defaults on the baseline's model variant (else the first planned one).
/// The fit reference is added by `run`, which can ask llama.cpp.
pub fn references(
    config: &SweepConfig,
    variants: &[PlannedVariant],
    server: &ServerDefaults,
) -> anyhow::Result<Vec<Reference>> {
    let spec = |model: &ModelVariant, params: Params| reference_spec(config, model, params);
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
    // A derived file may not be made yet: its source has the same header.
    let header_file = if model.path.is_file() {
        model.path.clone()
    } else {
        config
            .models
            .iter()
            .find(|m| m.name == model.name)
            .map_or(model.path.clone(), |m| m.path.clone())
    };
    let (params, note) = server_settings(server, &header_file, config.workload.context_needed());
    out.push(Reference {
        role: Role::Defaults,
        spec: spec(&model, params),
        note: Some(note),
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

    fn refs(config: &SweepConfig, c_api_n_ctx: u32) -> (Vec<Reference>, super::super::Plan) {
        let variants = models::plan_variants(config).unwrap();
        let plan = super::super::build(config, &variants);
        let server = ServerDefaults {
            threads: 3,
            c_api_n_ctx,
        };
        (references(config, &variants, &server).unwrap(), plan)
    }

    #[test]
    fn without_a_baseline_llama_servers_defaults_run_on_the_first_variant() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(dir.path(), "quantize = [\"Q8_0\"]", "");
        let (r, plan) = refs(&c, 4096);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].role, Role::Defaults);
        assert_eq!(r[0].role.phrase(), "llama-server's defaults");
        // Not the C struct's 4 threads: llama-server's, the physical cores.
        assert_eq!(r[0].spec.params.int(knobs::N_THREADS), Some(3));
        assert_eq!(r[0].spec.model, plan.trials[0].model);
        let note = r[0].note.as_deref().unwrap();
        assert!(note.contains("n_threads = 3"), "{note}");
        assert!(plan.trials.iter().all(|t| t.trial_id != r[0].spec.trial_id));
    }

    #[test]
    fn the_context_is_the_models_trained_one_raised_to_hold_the_workload() {
        let dir = tempfile::tempdir().unwrap();
        let c = setup(dir.path(), "", "");
        let header = |n_ctx: u32| {
            crate::models::gguf::tests::header_bytes(
                &[("general.architecture", "llama")],
                &[("llama.context_length", n_ctx)],
            )
        };
        std::fs::write(dir.path().join("m.gguf"), header(8192)).unwrap();
        let (r, _) = refs(&c, 512);
        assert_eq!(r[0].spec.params.int(knobs::N_CTX), Some(8192), "-c 0");
        assert!(r[0].note.as_deref().unwrap().contains("trained context"));
        // The workload needs 600 + 16 tokens.
        std::fs::write(dir.path().join("m.gguf"), header(512)).unwrap();
        let (r, _) = refs(&c, 512);
        assert_eq!(r[0].spec.params.int(knobs::N_CTX), Some(616));
        let note = r[0].note.as_deref().unwrap();
        assert!(note.contains("616") && note.contains("raised"), "{note}");
        // Without a readable header: llama.cpp's default, raised too.
        std::fs::write(dir.path().join("m.gguf"), b"GGUF weights").unwrap();
        assert_eq!(refs(&c, 512).0[0].spec.params.int(knobs::N_CTX), Some(616));
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
            lines[1].starts_with("defaults")
                && lines[1]
                    .contains("n_ctx=616 n_threads=3 (llama-server's defaults on this machine"),
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
        let server = ServerDefaults {
            threads: 2,
            c_api_n_ctx: 4096,
        };
        let r = references(&c, &variants, &server).unwrap();
        assert!(r[0].spec.model.identity.starts_with("file:"), "{r:?}");
        assert!(r[0].spec.model.path.ends_with("m.gguf"));
    }
}
