//! The order in which llama-server fills a batch when several requests run
//! at once (its `update_slots`): first one token of every request that is
//! generating, then as many waiting prompt tokens as still fit in
//! `n_batch`, slot by slot. A request whose prompt finished early so keeps
//! generating while later prompts are processed, a token per batch, and
//! each of its tokens waits for a whole batch of other prompts' tokens:
//! the stalls a server's clients feel, which the request test measures by
//! following this order (`bench::Bench::requests`). Pure: the tests below
//! need no model.

use std::ops::Range;

/// One batch: the sequences that decode their next token, then the prompt
/// tokens (a range of each sequence's prompt) that fill the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub generating: Vec<usize>,
    pub prompt: Vec<(usize, Range<usize>)>,
}

/// The batches of N requests arriving together, one after another.
#[derive(Debug, Clone)]
pub struct ServerOrder {
    prompt_len: Vec<usize>,
    /// Prompt tokens of each sequence decoded so far.
    prompted: Vec<usize>,
    /// Tokens each sequence still has to decode after its first (which
    /// comes with its prompt's last batch).
    to_decode: Vec<u32>,
    n_batch: usize,
}

impl ServerOrder {
    /// Requests with these prompt lengths (each at least 1 token), each to
    /// produce `max_tokens` tokens, in batches of `n_batch` tokens (at
    /// least the number of sequences, as the batch is made).
    pub fn new(prompt_len: &[usize], max_tokens: u32, n_batch: usize) -> ServerOrder {
        ServerOrder {
            prompt_len: prompt_len.to_vec(),
            prompted: vec![0; prompt_len.len()],
            to_decode: vec![max_tokens.saturating_sub(1); prompt_len.len()],
            n_batch: n_batch.max(prompt_len.len()).max(1),
        }
    }
}

impl Iterator for ServerOrder {
    type Item = Step;

    fn next(&mut self) -> Option<Step> {
        let generating: Vec<usize> = (0..self.prompt_len.len())
            .filter(|&j| self.prompted[j] == self.prompt_len[j] && self.to_decode[j] > 0)
            .collect();
        for &j in &generating {
            self.to_decode[j] -= 1;
        }
        let mut room = self.n_batch - generating.len();
        let mut prompt = Vec::new();
        for j in 0..self.prompt_len.len() {
            let left = self.prompt_len[j] - self.prompted[j];
            if room == 0 {
                break;
            }
            if left == 0 {
                continue;
            }
            let take = left.min(room);
            prompt.push((j, self.prompted[j]..self.prompted[j] + take));
            self.prompted[j] += take;
            room -= take;
        }
        (!generating.is_empty() || !prompt.is_empty()).then_some(Step { generating, prompt })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_whose_prompt_is_done_gets_a_token_in_every_later_batch() {
        // Two 64-token prompts in 32-token batches, 4 tokens each.
        let steps: Vec<Step> = ServerOrder::new(&[64, 64], 4, 32).collect();
        assert_eq!(steps[0].prompt, vec![(0, 0..32)]);
        assert_eq!(steps[1].prompt, vec![(0, 32..64)]);
        // Sequence 0 has its first token; it generates while sequence 1's
        // prompt fills the rest of each batch.
        assert_eq!(steps[2].generating, vec![0]);
        assert_eq!(steps[2].prompt, vec![(1, 0..31)]);
        assert_eq!(steps[3].generating, vec![0]);
        assert_eq!(steps[3].prompt, vec![(1, 31..62)]);
        assert_eq!(steps[4].generating, vec![0]);
        assert_eq!(steps[4].prompt, vec![(1, 62..64)]);
        // Sequence 0 is done (1 + 3 tokens); sequence 1 generates alone.
        assert!(
            steps[5..]
                .iter()
                .all(|s| s.generating == [1] && s.prompt.is_empty())
        );
        assert_eq!(steps.len(), 8);
    }

    #[test]
    fn one_request_is_its_prompt_in_chunks_then_one_token_a_batch() {
        let steps: Vec<Step> = ServerOrder::new(&[70], 3, 32).collect();
        let prompt: Vec<_> = steps.iter().flat_map(|s| s.prompt.clone()).collect();
        assert_eq!(prompt, vec![(0, 0..32), (0, 32..64), (0, 64..70)]);
        assert_eq!(steps.len(), 5);
        assert!(steps[3..].iter().all(|s| s.generating == [0]));
    }

    #[test]
    fn every_prompt_token_is_decoded_once_and_every_request_gets_its_tokens() {
        for (lens, max, n_batch) in [
            (vec![5, 100, 7], 10, 16),
            (vec![1, 1, 1, 1], 1, 4),
            (vec![300, 2], 50, 64),
        ] {
            let steps: Vec<Step> = ServerOrder::new(&lens, max, n_batch).collect();
            for (j, &len) in lens.iter().enumerate() {
                let decoded: usize = steps
                    .iter()
                    .flat_map(|s| &s.prompt)
                    .filter(|(seq, _)| *seq == j)
                    .map(|(_, r)| r.len())
                    .sum();
                assert_eq!(decoded, len);
                let generated = steps.iter().filter(|s| s.generating.contains(&j)).count();
                assert_eq!(generated as u32, max - 1);
            }
            for s in &steps {
                let size =
                    s.generating.len() + s.prompt.iter().map(|(_, r)| r.len()).sum::<usize>();
                assert!(size <= n_batch.max(lens.len()) && size > 0);
            }
        }
    }
}
