//! llama-sweep finds the fastest llama.cpp configuration for a model, a
//! machine and a workload by measuring it: it runs every trial of a parameter
//! sweep in an isolated child process, stores every row, and recommends the
//! best configuration as a `config.yaml` an app loads as is.
//!
//! Data flow: `config` (sweep.toml) → `models` (variants) → `plan` (trials)
//! → `search` (which next) → `runner` (child process, timeout, failure
//! class) → `measure` (the child: llama.cpp) → `store` (CSV, Parquet,
//! manifest) → `report` (terminal summary) and `export` (config.yaml) →
//! `verify` (the winner replayed in the app's own `runtime`s).

pub mod bandwidth;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod compare;
pub mod config;
pub mod confirm;
pub mod digest;
pub mod drift;
pub mod early_drop;
pub mod exit;
pub mod export;
pub mod failure_watch;
pub mod fit;
pub mod init;
pub mod interrupt;
pub mod knobs;
pub mod llama_log;
pub mod machine;
pub mod machine_load;
pub mod measure;
pub mod models;
pub mod objective;
pub mod plan;
pub mod protocol;
pub mod quality;
pub mod report;
pub mod request;
pub mod rng;
pub mod runner;
pub mod runtime;
pub mod search;
pub mod selftest;
pub mod stats;
pub mod store;
pub mod sweep;
pub mod verify;
pub mod workers;

#[cfg(test)]
pub(crate) mod test_support {
    //! Shared fixtures for unit tests.
    use crate::knobs::{self, EffectiveParams, Params, Value};
    use crate::objective::Objective;
    use crate::protocol::{ModelVariant, TrialSpec, Workload};
    use crate::runner::TrialOutcome;
    use crate::store::row::{RowContext, TrialRow};

    /// llama.cpp's defaults as the probe reports them for this build.
    pub fn defaults() -> EffectiveParams {
        let text = |s: &str| Value::Text(s.into());
        let values: Params = [
            (knobs::N_GPU_LAYERS, Value::Int(-1)),
            (knobs::N_CTX, Value::Int(512)),
            (knobs::N_BATCH, Value::Int(2048)),
            (knobs::N_UBATCH, Value::Int(512)),
            (knobs::N_THREADS, Value::Int(4)),
            (knobs::N_THREADS_BATCH, Value::Int(4)),
            (knobs::FLASH_ATTN, text("auto")),
            (knobs::TYPE_K, text("f16")),
            (knobs::TYPE_V, text("f16")),
            (knobs::LOAD_MODE, text("auto")),
            (knobs::OFFLOAD_KQV, Value::Bool(true)),
        ]
        .into_iter()
        .collect();
        let missing: Params = knobs::TABLE
            .iter()
            .filter(|k| !values.is_set(k.id))
            .map(|k| (k.id, Value::from_cell(k, k.before.unwrap()).unwrap()))
            .collect();
        EffectiveParams::complete(values.overlaid(&missing)).unwrap()
    }

    pub fn spec(id: &str) -> TrialSpec {
        TrialSpec {
            schedule: Default::default(),
            server: None,
            python: None,
            trial_id: id.into(),
            model: ModelVariant {
                name: "m".into(),
                variant: "Q4_1".into(),
                path: "models/m.gguf".into(),
                identity: "file:1".into(),
            },
            params: Params::default().with(knobs::N_BATCH, Value::Int(512)),
            workload: Workload {
                prompt_tokens: 64,
                gen_tokens: 16,
                repetitions: 3,
                warmup: 1,
                request_prompt_tokens: 64,
                request_max_tokens: 16,
                n_depth: Vec::new(),
                request_history_tokens: 0,
                prompts: Default::default(),
            },
            seed: 0,
            sampling: Default::default(),
            forced: Default::default(),
        }
    }

    pub fn row(id: &str, outcome: &TrialOutcome) -> TrialRow {
        row_of(&spec(id), outcome)
    }

    /// The row of `spec` measured as `outcome`.
    pub fn row_of(spec: &TrialSpec, outcome: &TrialOutcome) -> TrialRow {
        let id = spec.trial_id.as_str();
        TrialRow::new(
            spec,
            outcome,
            RowContext {
                sweep: "s",
                seq: 0,
                defaults: &defaults(),
                objective: &Objective::default(),
                started_at: "t0".into(),
                finished_at: "t1".into(),
                build: "test build",
                attempts: 1,
                noise_cv_max: 0.05,
                facts: None,
                origin: &Default::default(),
                log_file: crate::store::Store::log_file(id),
            },
        )
    }

    /// Sets `knob` of `row` as a trial that set it would have it.
    pub fn set(row: &mut TrialRow, knob: knobs::KnobId, value: Value) {
        row.params.set(knob, value);
        row.defaulted = row
            .defaulted
            .split(';')
            .filter(|d| *d != knob.name())
            .collect::<Vec<_>>()
            .join(";");
    }
}
