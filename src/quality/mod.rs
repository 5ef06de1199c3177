//! The quality cost of each model variant: perplexity on an evaluation text
//! and, against the highest-precision variant of the same model, the KL
//! divergence of the token distributions and the top-1 agreement — what
//! llama.cpp's perplexity tool measures for quantization damage.
//!
//! Quality does not depend on threads or batch sizes, so it is measured once
//! per (model file, KV-cache types), before the speed trials, each in its own
//! child process like a trial. Results go to `quality.csv` in the sweep
//! folder (a killed sweep keeps them); rows of results.csv carry the figures
//! of their variant, so `[objective]` can bound them (`kld_max`,
//! `ppl_increase_pct_max`, `top1_pct_min`).

pub mod logprobs;
pub mod phase;
pub mod record;
pub mod tasks;

use crate::knobs::KvType;
use std::collections::HashMap;

/// The evaluation text shipped with llama-sweep (see data/eval/README.md).
pub const DEFAULT_TEXT: &str = include_str!("../../data/eval/moby-dick-ch1-15.txt");
pub const DEFAULT_TEXT_NAME: &str = "moby-dick-ch1-15.txt (Melville, public domain)";

/// The quality figures of one (variant, KV types), as rows carry them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityFigures {
    pub ppl: f64,
    /// Perplexity above the reference's, percent.
    pub ppl_increase_pct: f64,
    /// Mean KL divergence from the reference.
    pub kld: f64,
    /// Top-1 agreement with the reference, percent.
    pub top1_pct: f64,
}

/// What rows of results.csv learn about their model variant beyond their own
/// measurement: its quality and the bytes it reads per generated token.
#[derive(Debug, Clone, Default)]
pub struct VariantFacts {
    quality: HashMap<(String, KvType, KvType), QualityFigures>,
    bytes_per_token: HashMap<String, u64>,
}

impl VariantFacts {
    pub fn set_quality(&mut self, identity: &str, k: KvType, v: KvType, q: QualityFigures) {
        self.quality.insert((identity.to_string(), k, v), q);
    }

    pub fn set_bytes_per_token(&mut self, identity: &str, bytes: u64) {
        self.bytes_per_token.insert(identity.to_string(), bytes);
    }

    pub fn quality(&self, identity: &str, k: KvType, v: KvType) -> Option<QualityFigures> {
        self.quality.get(&(identity.to_string(), k, v)).copied()
    }

    pub fn bytes_per_token(&self, identity: &str) -> Option<u64> {
        self.bytes_per_token.get(identity).copied()
    }
}
