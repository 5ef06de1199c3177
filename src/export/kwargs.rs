//! The trial's parameters as llama-cpp-python `Llama()` keyword arguments,
//! in the order config.yaml and llm.json write them. Both render this one
//! list, so the two can never disagree on a key, a value or a rule (flash
//! attention, KV-cache types).
//!
//! Every parameter is given with the value the trial really ran with,
//! because llama-cpp-python's defaults differ from llama.cpp's (n_gpu_layers
//! 0 vs all, n_ctx 512, threads from the CPU count ...): leaving one out
//! would make the app run something other than what was measured.

use crate::protocol::{FlashAttn, KvType};
use crate::store::row::TrialRow;
use serde_json::{Value, json};

/// One keyword argument of `Llama()`.
#[derive(Debug, Clone, PartialEq)]
pub struct Kwarg {
    pub key: &'static str,
    /// `None` when the measured setting has no `Llama()` value; the note
    /// says why (YAML keeps it as a comment, JSON leaves it out).
    pub value: Option<Value>,
    /// Why the value is what it is, where that is not obvious.
    pub note: Option<String>,
}

fn kwarg(key: &'static str, value: Value) -> Kwarg {
    Kwarg {
        key,
        value: Some(value),
        note: None,
    }
}

fn noted(key: &'static str, value: Option<Value>, note: String) -> Kwarg {
    Kwarg {
        key,
        value,
        note: Some(note),
    }
}

/// llama-cpp-python takes only true/false for flash attention.
fn flash_attn(row: &TrialRow) -> Kwarg {
    match (row.flash_attn, row.flash_attn_resolved) {
        (FlashAttn::On, _) => kwarg("flash_attn", json!(true)),
        (FlashAttn::Off, _) => kwarg("flash_attn", json!(false)),
        (FlashAttn::Auto, Some(on)) => noted(
            "flash_attn",
            Some(json!(on)),
            format!("measured with \"auto\", which llama.cpp resolved to {on}"),
        ),
        // llama.cpp turns flash attention on for a quantized V cache.
        (FlashAttn::Auto, None) if row.type_v.is_quantized() => noted(
            "flash_attn",
            Some(json!(true)),
            "required by the quantized V cache".into(),
        ),
        (FlashAttn::Auto, None) => noted(
            "flash_attn",
            None,
            "measured with \"auto\"; llama-cpp-python takes only true/false".into(),
        ),
    }
}

/// The `Llama()` keyword arguments that reproduce `row`'s trial.
/// `type_k`/`type_v` appear only when not f16 (`Llama()`'s default), as
/// ggml type ids.
pub fn llama_kwargs(row: &TrialRow) -> Vec<Kwarg> {
    let mut kwargs = vec![
        kwarg("model_path", json!(row.model_path)),
        kwarg("n_gpu_layers", json!(row.n_gpu_layers)),
        kwarg("n_ctx", json!(row.n_ctx)),
        kwarg("n_batch", json!(row.n_batch)),
        kwarg("n_ubatch", json!(row.n_ubatch)),
        kwarg("n_threads", json!(row.n_threads)),
        kwarg("n_threads_batch", json!(row.n_threads_batch)),
        flash_attn(row),
    ];
    for (key, t) in [("type_k", row.type_k), ("type_v", row.type_v)] {
        if t != KvType::F16 {
            kwargs.push(noted(
                key,
                Some(json!(t.ggml_type_id())),
                format!("{} (ggml type id)", t.name()),
            ));
        }
    }
    kwargs.extend([
        kwarg("use_mmap", json!(row.use_mmap)),
        kwarg("offload_kqv", json!(row.offload_kqv)),
        kwarg("verbose", json!(false)),
    ]);
    kwargs
}
