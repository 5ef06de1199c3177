//! The named values of the choice knobs whose meaning code needs beyond
//! their name: flash attention (a rule ties it to the V cache), the
//! KV-cache types (quality is measured per type; llama-cpp-python takes
//! them as ggml type ids), the load mode (llama-cpp-python takes it as two
//! booleans) and the split mode (an enum value there).

use serde::{Deserialize, Serialize};
use std::fmt;

/// Flash attention policy, as llama.cpp's `llama_flash_attn_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlashAttn {
    On,
    Off,
    Auto,
}

impl FlashAttn {
    pub const ALL: [FlashAttn; 3] = [FlashAttn::On, FlashAttn::Off, FlashAttn::Auto];
    pub const NAMES: [&'static str; 3] = ["on", "off", "auto"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<FlashAttn> {
        Self::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for FlashAttn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The KV-cache element types llama.cpp accepts for `type_k` / `type_v`
/// (the same list llama-bench offers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KvType {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q4_0,
    Q4_1,
    #[serde(rename = "iq4_nl")]
    Iq4Nl,
    Q5_0,
    Q5_1,
}

impl KvType {
    pub const ALL: [KvType; 9] = [
        KvType::F32,
        KvType::F16,
        KvType::Bf16,
        KvType::Q8_0,
        KvType::Q4_0,
        KvType::Q4_1,
        KvType::Iq4Nl,
        KvType::Q5_0,
        KvType::Q5_1,
    ];
    pub const NAMES: [&'static str; 9] = [
        "f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1",
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    /// Block-quantized types (everything but f32, f16, bf16); a quantized V
    /// cache needs flash attention.
    pub fn is_quantized(self) -> bool {
        !matches!(self, KvType::F32 | KvType::F16 | KvType::Bf16)
    }

    pub fn from_name(name: &str) -> Option<KvType> {
        KvType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The `ggml_type` enum value, which is what llama-cpp-python's `type_k` /
    /// `type_v` keyword arguments take.
    pub fn ggml_type_id(self) -> u32 {
        match self {
            KvType::F32 => 0,
            KvType::F16 => 1,
            KvType::Q4_0 => 2,
            KvType::Q4_1 => 3,
            KvType::Q5_0 => 6,
            KvType::Q5_1 => 7,
            KvType::Q8_0 => 8,
            KvType::Iq4Nl => 20,
            KvType::Bf16 => 30,
        }
    }
}

impl fmt::Display for KvType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How llama.cpp loads the weights (`llama_load_mode`, llama-server
/// `--load-mode`), in its own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadMode {
    /// mmap, unless a device cannot use a mapped file.
    Auto,
    /// Read the file into memory.
    None,
    Mmap,
    /// Read into memory and lock it there.
    Mlock,
    MmapMlock,
    /// Direct I/O, where the build and file system support it.
    DirectIo,
}

impl LoadMode {
    pub const ALL: [LoadMode; 6] = [
        LoadMode::Auto,
        LoadMode::None,
        LoadMode::Mmap,
        LoadMode::Mlock,
        LoadMode::MmapMlock,
        LoadMode::DirectIo,
    ];
    /// llama.cpp's names (`--load-mode`).
    pub const NAMES: [&'static str; 6] = ["auto", "none", "mmap", "mlock", "mmap+mlock", "dio"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<LoadMode> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }

    /// Whether the file is mapped (what `use_mmap` meant); "auto" maps it
    /// unless a device cannot.
    pub fn maps(self) -> bool {
        matches!(self, LoadMode::Auto | LoadMode::Mmap | LoadMode::MmapMlock)
    }

    pub fn locks(self) -> bool {
        matches!(self, LoadMode::Mlock | LoadMode::MmapMlock)
    }
}

/// How layers are spread over several GPUs (`llama_split_mode`, llama-server
/// `-sm`); its position is llama.cpp's enum value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitMode {
    None,
    Layer,
    Row,
    Tensor,
}

impl SplitMode {
    pub const ALL: [SplitMode; 4] = [
        SplitMode::None,
        SplitMode::Layer,
        SplitMode::Row,
        SplitMode::Tensor,
    ];
    pub const NAMES: [&'static str; 4] = ["none", "layer", "row", "tensor"];

    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<SplitMode> {
        Self::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// llama-server's kinds of speculative decoding (`--spec-type`): a draft
/// model's guesses (`draft-simple`; EAGLE-3, MTP and the others need heads
/// the model has), or n-grams looked up in the text so far (no second
/// model). The first, "none", is the server's default.
pub struct SpecType;

impl SpecType {
    pub const NONE: &'static str = "none";
    pub const NAMES: [&'static str; 11] = [
        "none",
        "draft-simple",
        "draft-eagle3",
        "draft-mtp",
        "draft-dflash",
        "draft-dspark",
        "ngram-simple",
        "ngram-map-k",
        "ngram-map-k4v",
        "ngram-mod",
        "ngram-cache",
    ];

    /// The kind that guesses with the draft model `-md` names.
    pub const WITH_DRAFT_MODEL: &'static str = "draft-simple";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_name() {
        for t in KvType::ALL {
            assert_eq!(KvType::from_name(t.name()), Some(t));
            let json = serde_json::to_string(&t).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()));
        }
        for f in FlashAttn::ALL {
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{f}\""));
            assert_eq!(FlashAttn::from_name(f.name()), Some(f));
        }
        assert_eq!(KvType::from_name("Q8_0"), Some(KvType::Q8_0));
        assert_eq!(KvType::from_name("q7"), None);
        for m in LoadMode::ALL {
            assert_eq!(LoadMode::from_name(m.name()), Some(m));
        }
        for m in SplitMode::ALL {
            assert_eq!(SplitMode::from_name(m.name()), Some(m));
        }
        assert!(LoadMode::Auto.maps() && !LoadMode::None.maps() && LoadMode::MmapMlock.locks());
    }
}
