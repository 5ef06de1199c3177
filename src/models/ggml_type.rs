//! The storage layout of ggml's tensor types: how many elements one block
//! holds and how many bytes it takes, so a tensor's size in bytes follows
//! from its type and shape without loading it. The figures are the
//! `sizeof(block_*)` of the vendored llama.cpp's `ggml-common.h`.

/// `(ggml_type id, name, elements per block, bytes per block)`.
const LAYOUTS: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
    (42, "Q2_0", 64, 18),
];

fn layout(ggml_type: u32) -> Option<(&'static str, u64, u64)> {
    LAYOUTS
        .iter()
        .find(|(id, ..)| *id == ggml_type)
        .map(|&(_, name, elems, bytes)| (name, elems, bytes))
}

/// The type's name as ggml spells it (`Q4_K`, `F16`); `None` when unknown.
pub fn name(ggml_type: u32) -> Option<&'static str> {
    layout(ggml_type).map(|(name, ..)| name)
}

/// Bytes that `n_elements` of the type take; `None` for a type this table
/// does not know or a count that is not a whole number of blocks (which ggml
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

    #[test]
    fn block_types_take_whole_blocks() {
        assert_eq!(bytes_for(0, 10), Some(40));
        assert_eq!(bytes_for(1, 10), Some(20));
        assert_eq!(bytes_for(30, 10), Some(20));
        assert_eq!(bytes_for(3, 64), Some(40)); // Q4_1: 2 blocks of 20 bytes
        assert_eq!(bytes_for(8, 576), Some(18 * 34));
        assert_eq!(bytes_for(12, 512), Some(2 * 144)); // Q4_K
        assert_eq!(bytes_for(14, 256), Some(210)); // Q6_K
        assert_eq!(bytes_for(23, 256), Some(136)); // IQ4_XS
        assert_eq!(bytes_for(3, 33), None, "not a whole block");
        assert_eq!(bytes_for(4, 32), None, "Q4_2 was removed from ggml");
        assert_eq!(bytes_for(99, 32), None);
    }

    #[test]
    fn every_type_has_a_distinct_id_and_a_name() {
        let mut ids: Vec<u32> = LAYOUTS.iter().map(|l| l.0).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), LAYOUTS.len());
        assert_eq!(name(13), Some("Q5_K"));
        assert_eq!(bytes_per_element(8), Some(34.0 / 32.0));
    }

    /// The KV cache types the sweep accepts all have a layout here.
    #[test]
    fn kv_cache_types_are_known() {
        for kv in crate::knobs::KvType::ALL {
            let per = bytes_per_element(kv.ggml_type_id()).unwrap();
            assert!(per > 0.4 && per <= 4.0, "{kv}: {per}");
        }
    }
}
