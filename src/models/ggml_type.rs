//! The storage layout of ggml's tensor types: how many elements one block
//! holds and how many bytes it takes, so a tensor's size in bytes follows
//! from its type and shape without loading it. The figures are ggml's own
//! (`ggml_blck_size`, `ggml_type_size` of the vendored llama.cpp), so a
//! type llama.cpp adds or changes is right here too.

use llama_cpp_sys_2 as sys;

/// `(name, elements per block, bytes per block)` of a type ggml knows and
/// still supports (removed types have no block size).
fn layout(ggml_type: u32) -> Option<(&'static str, u64, u64)> {
    if ggml_type >= sys::GGML_TYPE_COUNT {
        return None;
    }
    let t = ggml_type as sys::ggml_type;
    // SAFETY: plain lookups in ggml's static type table, for a type id
    // within its range; the name is a static string.
    let (elements, bytes, name) = unsafe {
        (
            sys::ggml_blck_size(t),
            sys::ggml_type_size(t),
            std::ffi::CStr::from_ptr(sys::ggml_type_name(t)),
        )
    };
    if elements <= 0 || bytes == 0 {
        return None;
    }
    let name = name.to_str().ok()?;
    Some((name, elements as u64, bytes as u64))
}

/// The type's name as ggml spells it (`q4_K`, `f16`); `None` when unknown.
pub fn name(ggml_type: u32) -> Option<&'static str> {
    layout(ggml_type).map(|(name, ..)| name)
}

/// Bytes that `n_elements` of the type take; `None` for a type ggml does
/// not know or a count that is not a whole number of blocks (which ggml
/// never writes).
pub fn bytes_for(ggml_type: u32, n_elements: u64) -> Option<u64> {
    let (_, block_elems, block_bytes) = layout(ggml_type)?;
    if n_elements % block_elems != 0 {
        return None;
    }
    (n_elements / block_elems).checked_mul(block_bytes)
}

/// Average bytes per element (e.g. 34/32 for Q8_0), for estimates over
/// element counts that need not be whole blocks.
pub fn bytes_per_element(ggml_type: u32) -> Option<f64> {
    layout(ggml_type).map(|(_, elems, bytes)| bytes as f64 / elems as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Layouts fixed by the GGUF format (ggml's `block_*` structs: a scale
    /// and packed quants), which any llama.cpp must read the same way.
    #[test]
    fn layouts_are_those_of_the_gguf_format() {
        assert_eq!(bytes_for(0, 10), Some(40), "F32");
        assert_eq!(bytes_for(1, 10), Some(20), "F16");
        assert_eq!(bytes_for(30, 10), Some(20), "BF16");
        // Q4_1: an f16 scale and an f16 minimum, then 32 4-bit values.
        assert_eq!(bytes_for(3, 64), Some(2 * (2 + 2 + 16)));
        // Q8_0: an f16 scale and 32 bytes.
        assert_eq!(bytes_for(8, 576), Some(18 * (2 + 32)));
        // Q4_K: 256 values in 144 bytes; Q6_K: in 210.
        assert_eq!(bytes_for(12, 512), Some(2 * 144));
        assert_eq!(bytes_for(14, 256), Some(210));
        assert_eq!(bytes_for(3, 33), None, "not a whole block");
        assert_eq!(bytes_for(4, 32), None, "Q4_2 was removed from ggml");
        assert_eq!(bytes_for(9999, 32), None);
        assert_eq!(
            name(13).map(str::to_ascii_uppercase).as_deref(),
            Some("Q5_K")
        );
        assert_eq!(bytes_per_element(8), Some(34.0 / 32.0));
    }

    /// The KV cache types the sweep accepts all have a layout.
    #[test]
    fn kv_cache_types_are_known() {
        for kv in crate::knobs::KvType::ALL {
            let per = bytes_per_element(kv.ggml_type_id()).unwrap();
            assert!(per > 0.4 && per <= 4.0, "{kv}: {per}");
            assert!(
                name(kv.ggml_type_id())
                    .unwrap()
                    .eq_ignore_ascii_case(kv.name())
            );
        }
    }
}
