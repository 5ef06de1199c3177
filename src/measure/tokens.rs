//! Random prompt tokens, as llama-bench uses them: uniform over the
//! vocabulary, the first one BOS when the model adds BOS. llama-bench draws
//! new tokens for every run; so do we, from a generator seeded by the
//! sweep's seed and the run, so every trial of a sweep decodes the same
//! sequence of prompts and trials stay paired.

use super::llama::Token;
use crate::rng::SplitMix64;

/// Which run a prompt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Warmup(u32),
    Prompt(u32),
    Request(u32),
    /// The tokens that fill the cache to a depth (the depth).
    Depth(u32),
    /// The earlier conversation of a follow-up request.
    History,
}

pub struct TokenSource {
    seed: u64,
    n_vocab: u32,
    bos: Option<Token>,
    /// For the generation test's next tokens.
    rng: SplitMix64,
}

impl TokenSource {
    pub fn new(seed: u64, n_vocab: i32, bos: Option<Token>) -> Self {
        TokenSource {
            seed,
            n_vocab: n_vocab.max(1) as u32,
            bos,
            rng: SplitMix64::new(seed ^ 0x5DEE_CE66_D1CE_4E5B),
        }
    }

    fn draw(rng: &mut SplitMix64, n_vocab: u32) -> Token {
        (rng.next_u64() % u64::from(n_vocab)) as Token
    }

    /// A uniformly random token id.
    pub fn random(&mut self) -> Token {
        Self::draw(&mut self.rng, self.n_vocab)
    }

    /// The first token of a sequence: BOS when the model adds one.
    pub fn first_token(&mut self) -> Token {
        match self.bos {
            Some(bos) => bos,
            None => self.random(),
        }
    }

    /// The `n` tokens of `run`'s prompt: the same for the same seed and run,
    /// different for different runs.
    pub fn prompt(&self, run: Run, n: usize) -> Vec<Token> {
        self.prompt_of(run, 0, n)
    }

    /// The `n` tokens of `run`'s prompt for sequence `seq` of several
    /// decoded together (sequence 0's is [`prompt`](Self::prompt)'s).
    pub fn prompt_of(&self, run: Run, seq: u32, n: usize) -> Vec<Token> {
        let (kind, i) = match run {
            Run::Warmup(i) => (1u64, i),
            Run::Prompt(i) => (2, i),
            Run::Request(i) => (3, i),
            Run::Depth(d) => (4, d),
            Run::History => (5, 0),
        };
        let mut rng = SplitMix64::new(
            self.seed
                ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul((kind << 32) | (u64::from(i) + 1))
                ^ 0xD6E8_FEB8_6659_FD93u64.wrapping_mul(u64::from(seq)),
        );
        (0..n)
            .map(|pos| match (pos, self.bos) {
                (0, Some(bos)) => bos,
                _ => Self::draw(&mut rng, self.n_vocab),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_prompts_and_a_new_prompt_each_run() {
        let a = TokenSource::new(7, 100, Some(1));
        let b = TokenSource::new(7, 100, Some(1));
        let pa = a.prompt(Run::Prompt(0), 50);
        assert_eq!(pa, b.prompt(Run::Prompt(0), 50), "trials stay paired");
        assert_eq!(pa[0], 1, "BOS first");
        assert!(pa.iter().all(|t| (0..100).contains(t)));
        let distinct: std::collections::HashSet<_> = pa.iter().collect();
        assert!(distinct.len() > 20, "not constant");
        assert_ne!(pa, a.prompt(Run::Prompt(1), 50), "each run draws anew");
        assert_ne!(pa, a.prompt(Run::Request(0), 50));
        assert_ne!(
            pa,
            TokenSource::new(8, 100, Some(1)).prompt(Run::Prompt(0), 50)
        );
        assert_eq!(&a.prompt(Run::Prompt(0), 60)[..50], &pa[..], "a prefix");
    }

    #[test]
    fn sequences_decoded_together_get_prompts_of_their_own() {
        let a = TokenSource::new(7, 1000, Some(1));
        let first = a.prompt_of(Run::Prompt(0), 0, 50);
        assert_eq!(first, a.prompt(Run::Prompt(0), 50));
        let second = a.prompt_of(Run::Prompt(0), 1, 50);
        assert_ne!(first, second);
        assert_eq!(second[0], 1, "each sequence starts with BOS");
        assert_ne!(
            a.prompt_of(Run::Depth(512), 0, 50),
            a.prompt_of(Run::Depth(1024), 0, 50)
        );
    }
}
