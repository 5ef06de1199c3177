//! Measures one trial with llama.cpp, the way llama-bench does, plus the
//! request shape of the user's app.
//!
//! - pp: `prompt_tokens` random tokens (the first is BOS when the model adds
//!   one) decoded in `n_batch` chunks after clearing the KV cache; rate =
//!   tokens / time, one sample per repetition.
//! - tg: `gen_tokens` single-token decodes from an empty cache, each
//!   synchronized, the next token random.
//! - warmup: `warmup` unmeasured rounds of one full pp run and one tg token,
//!   as llama-bench does.
//! - request: the app's request — `request_prompt_tokens` of prompt, then
//!   greedy generation of `request_max_tokens` tokens (argmax of the logits,
//!   end-of-text ignored so every repetition has the same shape). Time to
//!   first token is prompt processing plus the first token's selection;
//!   end-to-end is the whole request.

use super::log_capture;
use super::tokens::TokenSource;
use crate::protocol::{FlashAttn, KvType, ModelFacts, Params, TrialMetrics, TrialSpec};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{KvCacheType, LlamaContextParams};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::{LlamaBackendDeviceType, list_llama_ggml_backend_devices};
use std::num::NonZeroU32;
use std::time::Instant;

/// Why a trial could not be measured, with llama.cpp's own error lines.
pub(crate) fn failure(what: &str, error: impl std::fmt::Display) -> String {
    log_capture::failure_reason(what, &error.to_string())
}

pub fn model_params(params: &Params) -> LlamaModelParams {
    let mut mp = LlamaModelParams::default();
    if let Some(n) = params.n_gpu_layers {
        // A negative value means all layers; u32::MAX becomes i32::MAX.
        mp = mp.with_n_gpu_layers(u32::try_from(n).unwrap_or(u32::MAX));
    }
    if let Some(mmap) = params.use_mmap {
        mp = mp.with_use_mmap(mmap);
    }
    mp
}

pub fn kv_cache_type(t: KvType) -> KvCacheType {
    match t {
        KvType::F32 => KvCacheType::F32,
        KvType::F16 => KvCacheType::F16,
        KvType::Bf16 => KvCacheType::BF16,
        KvType::Q8_0 => KvCacheType::Q8_0,
        KvType::Q4_0 => KvCacheType::Q4_0,
        KvType::Q4_1 => KvCacheType::Q4_1,
        KvType::Iq4Nl => KvCacheType::IQ4_NL,
        KvType::Q5_0 => KvCacheType::Q5_0,
        KvType::Q5_1 => KvCacheType::Q5_1,
    }
}

pub fn flash_attn_type(f: FlashAttn) -> llama_cpp_sys_2::llama_flash_attn_type {
    match f {
        FlashAttn::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        FlashAttn::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        FlashAttn::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
    }
}

pub fn context_params(params: &Params) -> LlamaContextParams {
    let mut cp = LlamaContextParams::default();
    if let Some(n) = params.n_ctx {
        cp = cp.with_n_ctx(NonZeroU32::new(n));
    }
    if let Some(n) = params.n_batch {
        cp = cp.with_n_batch(n);
    }
    if let Some(n) = params.n_ubatch {
        cp = cp.with_n_ubatch(n);
    }
    if let Some(n) = params.n_threads {
        cp = cp.with_n_threads(n);
    }
    // n_threads_batch follows n_threads when unset (see Params::resolve).
    if let Some(n) = params.n_threads_batch.or(params.n_threads) {
        cp = cp.with_n_threads_batch(n);
    }
    if let Some(f) = params.flash_attn {
        cp = cp.with_flash_attention_policy(flash_attn_type(f));
    }
    if let Some(t) = params.type_k {
        cp = cp.with_type_k(kv_cache_type(t));
    }
    if let Some(t) = params.type_v {
        cp = cp.with_type_v(kv_cache_type(t));
    }
    if let Some(o) = params.offload_kqv {
        cp = cp.with_offload_kqv(o);
    }
    cp
}

/// Free memory summed over GPU devices, `None` when there is no GPU.
fn gpu_free_bytes() -> Option<u64> {
    let gpus: Vec<_> = list_llama_ggml_backend_devices()
        .into_iter()
        .filter(|d| {
            matches!(
                d.device_type,
                LlamaBackendDeviceType::Gpu | LlamaBackendDeviceType::IntegratedGpu
            )
        })
        .collect();
    (!gpus.is_empty()).then(|| gpus.iter().map(|d| d.memory_free as u64).sum())
}

fn model_facts(model: &LlamaModel) -> ModelFacts {
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_else(|_| "?".into());
    let ftype = model
        .meta_val_str("general.file_type")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .map(|f| {
            // SAFETY: llama_ftype_name returns a static string for any value.
            let name =
                unsafe { std::ffi::CStr::from_ptr(llama_cpp_sys_2::llama_ftype_name(f as _)) };
            name.to_string_lossy().into_owned()
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

/// Measures `spec`; the error is the reason the trial failed.
pub fn measure(backend: &LlamaBackend, spec: &TrialSpec) -> Result<TrialMetrics, String> {
    let gpu_free_before = gpu_free_bytes();
    let started = Instant::now();
    let model = LlamaModel::load_from_file(backend, &spec.model.path, &model_params(&spec.params))
        .map_err(|e| {
            failure(
                &format!("cannot load model {}", spec.model.path.display()),
                e,
            )
        })?;
    let load_ms = ms(started);
    let facts = model_facts(&model);

    let mut ctx = model
        .new_context(backend, context_params(&spec.params))
        .map_err(|e| failure("cannot create the context", e))?;
    let (n_ctx_actual, n_batch_actual, n_ubatch_actual) =
        (ctx.n_ctx(), ctx.n_batch(), ctx.n_ubatch());
    let needed = spec.workload.context_needed();
    if n_ctx_actual < needed {
        let source = if spec.params.n_ctx.is_none() {
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

    let mut bench = Bench::new(&model, &mut ctx, spec.seed);
    let w = &spec.workload;
    for _ in 0..w.warmup {
        bench.clear();
        bench.prompt(w.prompt_tokens)?;
        bench.clear();
        bench.generate_random(1)?;
    }
    // The cache is cleared before each run, outside the timed part, as
    // llama-bench does.
    let mut pp_tps = Vec::new();
    for _ in 0..w.repetitions {
        bench.clear();
        let t = Instant::now();
        bench.prompt(w.prompt_tokens)?;
        pp_tps.push(w.prompt_tokens as f64 / t.elapsed().as_secs_f64());
    }
    let mut tg_tps = Vec::new();
    for _ in 0..w.repetitions {
        bench.clear();
        let t = Instant::now();
        bench.generate_random(w.gen_tokens)?;
        tg_tps.push(w.gen_tokens as f64 / t.elapsed().as_secs_f64());
    }
    let (mut ttft_ms, mut e2e_ms) = (Vec::new(), Vec::new());
    for _ in 0..w.repetitions {
        bench.clear();
        let (ttft, e2e) = bench.request(w.request_prompt_tokens, w.request_max_tokens)?;
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
        flash_attn_resolved: match spec.params.flash_attn {
            Some(FlashAttn::On) => Some(true),
            Some(FlashAttn::Off) => Some(false),
            _ => flash_auto,
        },
        device_memory_used_bytes,
        model: facts,
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The decode loops, over one context.
struct Bench<'m, 'c> {
    ctx: &'c mut LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    tokens: TokenSource,
}

impl<'m, 'c> Bench<'m, 'c> {
    fn new(model: &'m LlamaModel, ctx: &'c mut LlamaContext<'m>, seed: u64) -> Self {
        let n_batch = ctx.n_batch().max(1) as usize;
        let vocab = model.vocab();
        let bos = vocab.should_add_bos().then(|| vocab.bos());
        let tokens = TokenSource::new(seed, vocab.n_tokens(), bos);
        Bench {
            ctx,
            batch: LlamaBatch::new(n_batch, 1),
            n_batch,
            tokens,
        }
    }

    /// Empties the KV cache by dropping every cell, without zeroing its
    /// memory: what llama-bench's `llama_memory_clear(mem, false)` does
    /// (llama-cpp-2's `clear_kv_cache` also wipes the buffers, which costs
    /// time and evicts the CPU caches before each timed run).
    fn clear(&mut self) {
        // Removing positions from all sequences cannot fail.
        let _ = self.ctx.clear_kv_cache_seq(None, None, None);
    }

    /// Decodes `n` prompt tokens in n_batch chunks from position 0.
    fn prompt(&mut self, n: u32) -> Result<(), String> {
        let n = n as usize;
        let mut done = 0;
        while done < n {
            let chunk = (n - done).min(self.n_batch);
            self.batch.clear();
            for i in 0..chunk {
                let pos = done + i;
                let token = self.tokens.prompt_token(pos);
                // Like llama-bench's llama_batch_get_one: the last token of
                // each chunk has output, so the prompt's last token has logits.
                let last = i + 1 == chunk;
                self.batch
                    .add(token, pos as i32, &[0], last)
                    .map_err(|e| format!("batch: {e}"))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| failure("prompt decode failed", e))?;
            done += chunk;
        }
        self.ctx.synchronize();
        Ok(())
    }

    /// Decodes `n` single random tokens from position 0, synchronizing after
    /// each (llama-bench's tg test).
    fn generate_random(&mut self, n: u32) -> Result<(), String> {
        let mut token = self.tokens.first_token();
        for pos in 0..n as i32 {
            self.decode_one(token, pos)?;
            token = self.tokens.random();
        }
        Ok(())
    }

    fn decode_one(&mut self, token: LlamaToken, pos: i32) -> Result<(), String> {
        self.batch.clear();
        self.batch
            .add(token, pos, &[0], true)
            .map_err(|e| format!("batch: {e}"))?;
        self.ctx
            .decode(&mut self.batch)
            .map_err(|e| failure("generation decode failed", e))?;
        self.ctx.synchronize();
        Ok(())
    }

    fn argmax_of_last(&self) -> LlamaToken {
        let logits = self.ctx.get_logits_ith(self.batch.n_tokens() - 1);
        let best = logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        LlamaToken(best as i32)
    }

    /// One request from an empty cache: (time to first token, end-to-end),
    /// in ms.
    fn request(&mut self, prompt_tokens: u32, max_tokens: u32) -> Result<(f64, f64), String> {
        let started = Instant::now();
        self.prompt(prompt_tokens)?;
        let mut token = self.argmax_of_last();
        let ttft = ms(started);
        for i in 1..max_tokens {
            self.decode_one(token, (prompt_tokens + i - 1) as i32)?;
            token = self.argmax_of_last();
        }
        Ok((ttft, ms(started)))
    }
}
