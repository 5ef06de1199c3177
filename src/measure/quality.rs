//! The child side of a quality job: perplexity of one variant on an
//! evaluation text and, against a reference's stored log-probabilities, the
//! KL divergence and top-1 agreement — the procedure of llama.cpp's
//! perplexity tool (one sequence per chunk; the arithmetic is in
//! `quality::logprobs`).

use super::bench::{failure, garbage, load};
use super::{apply, llama};
use crate::knobs::{self, FlashAttn, Params};
use crate::protocol::{QualityJob, QualityMetrics};
use crate::quality::logprobs::{self, Comparison, Moments, Reference};
use llama::{Batch, Model};
use std::time::Instant;

pub fn measure(job: &QualityJob) -> Result<QualityMetrics, String> {
    let started = Instant::now();
    let mut params = Params::default()
        .with(knobs::N_CTX, job.n_ctx.into())
        .with(knobs::N_BATCH, job.n_ctx.into())
        .with(knobs::N_THREADS, job.n_threads.into())
        .with(knobs::TYPE_K, job.type_k.into())
        .with(knobs::TYPE_V, job.type_v.into());
    if let Some(n) = job.n_gpu_layers {
        params.set(knobs::N_GPU_LAYERS, n.into());
    }
    // llama.cpp needs flash attention for a quantized V cache.
    if job.type_v.is_quantized() {
        params.set(knobs::FLASH_ATTN, FlashAttn::On.into());
    }
    let params = params.overlaid(&job.forced);
    let settings = apply::settings(&params);
    let model = Model::load(&job.model.path, &settings.model).map_err(|e| {
        failure(
            &format!("cannot load model {}", job.model.path.display()),
            e,
        )
    })?;
    super::fault::after_load(&settings);
    let garbled = super::fault::garbles_logits(&settings);
    let mut ctx = load(&model, &settings)?;
    let text = std::fs::read(&job.text).map_err(|e| {
        format!(
            "cannot read the evaluation text {}: {e}",
            job.text.display()
        )
    })?;
    let vocab = model.vocab();
    // As llama.cpp's common_tokenize(ctx, text, add_special = true).
    let tokens: Vec<i32> = vocab.tokenize(&text, true)?;
    let n_ctx = job.n_ctx as usize;
    if tokens.len() < 2 * n_ctx {
        return Err(format!(
            "the evaluation text is {} tokens long; a context of {n_ctx} needs at least {}",
            tokens.len(),
            2 * n_ctx
        ));
    }
    let chunks = (tokens.len() / n_ctx).min(job.max_chunks as usize);
    let bos = vocab.bos_if_added();
    let n_vocab = vocab.n_tokens() as usize;
    let first = n_ctx / 2;
    let scored = logprobs::scored_per_chunk(job.n_ctx);

    let base = match &job.base {
        Some(path) => {
            let base = Reference::read(path)
                .map_err(|e| format!("cannot read the reference {}: {e}", path.display()))?;
            if base.n_vocab as usize != n_vocab || base.n_ctx != job.n_ctx {
                return Err(format!(
                    "the reference was measured with another vocabulary or context ({} tokens, n_ctx {}; this model: {n_vocab}, {})",
                    base.n_vocab, base.n_ctx, job.n_ctx
                ));
            }
            if base.tokens[..] != tokens[..base.tokens.len().min(tokens.len())] {
                return Err(
                    "this model tokenizes the evaluation text differently from the reference: \
                     quality can only be compared between variants of one model"
                        .into(),
                );
            }
            Some(base)
        }
        None => None,
    };
    let chunks = match &base {
        Some(b) => chunks.min(b.chunks as usize),
        None => chunks,
    };
    let slots = logprobs::slots(n_vocab);
    let mut saved = job
        .save_base
        .as_ref()
        .map(|_| vec![0u16; chunks * scored * slots]);
    let mut nll = Moments::default();
    let mut comparison = Comparison::default();
    let mut batch = Batch::new(n_ctx, 1);
    for chunk in 0..chunks {
        let start = chunk * n_ctx;
        ctx.clear_memory();
        batch.clear();
        for (pos, &token) in tokens[start..start + n_ctx].iter().enumerate() {
            let token = match (pos, bos) {
                (0, Some(bos)) => bos,
                _ => token,
            };
            batch.add(token, pos as i32, 0, pos >= first)?;
        }
        ctx.decode(&batch)
            .map_err(|code| failure("decode failed", format!("llama_decode returned {code}")))?;
        for i in 0..scored {
            let pos = first + i;
            let logits = ctx.logits(pos as i32, n_vocab);
            if garbled || !llama::finite(logits) {
                return Err(garbage(&format!(
                    "in chunk {} of the evaluation text",
                    chunk + 1
                )));
            }
            let next = tokens[start + pos + 1] as usize;
            let row = chunk * scored + i;
            if let Some(saved) = saved.as_mut() {
                let out = &mut saved[row * slots..(row + 1) * slots];
                nll.add(logprobs::store_reference(logits, out, next));
            } else if let Some(base) = &base {
                comparison.add(logits, &base.slots[row * slots..(row + 1) * slots], next);
            } else {
                nll.add(logprobs::nll(logits, next));
            }
        }
    }
    if let (Some(path), Some(slots)) = (&job.save_base, saved) {
        Reference {
            n_vocab: n_vocab as u32,
            n_ctx: job.n_ctx,
            chunks: chunks as u32,
            tokens: tokens[..chunks * n_ctx].to_vec(),
            slots,
        }
        .write(path)
        .map_err(|e| format!("cannot write the reference {}: {e}", path.display()))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(match base {
        Some(_) => {
            let (ppl, ppl_se) = comparison.perplexity();
            let (kld, kld_se) = comparison.kld();
            QualityMetrics {
                chunks: chunks as u32,
                tokens_scored: comparison.count(),
                ppl,
                ppl_se,
                kld_mean: Some(kld),
                kld_se: Some(kld_se),
                kld_p99: Some(comparison.kld_percentile(0.99)),
                kld_max: Some(comparison.kld_max()),
                top1_pct: Some(comparison.top1_pct()),
                base_ppl: Some(comparison.base_perplexity()),
                seconds,
            }
        }
        None => {
            let (ppl, ppl_se) = nll.perplexity();
            QualityMetrics {
                chunks: chunks as u32,
                tokens_scored: nll.count,
                ppl,
                ppl_se,
                kld_mean: None,
                kld_se: None,
                kld_p99: None,
                kld_max: None,
                top1_pct: None,
                base_ppl: None,
                seconds,
            }
        }
    })
}
