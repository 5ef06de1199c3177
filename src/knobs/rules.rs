//! How knobs' values bear on each other: combinations llama.cpp refuses
//! (the grid leaves them out, and `[baseline]` validation rejects them,
//! from this one list), and knobs that cannot act with another's value
//! (the grid leaves them unset there).

use super::{
    DRAFT_MODEL, DRAFT_N_MAX, DRAFT_N_MIN, DRAFT_P_MIN, FlashAttn, KnobId, Params, SPEC_TYPE,
    TYPE_V,
};

/// The knobs a draft model's speculation reads, and only it.
const DRAFT_SETTINGS: [KnobId; 4] = [DRAFT_MODEL, DRAFT_N_MAX, DRAFT_N_MIN, DRAFT_P_MIN];

/// The knobs `params` sets that cannot act with its other values: the
/// draft model and its settings when llama-server does not draft with a
/// model (spec_type "none" or an n-gram kind, which has settings of its
/// own). Trials that differ only by them are the same trial.
pub fn idle(params: &Params) -> Vec<KnobId> {
    let drafts = params
        .text(SPEC_TYPE)
        .is_some_and(|kind| kind.starts_with("draft-"));
    if drafts {
        return Vec::new();
    }
    DRAFT_SETTINGS
        .into_iter()
        .filter(|k| params.is_set(*k))
        .collect()
}

/// Why llama.cpp refuses `params` (of the knobs it sets), and the knob to
/// point at.
pub fn refusal(params: &Params) -> Option<(KnobId, &'static str)> {
    let quantized_v = params.kv_type(TYPE_V).is_some_and(|t| t.is_quantized());
    if quantized_v && params.flash_attn() == Some(FlashAttn::Off) {
        return Some((
            TYPE_V,
            "a quantized V cache needs flash attention: llama.cpp refuses it with flash_attn = \"off\"",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{FLASH_ATTN, Value};

    #[test]
    fn a_quantized_v_cache_needs_flash_attention() {
        let v = |t: &str| Params::default().with(TYPE_V, Value::Text(t.into()));
        let off = |p: Params| p.with(FLASH_ATTN, Value::Text("off".into()));
        assert_eq!(refusal(&off(v("q8_0"))).map(|r| r.0), Some(TYPE_V));
        assert_eq!(refusal(&off(v("f16"))), None);
        assert_eq!(refusal(&v("q8_0")), None, "auto turns it on");
    }

    #[test]
    fn a_draft_models_settings_are_idle_without_its_speculation() {
        let p = |kind: &str| {
            Params::default()
                .with(SPEC_TYPE, Value::Text(kind.into()))
                .with(DRAFT_N_MAX, Value::Int(8))
                .with(DRAFT_MODEL, Value::Text("/d.gguf".into()))
        };
        assert_eq!(idle(&p("none")), [DRAFT_MODEL, DRAFT_N_MAX]);
        assert_eq!(idle(&p("ngram-mod")), [DRAFT_MODEL, DRAFT_N_MAX]);
        assert!(idle(&p("draft-simple")).is_empty());
        assert_eq!(
            idle(&Params::default().with(DRAFT_N_MIN, Value::Int(1))),
            [DRAFT_N_MIN],
            "spec_type unset is llama-server's none"
        );
    }
}
