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
//! - depth (workload `n_depth`, llama-bench `-d`): pp and tg again with the
//!   cache first filled with that many tokens; the filled cache is saved
//!   once per depth and put back before each repetition, outside the
//!   timed part, as llama-bench keeps its depth. It is saved to a file, so
//!   that the child's peak RSS counts the cache once, as a server holds it.
//! - n_parallel sequences (llama-batched-bench's `-npl`, llama-server's
//!   slots): pp decodes every sequence's prompt, packed one after another
//!   in the same `n_batch` chunks (the rate counts all their tokens); tg
//!   decodes one token of each sequence per step (the rate is one
//!   sequence's).
//! - warmup: `warmup` unmeasured rounds of one full pp run, one tg token and
//!   one request, as llama-bench warms up its tests.
//! - request: the app's request in every sequence at once, on top of
//!   `request_history_tokens` of earlier conversation (filled once, put back
//!   each time) — `request_prompt_tokens` of prompt, then
//!   `request_max_tokens` tokens sampled with the app's sampler chain
//!   (end-of-text ignored so every repetition has the same shape), in the
//!   batches llama-server would make (`server_order`: a token of every
//!   generating request first, then waiting prompt tokens). Time to first
//!   token is a request's prompt processing plus its first token's
//!   sampling; the gap between two tokens is, per request, the time from
//!   one of its tokens to the next (a whole batch of other prompts'
//!   tokens included, as a server's client waits for it); a request's end
//!   to end is its last token. Each round's figures (time per output
//!   token, the request's generation speed, output throughput) are
//!   `crate::request`'s, as every runtime computes them.
//! - outputs: logits are asked for as llama-bench (the last token of each
//!   chunk of one prompt) and llama-batched-bench (each prompt's last token,
//!   with several sequences) ask for them.
//!
//! Every logit a test reads is checked: a kernel that returns NaN or Inf
//! fails the trial instead of passing for fast.

use super::llama::{self, Batch, Context, Model, Sampler, SavedState, Threadpool, Token};
use super::server_order::ServerOrder;
use super::tokens::{Run, TokenSource};
use super::{apply, fault, log_capture};
use crate::early_drop::Test;
use crate::knobs::{self, FlashAttn};
use crate::objective::{Metric, Speed};
use crate::protocol::{DepthSamples, ModelFacts, TrialMetrics, TrialSpec};
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
pub(crate) fn gpu_free_bytes() -> Option<u64> {
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
        .and_then(|v| v.parse::<u32>().ok());
    let n_params = model.n_params();
    ModelFacts {
        description: describe_model(&arch, n_params, ftype),
        n_params,
        size_bytes: model.size(),
        n_layer: model.n_layer(),
    }
}

/// llama.cpp's description of a model, `llama 135M Q4_1`: its architecture,
/// parameters and file type.
pub(crate) fn describe_model(arch: &str, n_params: u64, ftype: Option<u32>) -> String {
    let ftype = ftype
        .map(|f| {
            // SAFETY: llama_ftype_name returns a static string for any value.
            unsafe { llama::c_string(llama_cpp_sys_2::llama_ftype_name(f as _)) }
        })
        .unwrap_or_else(|| "?".into());
    let size = if n_params >= 1_000_000_000 {
        format!("{:.1}B", n_params as f64 / 1e9)
    } else {
        format!("{}M", n_params / 1_000_000)
    };
    format!("{arch} {size} {ftype}")
}

/// Loads `spec`'s model with the trial's settings.
pub(crate) fn load_model(spec: &TrialSpec, settings: &apply::Settings) -> Result<Model, String> {
    Model::load(&spec.model.path, &settings.model).map_err(|e| {
        failure(
            &format!("cannot load model {}", spec.model.path.display()),
            e,
        )
    })
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
    let model = load_model(spec, &settings)?;
    let load_ms = ms(started);
    fault::after_load(&settings);
    let facts = model_facts(&model);
    let mut ctx = load(&model, &settings)?;
    let (n_ctx_actual, n_batch_actual, n_ubatch_actual) =
        (ctx.n_ctx(), ctx.n_batch(), ctx.n_ubatch());
    let n_seq = settings.context.n_seq_max.max(1);
    check_room(&ctx, &params, &spec.workload, n_seq)?;
    let device_memory_used_bytes = gpu_free_before
        .and_then(|before| gpu_free_bytes().map(|after| before.saturating_sub(after)));

    let mut bench = Bench::new(
        &model,
        &mut ctx,
        spec.seed,
        fault::garbles_logits(&settings),
    );
    bench.sequences(n_seq);
    let w = &spec.workload;
    let mut samplers = bench.samplers(spec);
    // The follow-up request's earlier conversation, filled once.
    let history = bench.fill(Run::History, w.request_history_tokens)?;
    bench.warm_up(w, history.as_ref(), &mut samplers)?;
    // The tests in the schedule's order (the objective's first); the cache
    // is cleared (or put back at its depth) before each run, outside the
    // timed part, and the logits are checked after the clock stops, as
    // llama-bench times. After each run the schedule's drop rule may stop
    // the trial: it keeps the runs made.
    let planned = w.repetitions as usize;
    let mut quiet =
        super::quiet::QuietWatch::new(spec.schedule.quiet, vec![std::process::id()], w.repetitions);
    let mut runs = Runs::new(&w.n_depth);
    let mut depth_states: Vec<(u32, Option<SavedState>)> = Vec::new();
    let mut dropped = None;
    let tests = spec.schedule.tests(&w.n_depth);
    // A trial whose last run is made is measured: nothing left to save.
    let judged_after = |test: usize, rep: u32| test + 1 < tests.len() || rep + 1 < w.repetitions;
    'tests: for (t, &test) in tests.iter().enumerate() {
        match test {
            Test::Prompt(depth) | Test::Generation(depth) => {
                let state = match depth_states.iter().position(|(d, _)| *d == depth) {
                    Some(i) => i,
                    None => {
                        depth_states.push((depth, bench.fill(Run::Depth(depth), depth)?));
                        depth_states.len() - 1
                    }
                };
                let state = depth_states[state].1.as_ref();
                let generation = matches!(test, Test::Generation(_));
                if generation {
                    bench.warm_generation(w, depth, state)?;
                }
                for rep in 0..w.repetitions {
                    let what = format!("{} run {}", test.name(), rep + 1);
                    let (rate, busy) = quiet.run(&what, || {
                        if generation {
                            bench.generation_run(w, depth, state)
                        } else {
                            bench.prompt_run(w, depth, state, rep)
                        }
                    })?;
                    let samples = runs.of(test);
                    samples.push(rate);
                    let judged: Vec<(Metric, Vec<f64>)> = match (test, depth) {
                        (Test::Prompt(_), 0) => vec![(Metric::PpTps, samples.clone())],
                        (Test::Prompt(d), _) => {
                            vec![(Metric::AtDepth(Speed::Pp, d), samples.clone())]
                        }
                        (_, d) => {
                            let all: Vec<f64> = samples.iter().map(|v| v * n_seq as f64).collect();
                            let (one, aggregate) = if d == 0 {
                                (Metric::TgTps, Metric::AggregateTps)
                            } else {
                                (
                                    Metric::AtDepth(Speed::Tg, d),
                                    Metric::AtDepth(Speed::Aggregate, d),
                                )
                            };
                            vec![(one, samples.clone()), (aggregate, all)]
                        }
                    };
                    // A run the machine disturbed never drops a trial.
                    dropped = judged
                        .iter()
                        .filter(|_| judged_after(t, rep) && !busy)
                        .find_map(|(m, runs)| spec.schedule.why_drop(*m, runs, planned));
                    if dropped.is_some() {
                        break 'tests;
                    }
                }
            }
            Test::Request => {
                for rep in 0..w.repetitions {
                    let what = format!("request run {}", rep + 1);
                    let (timings, busy) = quiet.run(&what, || {
                        bench.reset_to(history.as_ref())?;
                        samplers.iter_mut().for_each(Sampler::reset);
                        bench.requests(Run::Request(rep), w, w.request_max_tokens, &mut samplers)
                    })?;
                    let figures = crate::request::round(&timings.requests);
                    runs.ttft_ms.extend(figures.ttft_ms);
                    runs.e2e_ms.extend(figures.e2e_ms);
                    runs.request_tps.extend(figures.request_tps);
                    runs.output_tps.extend(figures.output_tps);
                    runs.itl_ms.extend(timings.itl_ms);
                    let ttft =
                        crate::store::row::per_repetition_means(&runs.ttft_ms, n_seq as usize);
                    let tpot = crate::request::tpot_ms_of(&runs.request_tps);
                    dropped = [
                        (Metric::RequestTps, &runs.request_tps),
                        (Metric::TpotMs, &tpot),
                        (Metric::OutputTps, &runs.output_tps),
                        (Metric::TtftMs, &ttft),
                        (Metric::E2eMs, &runs.e2e_ms),
                    ]
                    .into_iter()
                    .filter(|_| judged_after(t, rep) && !busy)
                    .find_map(|(m, runs)| spec.schedule.why_drop(m, runs, planned));
                    if dropped.is_some() {
                        break 'tests;
                    }
                }
            }
        }
    }

    let (offloaded, flash_auto) = log_capture::with(|c| (c.offloaded, c.flash_attn_auto));
    let layers_total = offloaded.map_or(facts.n_layer + 1, |(_, total)| total);
    Ok(TrialMetrics {
        n_ctx_actual,
        n_batch_actual,
        n_ubatch_actual,
        load_ms,
        pp_tps: runs.pp_tps,
        tg_tps: runs.tg_tps,
        ttft_ms: runs.ttft_ms,
        e2e_ms: runs.e2e_ms,
        request_tps: runs.request_tps,
        output_tps: runs.output_tps,
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
        at_depth: runs
            .at_depth
            .into_iter()
            .filter(|d| !d.pp_tps.is_empty() || !d.tg_tps.is_empty())
            .collect(),
        itl_ms: runs.itl_ms,
        dropped,
        server: None,
        busy: quiet.record,
    })
}

/// Fails unless every sequence has room for the deepest test and the
/// request, and one batch holds a token of each sequence.
fn check_room(
    ctx: &Context,
    params: &knobs::Params,
    workload: &crate::protocol::Workload,
    n_seq: u32,
) -> Result<(), String> {
    let needed = workload.context_needed();
    let source = if params.is_set(knobs::N_CTX) {
        ""
    } else {
        " (llama.cpp's default)"
    };
    let (n_ctx, per_seq) = (ctx.n_ctx(), ctx.n_ctx_seq());
    if n_seq == 1 && n_ctx < needed {
        return Err(format!(
            "the context holds {n_ctx} tokens{source} but the workload needs {needed}: set n_ctx in [space]"
        ));
    }
    // A unified cache lets each sequence grow to n_ctx, but all of them
    // together still fit in n_ctx.
    if n_seq > 1 && (per_seq < needed || n_ctx < needed * n_seq) {
        return Err(format!(
            "the context holds {n_ctx} tokens{source}, {per_seq} per sequence, but {n_seq} \
             sequences of the workload need {needed} each ({} in all): raise n_ctx in [space] \
             to at least n_parallel x {needed}",
            needed * n_seq
        ));
    }
    if n_seq > ctx.n_batch() {
        return Err(format!(
            "n_parallel {n_seq} is more than n_batch {}: one decode step holds a token of each \
             sequence",
            ctx.n_batch()
        ));
    }
    Ok(())
}

/// The timings of one round of the app's requests, one per sequence,
/// arriving together.
pub(super) struct RequestTimings {
    /// Per request, from the round's start.
    pub requests: Vec<crate::request::RequestTiming>,
    /// Per request, between two of its tokens.
    pub itl_ms: Vec<f64>,
}

/// Where a test's logits are checked, for its error: `at the end of the
/// prompt test at depth 1024`.
fn at_the_end(what: &str, depth: u32) -> String {
    match depth {
        0 => format!("at the end of the {what} test"),
        d => format!("at the end of the {what} test at depth {d}"),
    }
}

/// The runs a trial made, test by test.
struct Runs {
    pp_tps: Vec<f64>,
    tg_tps: Vec<f64>,
    at_depth: Vec<DepthSamples>,
    ttft_ms: Vec<f64>,
    e2e_ms: Vec<f64>,
    request_tps: Vec<f64>,
    output_tps: Vec<f64>,
    itl_ms: Vec<f64>,
}

impl Runs {
    fn new(depths: &[u32]) -> Runs {
        Runs {
            pp_tps: Vec::new(),
            tg_tps: Vec::new(),
            at_depth: depths
                .iter()
                .filter(|d| **d > 0)
                .map(|&depth| DepthSamples {
                    depth,
                    pp_tps: Vec::new(),
                    tg_tps: Vec::new(),
                })
                .collect(),
            ttft_ms: Vec::new(),
            e2e_ms: Vec::new(),
            request_tps: Vec::new(),
            output_tps: Vec::new(),
            itl_ms: Vec::new(),
        }
    }

    /// The rates of a pp or tg test.
    fn of(&mut self, test: Test) -> &mut Vec<f64> {
        let at = |runs: &mut Runs, depth: u32| -> usize {
            runs.at_depth
                .iter()
                .position(|d| d.depth == depth)
                .expect("a test at a depth of the workload")
        };
        match test {
            Test::Prompt(0) => &mut self.pp_tps,
            Test::Generation(0) => &mut self.tg_tps,
            Test::Prompt(d) => {
                let i = at(self, d);
                &mut self.at_depth[i].pp_tps
            }
            Test::Generation(d) => {
                let i = at(self, d);
                &mut self.at_depth[i].tg_tps
            }
            Test::Request => unreachable!("a request's runs are timings, not rates"),
        }
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The decode loops, over one context, for one sequence or several
/// decoded together (as llama-batched-bench and llama-server's slots).
pub(crate) struct Bench<'m, 'c> {
    ctx: &'c mut Context<'m>,
    batch: Batch,
    n_batch: usize,
    /// Sequences decoded together.
    n_seq: u32,
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
            n_seq: 1,
            n_vocab: n_vocab as usize,
            tokens,
            garbled,
        }
    }

    /// One sampler chain per sequence, as the app samples (`spec`'s
    /// sampling, a seed per sequence).
    pub(super) fn samplers(&self, spec: &TrialSpec) -> Vec<Sampler> {
        (0..self.n_seq)
            .map(|j| {
                Sampler::chain(
                    self.n_vocab as i32,
                    &spec.sampling,
                    (spec.seed as u32).wrapping_add(j),
                )
            })
            .collect()
    }

    /// Decodes `n_seq` sequences together from now on.
    pub fn sequences(&mut self, n_seq: u32) {
        self.n_seq = n_seq.max(1);
        self.batch = Batch::new(self.n_batch.max(n_seq as usize), n_seq as usize);
    }

    /// Empties the KV cache by dropping every cell, without zeroing its
    /// memory: what llama-bench's `llama_memory_clear(mem, false)` does.
    pub fn clear(&mut self) {
        self.ctx.clear_memory();
    }

    /// `w.warmup` unmeasured rounds of one full pp run, one tg token and
    /// one short request (from `history`), as llama-bench warms up its tests.
    pub(super) fn warm_up(
        &mut self,
        w: &crate::protocol::Workload,
        history: Option<&SavedState>,
        samplers: &mut [Sampler],
    ) -> Result<(), String> {
        for i in 0..w.warmup {
            self.clear();
            self.prompts(Run::Warmup(i), w.prompt_tokens, 0)?;
            self.check_last("after the warmup prompt")?;
            self.clear();
            self.generate_random(1, 0)?;
            self.reset_to(history)?;
            self.requests(Run::Warmup(i), w, w.request_max_tokens.min(2), samplers)?;
        }
        Ok(())
    }

    /// Clears the cache and fills every sequence with `depth` tokens of
    /// `run`; the state to start each test from, `None` for depth 0.
    pub(super) fn fill(&mut self, run: Run, depth: u32) -> Result<Option<SavedState>, String> {
        if depth == 0 {
            return Ok(None);
        }
        self.clear();
        self.prompts(run, depth, 0)?;
        self.check_last("after filling the cache")?;
        self.ctx.save_state().map(Some)
    }

    /// Clears the cache and puts `state` back, when there is one.
    pub(super) fn reset_to(&mut self, state: Option<&SavedState>) -> Result<(), String> {
        self.clear();
        state.map_or(Ok(()), |s| self.ctx.restore_state(s))
    }

    /// One pp run from `state` (the cache filled to `depth`, or empty): its
    /// rate, all sequences' prompt tokens counted.
    pub(super) fn prompt_run(
        &mut self,
        w: &crate::protocol::Workload,
        depth: u32,
        state: Option<&SavedState>,
        rep: u32,
    ) -> Result<f64, String> {
        self.reset_to(state)?;
        let prompts = self.prompt_tokens(Run::Prompt(rep), w.prompt_tokens);
        let t = Instant::now();
        self.decode_prompts(&prompts, depth as i32, |_, _, _| {})?;
        let tokens = w.prompt_tokens as f64 * self.n_seq as f64;
        let rate = tokens / t.elapsed().as_secs_f64();
        self.check_last(&at_the_end("prompt", depth))?;
        Ok(rate)
    }

    /// llama-bench warms each test up on its own: a generation step first,
    /// untimed, so that the first timed step does not pay for switching
    /// from the prompt's graph to a single token's.
    pub(super) fn warm_generation(
        &mut self,
        w: &crate::protocol::Workload,
        depth: u32,
        state: Option<&SavedState>,
    ) -> Result<(), String> {
        if w.warmup > 0 {
            self.reset_to(state)?;
            self.generate_random(1, depth as i32)?;
        }
        Ok(())
    }

    /// One tg run of `gen_tokens` from `state`: one sequence's rate.
    pub(super) fn generation_run(
        &mut self,
        w: &crate::protocol::Workload,
        depth: u32,
        state: Option<&SavedState>,
    ) -> Result<f64, String> {
        self.reset_to(state)?;
        let t = Instant::now();
        self.generate_random(w.gen_tokens, depth as i32)?;
        let rate = w.gen_tokens as f64 / t.elapsed().as_secs_f64();
        self.check_last(&at_the_end("generation", depth))?;
        Ok(rate)
    }

    /// The prompt of each sequence for `run`.
    fn prompt_tokens(&self, run: Run, n: u32) -> Vec<Vec<Token>> {
        (0..self.n_seq)
            .map(|j| self.tokens.prompt_of(run, j, n as usize))
            .collect()
    }

    /// Decodes `run`'s prompt of `n` tokens in every sequence, from `start`.
    fn prompts(&mut self, run: Run, n: u32, start: i32) -> Result<(), String> {
        let prompts = self.prompt_tokens(run, n);
        self.decode_prompts(&prompts, start, |_, _, _| {})
    }

    /// Decodes `tokens` in n_batch chunks from position 0 (sequence 0).
    pub fn prompt(&mut self, tokens: &[Token]) -> Result<(), String> {
        self.decode_prompts(&[tokens.to_vec()], 0, |_, _, _| {})
    }

    /// Decodes each sequence's prompt from position `start`, all of them
    /// packed one after another in n_batch chunks (as llama-batched-bench
    /// and llama-server fill a batch); `done(ctx, seq, i)` runs as soon as
    /// sequence `seq`'s last token is decoded, with its output's index.
    fn decode_prompts(
        &mut self,
        prompts: &[Vec<Token>],
        start: i32,
        mut done: impl FnMut(&mut Context<'m>, usize, i32),
    ) -> Result<(), String> {
        let all: Vec<(usize, usize)> = prompts
            .iter()
            .enumerate()
            .flat_map(|(j, p)| (0..p.len()).map(move |i| (j, i)))
            .collect();
        for chunk in all.chunks(self.n_batch) {
            self.batch.clear();
            let mut finished = Vec::new();
            for (k, &(seq, i)) in chunk.iter().enumerate() {
                // One prompt: like llama-bench's llama_batch_get_one, the
                // last token of each chunk has output. Several: like
                // llama-batched-bench, each prompt's last token only.
                let last_of_prompt = i + 1 == prompts[seq].len();
                let output = last_of_prompt || (prompts.len() == 1 && k + 1 == chunk.len());
                self.batch
                    .add(prompts[seq][i], start + i as i32, seq as i32, output)?;
                if last_of_prompt {
                    finished.push((seq, k as i32));
                }
            }
            self.ctx.decode(&self.batch).map_err(|code| {
                failure(
                    "prompt decode failed",
                    format!("llama_decode returned {code}"),
                )
            })?;
            if !finished.is_empty() {
                self.ctx.synchronize();
            }
            for (seq, i) in finished {
                done(self.ctx, seq, i);
            }
        }
        self.ctx.synchronize();
        Ok(())
    }

    /// `n` decode steps of one random token in every sequence from position
    /// `start`, synchronizing after each (llama-bench's tg test; with
    /// several sequences, llama-batched-bench's).
    pub fn generate_random(&mut self, n: u32, start: i32) -> Result<(), String> {
        let mut tokens = vec![self.tokens.first_token(); self.n_seq as usize];
        for step in 0..n as i32 {
            self.decode_step(&tokens, start + step)?;
            tokens.iter_mut().for_each(|t| *t = self.tokens.random());
        }
        Ok(())
    }

    /// Like [`generate_random`](Self::generate_random) from position 0,
    /// checking every token's logits.
    pub fn generate_checked(&mut self, n: u32) -> Result<(), String> {
        let mut token = self.tokens.first_token();
        for pos in 0..n as i32 {
            self.decode_step(&[token], pos)?;
            self.check_last(&format!("after single-token decode {}", pos + 1))?;
            token = self.tokens.random();
        }
        Ok(())
    }

    /// One decode of `tokens[j]` at `pos` of sequence j, each with output.
    fn decode_step(&mut self, tokens: &[Token], pos: i32) -> Result<(), String> {
        self.batch.clear();
        for (seq, &token) in tokens.iter().enumerate() {
            self.batch.add(token, pos, seq as i32, true)?;
        }
        self.ctx.decode(&self.batch).map_err(|code| {
            failure(
                "generation decode failed",
                format!("llama_decode returned {code}"),
            )
        })?;
        self.ctx.synchronize();
        Ok(())
    }

    /// Fails when the last token's logits are not all finite numbers.
    pub fn check_last(&self, when: &str) -> Result<(), String> {
        self.check_output(self.batch.len() as i32 - 1, when)
    }

    /// Fails when the logits of the last batch's output `i` are not all
    /// finite numbers.
    fn check_output(&self, i: i32, when: &str) -> Result<(), String> {
        if !self.garbled && llama::finite(self.ctx.logits(i, self.n_vocab)) {
            Ok(())
        } else {
            Err(garbage(when))
        }
    }

    /// The app's request in every sequence at once, on top of whatever the
    /// cache holds (`w.request_history_tokens` of earlier conversation, or
    /// nothing), in llama-server's batches ([`ServerOrder`]): each
    /// request's first token sampled as soon as its prompt is done (its
    /// time to first token), each further one in the next batch, with the
    /// time since the request's previous token (its inter-token latency).
    pub(super) fn requests(
        &mut self,
        run: Run,
        w: &crate::protocol::Workload,
        max_tokens: u32,
        samplers: &mut [Sampler],
    ) -> Result<RequestTimings, String> {
        let prompts = self.prompt_tokens(run, w.request_prompt_tokens);
        let start = w.request_history_tokens as i32;
        let n_seq = self.n_seq as usize;
        let mut next = vec![0 as Token; n_seq];
        let mut ttft_ms = vec![0.0; n_seq];
        let mut previous = vec![0.0; n_seq];
        let mut tokens = vec![0u32; n_seq];
        // The position of each request's next generated token.
        let mut pos = vec![start + w.request_prompt_tokens as i32; n_seq];
        let mut itl_ms = Vec::new();
        let lens: Vec<usize> = prompts.iter().map(Vec::len).collect();
        let started = Instant::now();
        for step in ServerOrder::new(&lens, max_tokens, self.n_batch) {
            self.batch.clear();
            let mut outputs = Vec::new();
            for &seq in &step.generating {
                outputs.push((seq, self.batch.len() as i32, false));
                self.batch.add(next[seq], pos[seq], seq as i32, true)?;
                pos[seq] += 1;
            }
            for (seq, range) in &step.prompt {
                for i in range.clone() {
                    let last_of_prompt = i + 1 == lens[*seq];
                    if last_of_prompt {
                        outputs.push((*seq, self.batch.len() as i32, true));
                    }
                    self.batch.add(
                        prompts[*seq][i],
                        start + i as i32,
                        *seq as i32,
                        last_of_prompt,
                    )?;
                }
            }
            self.ctx.decode(&self.batch).map_err(|code| {
                failure(
                    "request decode failed",
                    format!("llama_decode returned {code}"),
                )
            })?;
            self.ctx.synchronize();
            for (seq, i, first) in outputs {
                if first {
                    self.check_output(i, "at the end of the request's prompt")?;
                }
                next[seq] = samplers[seq].sample(self.ctx, i);
                let now = ms(started);
                if first {
                    ttft_ms[seq] = now;
                } else {
                    itl_ms.push(now - previous[seq]);
                }
                previous[seq] = now;
                tokens[seq] += 1;
            }
        }
        Ok(RequestTimings {
            requests: (0..n_seq)
                .map(|j| crate::request::RequestTiming {
                    ttft_ms: ttft_ms[j],
                    last_token_ms: previous[j],
                    tokens: tokens[j],
                })
                .collect(),
            itl_ms,
        })
    }
}
