//! Combinations of knob values llama.cpp refuses. The grid leaves them out,
//! and `[baseline]` validation rejects them, from this one list.

use super::{FlashAttn, KnobId, Params, TYPE_V};

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
}
