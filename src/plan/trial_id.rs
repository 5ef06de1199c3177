//! Stable trial ids: a hash of the model's identity, every parameter, the
//! workload and the seed of the prompt tokens. The same trial in a resumed or repeated sweep has the same id;
//! a change to any of them gives a new one.

use crate::knobs::Params;
use crate::protocol::Workload;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Bump when the meaning of a measurement changes, so old rows never pass for
/// new ones. 2: prompts drawn anew each repetition, the request sampled with
/// the app's sampler chain, a threadpool attached as llama-bench does.
const ID_VERSION: u32 = 2;

#[derive(Serialize)]
struct IdInput<'a> {
    v: u32,
    model: &'a str,
    params: &'a Params,
    workload: &'a Workload,
    seed: u64,
    /// Absent for llama-sweep's own runtime (the ids of sweeps made before
    /// there was another stay the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<&'a str>,
}

/// 12 hex digits (48 bits) of sha256 over the canonical JSON of the inputs;
/// `runtime`: measured in the app's runtime (`[sweep] runtime`, by its
/// name: `TrialSpec::runtime`), which makes it another trial.
pub fn trial_id(
    model_identity: &str,
    params: &Params,
    workload: &Workload,
    seed: u64,
    runtime: Option<&str>,
) -> String {
    let input = IdInput {
        v: ID_VERSION,
        model: model_identity,
        params,
        workload,
        seed,
        runtime,
    };
    let json = serde_json::to_vec(&input).expect("trial inputs serialize");
    crate::digest::hex(&Sha256::digest(&json)[..6])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            prompt_tokens: 256,
            gen_tokens: 64,
            repetitions: 3,
            warmup: 1,
            request_prompt_tokens: 256,
            request_max_tokens: 64,
            n_depth: Vec::new(),
            request_history_tokens: 0,
            prompts: Default::default(),
        }
    }

    #[test]
    fn same_inputs_same_id() {
        let p = Params::default().with(crate::knobs::N_BATCH, crate::knobs::Value::Int(512));
        assert_eq!(
            trial_id("m", &p, &workload(), 0, None),
            trial_id("m", &p.clone(), &workload(), 0, None)
        );
        assert_eq!(trial_id("m", &p, &workload(), 0, None).len(), 12);
    }

    #[test]
    fn depths_and_history_count_only_where_a_sweep_has_them() {
        let json = serde_json::to_string(&workload()).unwrap();
        assert!(
            !json.contains("n_depth") && !json.contains("history"),
            "ids of sweeps without depths stay what they were: {json}"
        );
        let base = Params::default();
        let id = trial_id("m", &base, &workload(), 0, None);
        let deep = Workload {
            n_depth: vec![512],
            ..workload()
        };
        assert_ne!(id, trial_id("m", &base, &deep, 0, None));
        let follow_up = Workload {
            request_history_tokens: 1000,
            ..workload()
        };
        assert_ne!(id, trial_id("m", &base, &follow_up, 0, None));
        let text = Workload {
            prompts: crate::protocol::Prompts::Shipped,
            ..workload()
        };
        assert_ne!(id, trial_id("m", &base, &text, 0, None));
    }

    #[test]
    fn any_change_gives_a_new_id() {
        let base = Params::default();
        let id = trial_id("m", &base, &workload(), 0, None);
        assert_ne!(id, trial_id("other", &base, &workload(), 0, None));
        let p = Params::default().with(crate::knobs::N_THREADS, crate::knobs::Value::Int(2));
        assert_ne!(id, trial_id("m", &p, &workload(), 0, None));
        let w = Workload {
            repetitions: 4,
            ..workload()
        };
        assert_ne!(id, trial_id("m", &base, &w, 0, None));
        assert_ne!(
            id,
            trial_id("m", &base, &workload(), 1, None),
            "another seed, other prompt tokens"
        );
    }

    #[test]
    fn ids_of_set_knobs_are_pinned_too() {
        // The JSON of a trial's settings is what the id hashes: knobs in
        // table order with plain JSON values, as before the parameter table.
        use crate::knobs::{FLASH_ATTN, LOAD_MODE, N_CTX, N_GPU_LAYERS, TYPE_K, Value};
        let p = Params::default()
            .with(N_GPU_LAYERS, Value::Int(-1))
            .with(N_CTX, Value::Int(2048))
            .with(FLASH_ATTN, Value::Text("on".into()))
            .with(TYPE_K, Value::Text("q8_0".into()))
            .with(LOAD_MODE, Value::Text("none".into()));
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"n_gpu_layers":-1,"n_ctx":2048,"flash_attn":"on","type_k":"q8_0","load_mode":"none"}"#
        );
    }

    #[test]
    fn a_trial_in_an_apps_runtime_is_another_trial_in_each() {
        let p = Params::default();
        let own = trial_id("m", &p, &workload(), 0, None);
        let server = trial_id("m", &p, &workload(), 0, Some("llama-server"));
        let python = trial_id("m", &p, &workload(), 0, Some("llama-cpp-python"));
        assert_ne!(server, own);
        assert_ne!(python, own);
        assert_ne!(python, server);
        // What is hashed is the runtime's name, never where it lies.
        let spec = |server: Option<&str>, python: Option<&str>| crate::protocol::TrialSpec {
            server: server.map(|b| crate::protocol::ServerTrial {
                binary: b.into(),
                bounds: Default::default(),
            }),
            python: python.map(Into::into),
            ..crate::test_support::spec("x")
        };
        assert_eq!(
            spec(Some("/opt/llama-server"), None).runtime(),
            Some("llama-server")
        );
        assert_eq!(
            spec(None, Some("/venv/bin/python")).runtime(),
            Some("llama-cpp-python")
        );
        assert_eq!(spec(None, None).runtime(), None);
    }

    #[test]
    fn id_is_pinned() {
        // Changing this value breaks resuming every existing sweep: bump
        // ID_VERSION on purpose instead.
        assert_eq!(
            trial_id("m", &Params::default(), &workload(), 0, None),
            "5374a4e49b2e"
        );
    }
}
