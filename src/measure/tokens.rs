//! Random prompt tokens, as llama-bench uses: uniform over the vocabulary,
//! the first one BOS when the model adds BOS. Seeded, so every trial of a
//! sweep decodes the same token sequence.

use crate::rng::SplitMix64;
use llama_cpp_2::token::LlamaToken;

pub struct TokenSource {
    rng: SplitMix64,
    n_vocab: u32,
    bos: Option<LlamaToken>,
    /// The prompt, generated once and reused by every repetition.
    prompt: Vec<LlamaToken>,
}

impl TokenSource {
    pub fn new(seed: u64, n_vocab: i32, bos: Option<LlamaToken>) -> Self {
        TokenSource {
            rng: SplitMix64::new(seed ^ 0x5DEE_CE66_D1CE_4E5B),
            n_vocab: n_vocab.max(1) as u32,
            bos,
            prompt: Vec::new(),
        }
    }

    /// A uniformly random token id.
    pub fn random(&mut self) -> LlamaToken {
        LlamaToken((self.rng.next_u64() % u64::from(self.n_vocab)) as i32)
    }

    /// The first token of a sequence: BOS when the model adds one.
    pub fn first_token(&mut self) -> LlamaToken {
        match self.bos {
            Some(bos) => bos,
            None => self.random(),
        }
    }

    /// Token `pos` of the (fixed) random prompt.
    pub fn prompt_token(&mut self, pos: usize) -> LlamaToken {
        while self.prompt.len() <= pos {
            let token = if self.prompt.is_empty() {
                self.first_token()
            } else {
                self.random()
            };
            self.prompt.push(token);
        }
        self.prompt[pos]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_prompt_and_tokens_in_vocab() {
        let mut a = TokenSource::new(7, 100, Some(LlamaToken(1)));
        let mut b = TokenSource::new(7, 100, Some(LlamaToken(1)));
        let pa: Vec<_> = (0..50).map(|i| a.prompt_token(i)).collect();
        let pb: Vec<_> = (0..50).map(|i| b.prompt_token(i)).collect();
        assert_eq!(pa, pb);
        assert_eq!(pa[0], LlamaToken(1));
        assert!(pa.iter().all(|t| (0..100).contains(&t.0)));
        // Several distinct values: it is not constant.
        let distinct: std::collections::HashSet<_> = pa.iter().map(|t| t.0).collect();
        assert!(distinct.len() > 20);
        // Repeated reads give the same prompt.
        assert_eq!(a.prompt_token(3), pa[3]);
    }
}
