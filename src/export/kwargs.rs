//! The trial's parameters as llama-cpp-python `Llama()` keyword arguments,
//! in the order config.yaml and llm.json write them. Both render this one
//! list, so the two can never disagree on a key, a value or a rule (flash
//! attention, KV-cache types).
//!
//! Every parameter is given with the value the trial really ran with,
//! because llama-cpp-python's defaults differ from llama.cpp's (n_gpu_layers
//! 0 vs all, n_ctx 512, threads from the CPU count ...): leaving one out
//! would make the app run something other than what was measured.

use crate::knobs::{self, Domain, FlashAttn, Knob, KvType, KwargSpelling, LoadMode, lists};
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

/// `use_mmap` and `use_mlock` for llama.cpp's load mode, as llama-cpp-python
/// turns them back into one.
fn load_mode(row: &TrialRow) -> Vec<Kwarg> {
    let mode = LoadMode::from_name(row.params.text(knobs::LOAD_MODE)).unwrap_or(LoadMode::Auto);
    let pair = |mmap: bool, mlock: bool| {
        vec![
            kwarg("use_mmap", json!(mmap)),
            kwarg("use_mlock", json!(mlock)),
        ]
    };
    match mode {
        LoadMode::Auto => {
            let mut kwargs = pair(true, false);
            kwargs[0].note = Some(
                "measured with load_mode \"auto\", which maps the file unless a device cannot"
                    .into(),
            );
            kwargs
        }
        LoadMode::DirectIo => vec![noted(
            "use_mmap",
            None,
            "load_mode \"dio\" (direct I/O) was measured, but Llama() takes only use_mmap and \
             use_mlock; llama-server takes it as --load-mode dio"
                .into(),
        )],
        other => pair(other.maps(), other.locks()),
    }
}

/// A knob `Llama()` cannot set: nothing when the trial left it at
/// llama.cpp's default (which `Llama()` runs too), else a note saying what
/// was measured and what does express it.
fn unavailable(row: &TrialRow, knob: &Knob, why: &str) -> Option<Kwarg> {
    if row.is_defaulted(knob.id) {
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
        if !knob.written_at_default() && row.is_defaulted(knob.id) {
            continue;
        }
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
            KwargSpelling::EnumIndex => {
                if let (Domain::Choice { names, .. }, Some(name)) = (knob.domain, value.as_str()) {
                    let index = names.iter().position(|n| *n == name).unwrap_or_default();
                    kwargs.push(noted(knob.name, Some(json!(index)), name.to_string()));
                }
            }
            KwargSpelling::Numbers => {
                let numbers = lists::tensor_split_numbers(value.as_str().unwrap_or_default());
                if !numbers.is_empty() {
                    kwargs.push(kwarg(knob.name, json!(numbers)));
                }
            }
            KwargSpelling::LoadMode => kwargs.extend(load_mode(row)),
            KwargSpelling::Unavailable(why) => kwargs.extend(unavailable(row, knob, why)),
            KwargSpelling::OneSequence if row.n_parallel() > 1.0 => kwargs.extend(unavailable(
                row,
                knob,
                "llama-cpp-python's Llama() decodes one sequence at a time",
            )),
            KwargSpelling::OneSequence => {}
        }
    }
    kwargs.push(kwarg("verbose", json!(false)));
    kwargs
}

/// What `row` measured that `Llama()` cannot be told, one sentence per
/// setting: the winner depends on it, so an app that loads config.yaml runs
/// something else (llama-server's arguments carry it).
pub fn inexpressible(row: &TrialRow) -> Vec<String> {
    llama_kwargs(row)
        .into_iter()
        .filter(|k| k.value.is_none() && k.key != "flash_attn")
        .filter_map(|k| k.note.map(|note| format!("{}: {note}", k.key)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::set;

    #[test]
    fn a_knob_llama_cpp_python_cannot_set_is_a_note_only_when_it_was_not_the_default() {
        let mut r = crate::test_support::row("abc", &mock::measured(100.0, 400.0));
        assert!(r.defaulted.split(';').any(|d| d == "repack"));
        assert!(llama_kwargs(&r).iter().all(|k| k.key != "repack"));
        set(&mut r, knobs::REPACK, false.into());
        let kwargs = llama_kwargs(&r);
        let repack = kwargs.iter().find(|k| k.key == "repack").unwrap();
        assert_eq!(repack.value, None, "Llama() has no such argument");
        let note = repack.note.as_deref().unwrap();
        assert!(
            note.contains("false was measured") && note.contains("--no-repack"),
            "{note}"
        );
    }

    #[test]
    fn concurrency_is_a_warning_only_for_more_than_one_sequence() {
        let mut r = crate::test_support::row("abc", &mock::measured(100.0, 400.0));
        set(&mut r, knobs::N_PARALLEL, 1.into());
        set(&mut r, knobs::KV_UNIFIED, true.into());
        assert!(inexpressible(&r).is_empty(), "Llama() runs one sequence");
        set(&mut r, knobs::N_PARALLEL, 4.into());
        let warnings = inexpressible(&r);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("n_parallel: 4 was measured") && warnings[0].contains("-np 4")
        );
        assert!(warnings[1].contains("--kv-unified"), "{warnings:?}");
    }

    #[test]
    fn load_mode_becomes_use_mmap_and_use_mlock() {
        let mut r = crate::test_support::row("abc", &mock::measured(100.0, 400.0));
        let get = |r: &TrialRow, key: &str| {
            llama_kwargs(r)
                .into_iter()
                .find(|k| k.key == key)
                .and_then(|k| k.value)
        };
        for (mode, mmap, mlock) in [
            ("auto", true, false),
            ("none", false, false),
            ("mlock", false, true),
            ("mmap+mlock", true, true),
        ] {
            set(&mut r, knobs::LOAD_MODE, knobs::Value::Text(mode.into()));
            assert_eq!(get(&r, "use_mmap"), Some(json!(mmap)), "{mode}");
            assert_eq!(get(&r, "use_mlock"), Some(json!(mlock)), "{mode}");
        }
        set(&mut r, knobs::LOAD_MODE, knobs::Value::Text("dio".into()));
        assert_eq!(get(&r, "use_mmap"), None, "Llama() cannot say direct I/O");
    }

    #[test]
    fn gpu_placement_is_written_as_llama_cpp_python_takes_it() {
        let mut r = crate::test_support::row("abc", &mock::measured(100.0, 400.0));
        let kwargs = llama_kwargs(&r);
        assert!(
            kwargs
                .iter()
                .all(|k| k.key != "tensor_split" && k.key != "split_mode"),
            "left at llama.cpp's defaults, which Llama() shares"
        );
        set(
            &mut r,
            knobs::SPLIT_MODE,
            knobs::Value::Text("layer".into()),
        );
        assert_eq!(
            llama_kwargs(&r)
                .into_iter()
                .find(|k| k.key == "split_mode")
                .unwrap()
                .value,
            Some(json!(1)),
            "layer is LLAMA_SPLIT_MODE_LAYER"
        );
        set(
            &mut r,
            knobs::TENSOR_SPLIT,
            knobs::Value::Text("3,1".into()),
        );
        set(&mut r, knobs::N_CPU_MOE, knobs::Value::Int(4));
        let kwargs = llama_kwargs(&r);
        let split = kwargs.iter().find(|k| k.key == "tensor_split").unwrap();
        assert_eq!(split.value, Some(json!([3.0, 1.0])));
        let moe = kwargs.iter().find(|k| k.key == "n_cpu_moe").unwrap();
        assert_eq!(moe.value, None);
        assert!(
            moe.note.as_deref().unwrap().contains("--n-cpu-moe 4"),
            "{moe:?}"
        );
    }
}
