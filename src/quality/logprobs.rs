//! The arithmetic of quality measurement, exactly as llama.cpp's perplexity
//! tool (`tools/perplexity/perplexity.cpp`) does it, so that both give the
//! same figures on the same tokens:
//!
//! - perplexity: exp of the mean negative log-likelihood of each scored token;
//! - the reference's log-probabilities are stored per token as 65,536 steps
//!   between the top logit and 16 below it (two f32, scale and minimum, then
//!   one u16 per vocabulary entry: llama.cpp's `--kl-divergence-base` layout);
//! - KL divergence of a variant from the reference, summed over the tokens
//!   the reference gives more than e^-16, and top-1 agreement.
//!
//! Pure Rust, no llama.cpp: the child feeds it logits.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// u16 slots per scored token: two f32 (scale, minimum) then the vocabulary,
/// padded to an even count.
pub fn slots(n_vocab: usize) -> usize {
    2 * n_vocab.div_ceil(2) + 4
}

fn max_and_log_sum_exp(logits: &[f32]) -> (usize, f32, f32) {
    let (mut imax, mut max) = (0, logits[0]);
    for (i, &l) in logits.iter().enumerate().skip(1) {
        if l > max {
            (imax, max) = (i, l);
        }
    }
    let sum_exp: f64 = logits.iter().map(|&l| f64::from((l - max).exp())).sum();
    (imax, max, sum_exp.ln() as f32)
}

/// Negative log-likelihood of `token` under `logits`.
pub fn nll(logits: &[f32], token: usize) -> f64 {
    let (_, max, log_sum_exp) = max_and_log_sum_exp(logits);
    f64::from(max + log_sum_exp - logits[token])
}

/// Stores the log-probabilities of `logits` into `out` (`slots(n)` long) the
/// way llama.cpp does, and returns the negative log-likelihood of `token`.
pub fn store_reference(logits: &[f32], out: &mut [u16], token: usize) -> f64 {
    let (_, max, log_sum_exp) = max_and_log_sum_exp(logits);
    let min_logit = logits
        .iter()
        .copied()
        .fold(f32::INFINITY, f32::min)
        .max(max - 16.0);
    let min_log_prob = min_logit - max - log_sum_exp;
    let scale = (max - min_logit) / 65535.0;
    write_f32(&mut out[0..2], scale);
    write_f32(&mut out[2..4], min_log_prob);
    let values = &mut out[4..4 + logits.len()];
    if scale != 0.0 {
        let inv = 1.0 / scale;
        for (slot, &l) in values.iter_mut().zip(logits) {
            *slot = if l > min_logit {
                (inv * (l - min_logit)).round_ties_even() as u16
            } else {
                0
            };
        }
    } else {
        values.fill(0);
    }
    f64::from(max + log_sum_exp - logits[token])
}

fn write_f32(slots: &mut [u16], v: f32) {
    let b = v.to_le_bytes();
    slots[0] = u16::from_le_bytes([b[0], b[1]]);
    slots[1] = u16::from_le_bytes([b[2], b[3]]);
}

fn read_f32(slots: &[u16]) -> f32 {
    let (a, b) = (slots[0].to_le_bytes(), slots[1].to_le_bytes());
    f32::from_le_bytes([a[0], a[1], b[0], b[1]])
}

/// Running sums of a variant against the reference.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    nll: Moments,
    nll_base: Moments,
    kld: Moments,
    same_top: u64,
    klds: Vec<f32>,
}

/// Count, sum and sum of squares.
#[derive(Debug, Clone, Copy, Default)]
pub struct Moments {
    pub count: u64,
    sum: f64,
    sum2: f64,
}

impl Moments {
    pub fn add(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        self.sum2 += v * v;
    }

    /// Mean and its standard error, as llama.cpp's `mean_and_uncertainty`
    /// (0 with 10 values or fewer).
    pub fn mean_and_se(&self) -> (f64, f64) {
        if self.count == 0 {
            return (0.0, 0.0);
        }
        let n = self.count as f64;
        let mean = self.sum / n;
        let var = self.sum2 / n - mean * mean;
        let se = if var > 0.0 && self.count > 10 {
            (var / (n - 1.0)).sqrt()
        } else {
            0.0
        };
        (mean, se)
    }

    /// Perplexity and its uncertainty from negative log-likelihoods, as
    /// llama.cpp's "Final estimate: PPL = x +/- y".
    pub fn perplexity(&self) -> (f64, f64) {
        let (mean, se) = self.mean_and_se();
        let ppl = mean.exp();
        (ppl, se * ppl)
    }
}

impl Comparison {
    /// Scores one token: `logits` are the variant's, `base` the reference's
    /// stored slots for the same position.
    pub fn add(&mut self, logits: &[f32], base: &[u16], token: usize) {
        let (imax, max, log_sum_exp) = max_and_log_sum_exp(logits);
        let scale = read_f32(&base[0..2]);
        let min_log_prob = read_f32(&base[2..4]);
        let base = &base[4..4 + logits.len()];
        self.nll.add(f64::from(max + log_sum_exp - logits[token]));
        self.nll_base
            .add(f64::from(-(scale * f32::from(base[token]) + min_log_prob)));
        let norm = max + log_sum_exp;
        let (mut imax_base, mut best) = (0, f32::NEG_INFINITY);
        let mut sum = 0.0f64;
        for (i, (&q, &l)) in base.iter().zip(logits).enumerate() {
            let log_base = scale * f32::from(q) + min_log_prob;
            if log_base > best {
                (imax_base, best) = (i, log_base);
            }
            if log_base > -16.0 {
                sum += f64::from(log_base.exp() * (log_base - l + norm));
            }
        }
        self.kld.add(sum);
        self.klds.push(sum as f32);
        if imax == imax_base {
            self.same_top += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.kld.count
    }

    pub fn perplexity(&self) -> (f64, f64) {
        self.nll.perplexity()
    }

    pub fn base_perplexity(&self) -> f64 {
        self.nll_base.perplexity().0
    }

    /// Mean KL divergence and its standard error.
    pub fn kld(&self) -> (f64, f64) {
        self.kld.mean_and_se()
    }

    /// A percentile of the per-token KL divergences, interpolated as
    /// llama.cpp does (`fraction` 0.99 for the 99th).
    pub fn kld_percentile(&self, fraction: f64) -> f64 {
        let mut sorted = self.klds.clone();
        sorted.sort_by(f32::total_cmp);
        percentile(&sorted, fraction)
    }

    pub fn kld_max(&self) -> f64 {
        self.klds.iter().copied().fold(0.0f32, f32::max).into()
    }

    /// Share of tokens whose most likely next token is the reference's, %.
    pub fn top1_pct(&self) -> f64 {
        if self.kld.count == 0 {
            return 0.0;
        }
        100.0 * self.same_top as f64 / self.kld.count as f64
    }
}

fn percentile(sorted: &[f32], fraction: f64) -> f64 {
    match sorted {
        [] => 0.0,
        _ if fraction <= 0.0 => sorted[0].into(),
        _ if fraction >= 1.0 => sorted[sorted.len() - 1].into(),
        _ => {
            let p = fraction * (sorted.len() - 1) as f64;
            let i = p as usize;
            let w = p - i as f64;
            let next = sorted[(i + 1).min(sorted.len() - 1)];
            (1.0 - w) * f64::from(sorted[i]) + w * f64::from(next)
        }
    }
}

const MAGIC: &[u8; 8] = b"LSWQREF1";

/// The reference's stored log-probabilities: the tokens it scored and one
/// row of `slots(n_vocab)` per scored position.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub n_vocab: u32,
    pub n_ctx: u32,
    pub chunks: u32,
    /// `chunks × n_ctx` tokens, as tokenized (before BOS replacement).
    pub tokens: Vec<i32>,
    pub slots: Vec<u16>,
}

impl Reference {
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("partial");
        let mut w = BufWriter::new(File::create(&tmp)?);
        w.write_all(MAGIC)?;
        for v in [self.n_vocab, self.n_ctx, self.chunks] {
            w.write_all(&v.to_le_bytes())?;
        }
        for t in &self.tokens {
            w.write_all(&t.to_le_bytes())?;
        }
        for s in &self.slots {
            w.write_all(&s.to_le_bytes())?;
        }
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(tmp, path)
    }

    pub fn read(path: &Path) -> io::Result<Reference> {
        let mut r = BufReader::new(File::open(path)?);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a llama-sweep reference file",
            ));
        }
        let mut u32s = [0u32; 3];
        for v in &mut u32s {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            *v = u32::from_le_bytes(b);
        }
        let [n_vocab, n_ctx, chunks] = u32s;
        let n_tokens = chunks as usize * n_ctx as usize;
        let mut bytes = vec![0u8; n_tokens * 4];
        r.read_exact(&mut bytes)?;
        let tokens = bytes
            .chunks_exact(4)
            .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let n_slots = chunks as usize * scored_per_chunk(n_ctx) * slots(n_vocab as usize);
        let mut bytes = vec![0u8; n_slots * 2];
        r.read_exact(&mut bytes)?;
        let slots = bytes
            .chunks_exact(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        Ok(Reference {
            n_vocab,
            n_ctx,
            chunks,
            tokens,
            slots,
        })
    }
}

/// Tokens scored per chunk: the second half, each predicting the next.
pub fn scored_per_chunk(n_ctx: u32) -> usize {
    (n_ctx - 1 - n_ctx / 2) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits(seed: u64, n: usize) -> Vec<f32> {
        let mut rng = crate::rng::SplitMix64::new(seed);
        (0..n)
            // Within 16 of each other: every log-probability is stored
            // exactly enough to read the reference's perplexity back.
            .map(|_| (rng.next_f64() * 10.0 - 5.0) as f32)
            .collect()
    }

    #[test]
    fn nll_is_the_negative_log_softmax() {
        let l = [1.0f32, 2.0, 3.0];
        let z: f64 = l.iter().map(|&x| f64::from(x).exp()).sum();
        let want = -(3.0f64.exp() / z).ln();
        assert!((nll(&l, 2) - want).abs() < 1e-6);
        let mut slots_ = vec![0u16; slots(3)];
        assert!((store_reference(&l, &mut slots_, 2) - want).abs() < 1e-6);
    }

    #[test]
    fn a_variant_against_itself_has_zero_divergence_and_full_agreement() {
        let n = 1000;
        let mut cmp = Comparison::default();
        for t in 0..50 {
            let l = logits(t, n);
            let mut base = vec![0u16; slots(n)];
            store_reference(&l, &mut base, (t as usize * 7) % n);
            cmp.add(&l, &base, (t as usize * 7) % n);
        }
        let (kld, _) = cmp.kld();
        assert!(kld.abs() < 1e-4, "KLD of itself {kld}");
        assert_eq!(cmp.top1_pct(), 100.0);
        let (ppl, _) = cmp.perplexity();
        assert!((ppl / cmp.base_perplexity() - 1.0).abs() < 1e-3);
    }

    #[test]
    fn divergence_matches_the_exact_formula_for_a_perturbed_variant() {
        let n = 500;
        let base_logits = logits(1, n);
        let variant: Vec<f32> = base_logits
            .iter()
            .zip(logits(2, n))
            .map(|(a, b)| a + 0.1 * b)
            .collect();
        let mut slots_ = vec![0u16; slots(n)];
        store_reference(&base_logits, &mut slots_, 0);
        let mut cmp = Comparison::default();
        cmp.add(&variant, &slots_, 0);
        let softmax = |l: &[f32]| {
            let m = l.iter().copied().fold(f32::MIN, f32::max);
            let z: f64 = l.iter().map(|&x| f64::from(x - m).exp()).sum();
            l.iter()
                .map(|&x| f64::from(x - m).exp() / z)
                .collect::<Vec<_>>()
        };
        let (p, q) = (softmax(&base_logits), softmax(&variant));
        let exact: f64 = p
            .iter()
            .zip(&q)
            .filter(|(p, _)| **p > (-16f64).exp())
            .map(|(p, q)| p * (p / q).ln())
            .sum();
        let (kld, _) = cmp.kld();
        assert!(exact > 0.01, "the perturbation must matter: {exact}");
        assert!(
            (kld - exact).abs() < 1e-3 * exact.max(1e-3) + 1e-4,
            "{kld} vs {exact}"
        );
        // A different top token: agreement 0.
        let mut flipped = base_logits.clone();
        let top = (0..n)
            .max_by(|&a, &b| base_logits[a].total_cmp(&base_logits[b]))
            .unwrap();
        flipped[top] -= 30.0;
        let mut cmp = Comparison::default();
        cmp.add(&flipped, &slots_, 0);
        assert_eq!(cmp.top1_pct(), 0.0);
        assert!(cmp.kld().0 > 0.1);
    }

    #[test]
    fn uncertainty_follows_llama_cpp() {
        let mut m = Moments::default();
        for v in [1.0, 2.0, 3.0] {
            m.add(v);
        }
        assert_eq!(
            m.mean_and_se(),
            (2.0, 0.0),
            "no uncertainty with ≤ 10 values"
        );
        let mut m = Moments::default();
        for i in 0..20 {
            m.add(f64::from(i % 2));
        }
        let (mean, se) = m.mean_and_se();
        assert_eq!(mean, 0.5);
        assert!((se - (0.25f64 / 19.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn percentiles_interpolate() {
        let v = [0.0f32, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&v, 0.5), 2.0);
        assert!((percentile(&v, 0.99) - 3.96).abs() < 1e-9);
        assert_eq!(percentile(&v, 1.0), 4.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn reference_files_round_trip_and_reject_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.lp");
        let n_ctx = 8;
        let reference = Reference {
            n_vocab: 3,
            n_ctx,
            chunks: 2,
            tokens: (0..16).collect(),
            slots: (0..2 * scored_per_chunk(n_ctx) * slots(3))
                .map(|i| i as u16)
                .collect(),
        };
        reference.write(&path).unwrap();
        assert_eq!(Reference::read(&path).unwrap(), reference);
        std::fs::write(&path, b"GGUF....").unwrap();
        assert!(Reference::read(&path).is_err());
    }
}
