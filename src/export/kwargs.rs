//! The trial's parameters as llama-cpp-python `Llama()` keyword arguments,
//! in the order config.yaml and llm.json write them. Both render this one
//! list, so the two can never disagree on a key, a value or a rule (flash
//! attention, KV-cache types).
//!
//! Every parameter is given with the value the trial really ran with,
//! because llama-cpp-python's defaults differ from llama.cpp's (n_gpu_layers
//! 0 vs all, n_ctx 512, threads from the CPU count ...): leaving one out
//! would make the app run something other than what was measured.

use crate::knobs::{self, FlashAttn, Knob, KvType, KwargSpelling};
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
    let type_v = row.params.kv_type(knobs::TYPE_V);
    match (row.params.flash_attn(), row.flash_attn_resolved) {
        (FlashAttn::On, _) => kwarg("flash_attn", json!(true)),
        (FlashAttn::Off, _) => kwarg("flash_attn", json!(false)),
        (FlashAttn::Auto, Some(on)) => noted(
            "flash_attn",
            Some(json!(on)),
            format!("measured with \"auto\", which llama.cpp resolved to {on}"),
        ),
        // llama.cpp turns flash attention on for a quantized V cache.
        (FlashAttn::Auto, None) if type_v.is_quantized() => noted(
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

/// A knob `Llama()` cannot set: nothing when the trial left it at
/// llama.cpp's default (which `Llama()` runs too), else a note saying what
/// was measured and what does express it.
fn unavailable(row: &TrialRow, knob: &Knob, why: &str) -> Option<Kwarg> {
    let defaulted = row.defaulted.split(';').any(|name| name == knob.name);
    if defaulted {
        return None;
    }
    let value = row.params.get(knob.id);
    let server = super::llama_args::llama_args(row)
        .into_iter()
        .find(|a| a.knob == Some(knob.id))
        .map(|a| match a.value {
            Some(v) => format!("{} {v}", a.flag),
            None => a.flag.to_string(),
        });
    let instead = server.map_or(String::new(), |s| format!("; llama-server takes it as {s}"));
    Some(noted(
        knob.name,
        None,
        format!("{value} was measured, but {why}{instead}"),
    ))
}

/// The `Llama()` keyword arguments that reproduce `row`'s trial, in the
/// parameter table's order. `type_k`/`type_v` appear only when not f16
/// (`Llama()`'s default), as ggml type ids.
pub fn llama_kwargs(row: &TrialRow) -> Vec<Kwarg> {
    let mut kwargs = vec![kwarg("model_path", json!(row.model_path))];
    for knob in knobs::TABLE {
        let value = row.params.get(knob.id);
        match knob.kwarg {
            KwargSpelling::Same => kwargs.push(kwarg(knob.name, value.to_json())),
            KwargSpelling::FlashAttn => kwargs.push(flash_attn(row)),
            KwargSpelling::GgmlType => {
                let t = row.params.kv_type(knob.id);
                if t != KvType::F16 {
                    kwargs.push(noted(
                        knob.name,
                        Some(json!(t.ggml_type_id())),
                        format!("{} (ggml type id)", t.name()),
                    ));
                }
            }
            KwargSpelling::Unavailable(why) => kwargs.extend(unavailable(row, knob, why)),
        }
    }
    kwargs.push(kwarg("verbose", json!(false)));
    kwargs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;

    #[test]
    fn a_knob_llama_cpp_python_cannot_set_is_a_note_only_when_it_was_not_the_default() {
        let mut r = crate::test_support::row("abc", &mock::measured(100.0, 400.0));
        assert!(r.defaulted.split(';').any(|d| d == "repack"));
        assert!(llama_kwargs(&r).iter().all(|k| k.key != "repack"));
        r.params.set(knobs::REPACK, false.into());
        r.defaulted = r.defaulted.replace("repack", "");
        let kwargs = llama_kwargs(&r);
        let repack = kwargs.iter().find(|k| k.key == "repack").unwrap();
        assert_eq!(repack.value, None, "Llama() has no such argument");
        let note = repack.note.as_deref().unwrap();
        assert!(
            note.contains("false was measured") && note.contains("--no-repack"),
            "{note}"
        );
    }
}
