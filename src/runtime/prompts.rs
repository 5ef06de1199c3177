//! The prompts a verification sends: random token ids, uniform over the
//! model's vocabulary as llama-bench draws them, a new prompt for every
//! request (so that no runtime's prompt cache flatters it) and the same
//! prompts for every app runtime of a round (so that they stay paired).

use crate::models::gguf::{GgufHeader, GgufValue};
use crate::rng::SplitMix64;
use anyhow::{Context, bail};
use std::path::Path;

/// The vocabulary size a GGUF file declares (its token list).
pub fn vocabulary_size(model: &Path) -> anyhow::Result<u32> {
    let header =
        GgufHeader::read(model).with_context(|| format!("cannot read {}", model.display()))?;
    match header.metadata.get("tokenizer.ggml.tokens") {
        Some(GgufValue::Array(n)) if *n > 0 => Ok((*n).min(u64::from(u32::MAX)) as u32),
        _ => bail!(
            "{} declares no token list (tokenizer.ggml.tokens)",
            model.display()
        ),
    }
}

/// `count` prompts of `tokens` ids each below `n_vocab`, the same for the
/// same seed.
pub fn random_prompts(seed: u64, n_vocab: u32, count: usize, tokens: u32) -> Vec<Vec<i32>> {
    let mut rng = SplitMix64::new(seed ^ 0x7E57_AB1E_5EED_0001);
    (0..count)
        .map(|_| {
            (0..tokens)
                .map(|_| (rng.next_u64() % u64::from(n_vocab.max(1))) as i32)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_unique_in_range_and_repeatable() {
        let a = random_prompts(3, 100, 4, 16);
        assert_eq!(a.len(), 4);
        assert!(a.iter().all(|p| p.len() == 16));
        assert!(a.iter().flatten().all(|&t| (0..100).contains(&t)));
        assert_ne!(a[0], a[1]);
        assert_eq!(a, random_prompts(3, 100, 4, 16));
        assert_ne!(a, random_prompts(4, 100, 4, 16));
    }
}
