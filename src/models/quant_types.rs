//! The quantization types llama.cpp's quantizer can derive without an
//! importance matrix, by their usual names (`Q4_K_M` ...), and their
//! `llama_ftype` values.

/// `(name, llama_ftype)`, highest precision first.
const QUANT_TYPES: &[(&str, u32)] = &[
    ("F32", 0),
    ("F16", 1),
    ("BF16", 32),
    ("Q8_0", 7),
    ("Q6_K", 18),
    ("Q5_K_M", 17),
    ("Q5_K_S", 16),
    ("Q5_1", 9),
    ("Q5_0", 8),
    ("Q4_K_M", 15),
    ("Q4_K_S", 14),
    ("Q4_1", 3),
    ("Q4_0", 2),
    ("IQ4_NL", 25),
    ("IQ4_XS", 30),
    ("Q3_K_L", 13),
    ("Q3_K_M", 12),
    ("Q3_K_S", 11),
    ("Q2_K", 10),
];

/// A quantization type that `quantize = [...]` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantType {
    pub name: &'static str,
    pub ftype: u32,
}

impl QuantType {
    /// Looks a type up by name, ignoring case (`q4_k_m` works).
    pub fn from_name(name: &str) -> Option<QuantType> {
        QUANT_TYPES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(name, ftype)| QuantType { name, ftype })
    }

    pub fn names() -> impl Iterator<Item = &'static str> {
        QUANT_TYPES.iter().map(|(n, _)| *n)
    }
}

/// The short name of a `general.file_type` value in a GGUF header, e.g. 3 →
/// `Q4_1`; `None` for types this table does not know.
pub fn name_of_ftype(ftype: u32) -> Option<&'static str> {
    QUANT_TYPES
        .iter()
        .find(|(_, f)| *f == ftype)
        .map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_case_insensitive_and_map_to_llama_ftypes() {
        assert_eq!(QuantType::from_name("q4_k_m").unwrap().ftype, 15);
        assert_eq!(QuantType::from_name("Q8_0").unwrap().name, "Q8_0");
        assert_eq!(QuantType::from_name("Q6_K").unwrap().ftype, 18);
        assert!(QuantType::from_name("Q7_K").is_none());
    }

    #[test]
    fn ftype_names_round_trip() {
        for name in QuantType::names() {
            let q = QuantType::from_name(name).unwrap();
            assert_eq!(name_of_ftype(q.ftype), Some(name));
        }
    }
}
