//! The prompts the app's requests send: random token ids, uniform over the
//! model's vocabulary as llama-bench draws them, or passages of a text
//! (`workload.prompts`); a new prompt for every request (so that no
//! runtime's prompt cache flatters it) and the same prompts for every app
//! runtime of a round (so that they stay paired).

use crate::models::gguf::{GgufHeader, GgufValue};
use crate::protocol::Prompts;
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

/// The text `prompts` names; `None` for random tokens.
pub fn text_of(prompts: &Prompts) -> anyhow::Result<Option<String>> {
    Ok(match prompts {
        Prompts::Random => None,
        Prompts::Shipped => Some(crate::quality::DEFAULT_TEXT.to_string()),
        Prompts::File(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the prompts {}", path.display()))?,
        ),
    })
}

/// `count` passages of `length` tokens from `text` (the text's tokens),
/// one after the other from a point the seed picks, wrapping around: each
/// a different passage, the same for the same seed. `None` when the text
/// is shorter than one passage.
pub fn passages(seed: u64, text: &[i32], count: usize, length: u32) -> Option<Vec<Vec<i32>>> {
    let length = length as usize;
    let starts = text.len().checked_sub(length)? + 1;
    let first = (SplitMix64::new(seed ^ 0x7E47_0000_5EED_0002).next_u64() % starts as u64) as usize;
    Some(
        (0..count)
            .map(|k| {
                let start = (first + k * length.max(1)) % starts;
                text[start..start + length].to_vec()
            })
            .collect(),
    )
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

    #[test]
    fn passages_follow_each_other_in_the_text() {
        let text: Vec<i32> = (0..100).collect();
        let p = passages(7, &text, 3, 10).unwrap();
        assert!(p.iter().all(|q| q.len() == 10));
        assert!(
            p.iter().all(|q| q.windows(2).all(|w| w[1] == w[0] + 1)),
            "contiguous"
        );
        assert_ne!(p[0], p[1]);
        assert_eq!(p, passages(7, &text, 3, 10).unwrap());
        assert_eq!(
            passages(1, &text, 2, 100).unwrap()[1],
            text,
            "a text of one passage"
        );
        assert!(passages(1, &text, 1, 101).is_none());
    }
}
