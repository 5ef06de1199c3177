//! Measures one trial with llama.cpp, the way llama-bench does, plus the
//! request shape of the user's app.
//!
//! - A ggml threadpool with the trial's threads is attached before the
//!   warmup, as llama-bench attaches one (a second one when prompts use
//!   another thread count).
//! - pp: `prompt_tokens` random tokens (the first is BOS when the model adds
//!   one), new ones every repetition, decoded in `n_batch` chunks after
//!   clearing the KV cache; rate = tokens / time, one sample per repetition.
//! - tg: `gen_tokens` single-token decodes from an empty cache, each
//!   synchronized, the next token random.
//! - warmup: `warmup` unmeasured rounds of one full pp run, one tg token and
//!   one request, as llama-bench warms up its tests.
//! - request: the app's request — `request_prompt_tokens` of prompt, then
//!   `request_max_tokens` tokens sampled with the app's sampler chain
//!   (end-of-text ignored so every repetition has the same shape). Time to
//!   first token is prompt processing plus the first token's sampling;
//!   end-to-end is the whole request.
//!
//! Every logit a test reads is checked: a kernel that returns NaN or Inf
//! fails the trial instead of passing for fast.

use super::llama::{self, Batch, Context, Model, Sampler, Threadpool, Token};
use super::tokens::{Run, TokenSource};
use super::{apply, fault, log_capture};
use crate::knobs::{self, FlashAttn};
use crate::protocol::{ModelFacts, TrialMetrics, TrialSpec};
use std::time::Instant;

/// Why a trial could not be measured, with llama.cpp's own error lines.
pub(crate) fn failure(what: &str, error: impl std::fmt::Display) -> String {
    log_capture::failure_reason(what, &error.to_string())
}

/// The reason of a trial whose logits are not numbers.
pub(crate) fn garbage(when: &str) -> String {
    format!(
        "llama.cpp returned {} {when}: its kernels compute garbage with these settings on this \
         machine",
        crate::protocol::GARBAGE
    )
}

/// Free memory summed over GPU devices, `None` when there is no GPU.
fn gpu_free_bytes() -> Option<u64> {
    let gpus: Vec<llama::Device> = llama::devices()
        .into_iter()
        .filter(|d| d.kind.is_gpu())
        .collect();
    (!gpus.is_empty()).then(|| gpus.iter().map(|d| d.memory_free).sum())
}

pub(crate) fn model_facts(model: &Model) -> ModelFacts {
    let arch = model
        .meta("general.architecture")
        .unwrap_or_else(|| "?".into());
    let ftype = model
        .meta("general.file_type")
        .and_then(|v| v.parse::<u32>().ok())
        .map(|f| {
            // SAFETY: llama_ftype_name returns a static string for any value.
            unsafe { llama::c_string(llama_cpp_sys_2::llama_ftype_name(f as _)) }
        })
        .unwrap_or_else(|| "?".into());
    let n_params = model.n_params();
    let size = if n_params >= 1_000_000_000 {
        format!("{:.1}B", n_params as f64 / 1e9)
    } else {
        format!("{}M", n_params / 1_000_000)
    };
    ModelFacts {
        description: format!("{arch} {size} {ftype}"),
        n_params,
        size_bytes: model.size(),
        n_layer: model.n_layer(),
    }
}

/// Loads `spec`'s model and creates its context with the trial's settings
/// and threadpools.
pub(crate) fn load<'m>(
    model: &'m Model,
    settings: &apply::Settings,
) -> Result<Context<'m>, String> {
    let mut ctx = Context::new(model, settings.context)
        .map_err(|e| failure("cannot create the context", e))?;
    let (n_threads, n_threads_batch) =
        (settings.context.n_threads, settings.context.n_threads_batch);
    let pool = Threadpool::new(&mut settings.threads.pool_params(n_threads))?;
    let batch_pool = if n_threads_batch == n_threads {
        None
    } else {
        Some(Threadpool::new(
            &mut settings.threads.pool_params(n_threads_batch),
        )?)
    };
    ctx.attach_threadpools(pool, batch_pool);
    Ok(ctx)
}

/// How many of `placed` went to each buffer type, in first-seen order.
fn count_by_buffer(placed: &[(String, String)]) -> Vec<(String, u32)> {
    let mut counts: Vec<(String, u32)> = Vec::new();
    for (_, buft) in placed {
        match counts.iter_mut().find(|(b, _)| b == buft) {
            Some((_, n)) => *n += 1,
            None => counts.push((buft.clone(), 1)),
        }
    }
    counts
}

/// Measures `spec`; the error is the reason the trial failed.
pub fn measure(spec: &TrialSpec) -> Result<TrialMetrics, String> {
    let gpu_free_before = gpu_free_bytes();
    let params = spec.params.overlaid(&spec.forced);
    let settings = apply::settings(&params);
    let started = Instant::now();
    let model = Model::load(&spec.model.path, &settings.model).map_err(|e| {
        failure(
            &format!("cannot load model {}", spec.model.path.display()),
            e,
        )
    })?;
    let load_ms = ms(started);
    fault::after_load(&settings);
    let facts = model_facts(&model);
    let mut ctx = load(&model, &settings)?;
    let (n_ctx_actual, n_batch_actual, n_ubatch_actual) =
        (ctx.n_ctx(), ctx.n_batch(), ctx.n_ubatch());
    let needed = spec.workload.context_needed();
    if n_ctx_actual < needed {
        let source = if !params.is_set(knobs::N_CTX) {
            " (llama.cpp's default)"
        } else {
            ""
        };
        return Err(format!(
            "the context holds {n_ctx_actual} tokens{source} but the workload needs {needed}: set n_ctx in [space]"
        ));
    }
    let device_memory_used_bytes = gpu_free_before
        .and_then(|before| gpu_free_bytes().map(|after| before.saturating_sub(after)));

    let mut bench = Bench::new(
        &model,
        &mut ctx,
        spec.seed,
        fault::garbles_logits(&settings),
    );
    let w = &spec.workload;
    let mut sampler = Sampler::chain(bench.n_vocab as i32, &spec.sampling, spec.seed as u32);
    for i in 0..w.warmup {
        bench.clear();
        bench.prompt(
            &bench
                .tokens
                .prompt(Run::Warmup(i), w.prompt_tokens as usize),
        )?;
        bench.check_last("after the warmup prompt")?;
        bench.clear();
        bench.generate_random(1)?;
        bench.clear();
        let prompt = bench
            .tokens
            .prompt(Run::Warmup(i), w.request_prompt_tokens as usize);
        bench.request(&prompt, w.request_max_tokens.min(2), &mut sampler)?;
    }
    // The cache is cleared before each run, outside the timed part, and
    // the logits are checked after the clock stops, as llama-bench times.
    let mut pp_tps = Vec::new();
    for rep in 0..w.repetitions {
        let prompt = bench
            .tokens
            .prompt(Run::Prompt(rep), w.prompt_tokens as usize);
        bench.clear();
        let t = Instant::now();
        bench.prompt(&prompt)?;
        pp_tps.push(w.prompt_tokens as f64 / t.elapsed().as_secs_f64());
        bench.check_last("at the end of the prompt test")?;
    }
    let mut tg_tps = Vec::new();
    for _ in 0..w.repetitions {
        bench.clear();
        let t = Instant::now();
        bench.generate_random(w.gen_tokens)?;
        tg_tps.push(w.gen_tokens as f64 / t.elapsed().as_secs_f64());
        bench.check_last("at the end of the generation test")?;
    }
    let (mut ttft_ms, mut e2e_ms) = (Vec::new(), Vec::new());
    for rep in 0..w.repetitions {
        let prompt = bench
            .tokens
            .prompt(Run::Request(rep), w.request_prompt_tokens as usize);
        bench.clear();
        sampler.reset();
        let (ttft, e2e) = bench.request(&prompt, w.request_max_tokens, &mut sampler)?;
        ttft_ms.push(ttft);
        e2e_ms.push(e2e);
    }

    let (offloaded, flash_auto) = log_capture::with(|c| (c.offloaded, c.flash_attn_auto));
    let layers_total = offloaded.map_or(facts.n_layer + 1, |(_, total)| total);
    Ok(TrialMetrics {
        n_ctx_actual,
        n_batch_actual,
        n_ubatch_actual,
        load_ms,
        pp_tps,
        tg_tps,
        ttft_ms,
        e2e_ms,
        layers_offloaded: offloaded.map_or(0, |(n, _)| n),
        layers_total,
        flash_attn_resolved: match params.flash_attn() {
            Some(FlashAttn::On) => Some(true),
            Some(FlashAttn::Off) => Some(false),
            _ => flash_auto,
        },
        device_memory_used_bytes,
        weights: log_capture::with(|c| c.model_buffers.clone()),
        overridden: log_capture::with(|c| count_by_buffer(&c.overridden)),
        model: facts,
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The decode loops, over one context.
pub(crate) struct Bench<'m, 'c> {
    ctx: &'c mut Context<'m>,
    batch: Batch,
    n_batch: usize,
    pub n_vocab: usize,
    pub tokens: TokenSource,
    /// The logits are to read as NaN (a test fault).
    garbled: bool,
}

impl<'m, 'c> Bench<'m, 'c> {
    pub fn new(model: &'m Model, ctx: &'c mut Context<'m>, seed: u64, garbled: bool) -> Self {
        let n_batch = ctx.n_batch().max(1) as usize;
        let vocab = model.vocab();
        let n_vocab = vocab.n_tokens().max(1);
        let tokens = TokenSource::new(seed, n_vocab, vocab.bos_if_added());
        Bench {
            ctx,
            batch: Batch::new(n_batch, 1),
            n_batch,
            n_vocab: n_vocab as usize,
            tokens,
            garbled,
        }
    }

    /// Empties the KV cache by dropping every cell, without zeroing its
    /// memory: what llama-bench's `llama_memory_clear(mem, false)` does.
    pub fn clear(&mut self) {
        self.ctx.clear_memory();
    }

    /// Decodes `tokens` in n_batch chunks from position 0.
    pub fn prompt(&mut self, tokens: &[Token]) -> Result<(), String> {
        let mut done = 0;
        while done < tokens.len() {
            let chunk = (tokens.len() - done).min(self.n_batch);
            self.batch.clear();
            for (i, &token) in tokens[done..done + chunk].iter().enumerate() {
                // Like llama-bench's llama_batch_get_one: the last token of
                // each chunk has output, so the prompt's last token has logits.
                let last = i + 1 == chunk;
                self.batch.add(token, (done + i) as i32, 0, last)?;
            }
            self.ctx.decode(&self.batch).map_err(|code| {
                failure(
                    "prompt decode failed",
                    format!("llama_decode returned {code}"),
                )
            })?;
            done += chunk;
        }
        self.ctx.synchronize();
        Ok(())
    }

    /// Decodes `n` single random tokens from position 0, synchronizing after
    /// each (llama-bench's tg test).
    pub fn generate_random(&mut self, n: u32) -> Result<(), String> {
        let mut token = self.tokens.first_token();
        for pos in 0..n as i32 {
            self.decode_one(token, pos)?;
            token = self.tokens.random();
        }
        Ok(())
    }

    /// Like [`generate_random`](Self::generate_random), checking every
    /// token's logits.
    pub fn generate_checked(&mut self, n: u32) -> Result<(), String> {
        let mut token = self.tokens.first_token();
        for pos in 0..n as i32 {
            self.decode_one(token, pos)?;
            self.check_last(&format!("after single-token decode {}", pos + 1))?;
            token = self.tokens.random();
        }
        Ok(())
    }

    fn decode_one(&mut self, token: Token, pos: i32) -> Result<(), String> {
        self.batch.clear();
        self.batch.add(token, pos, 0, true)?;
        self.ctx.decode(&self.batch).map_err(|code| {
            failure(
                "generation decode failed",
                format!("llama_decode returned {code}"),
            )
        })?;
        self.ctx.synchronize();
        Ok(())
    }

    /// The logits of the last batch's last token.
    pub fn last_logits(&self) -> &[f32] {
        self.ctx.logits(self.batch.len() as i32 - 1, self.n_vocab)
    }

    /// Fails when the last token's logits are not all finite numbers.
    pub fn check_last(&self, when: &str) -> Result<(), String> {
        if !self.garbled && llama::finite(self.last_logits()) {
            Ok(())
        } else {
            Err(garbage(when))
        }
    }

    /// One request from an empty cache: (time to first token, end-to-end),
    /// in ms.
    fn request(
        &mut self,
        prompt: &[Token],
        max_tokens: u32,
        sampler: &mut Sampler,
    ) -> Result<(f64, f64), String> {
        let started = Instant::now();
        self.prompt(prompt)?;
        self.check_last("at the end of the request's prompt")?;
        let last = self.batch.len() as i32 - 1;
        let mut token = sampler.sample(self.ctx, last);
        let ttft = ms(started);
        for i in 1..max_tokens {
            self.decode_one(token, (prompt.len() as u32 + i - 1) as i32)?;
            token = sampler.sample(self.ctx, 0);
        }
        Ok((ttft, ms(started)))
    }
}
