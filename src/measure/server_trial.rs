//! A trial measured through llama-server (`[sweep] runtime = "server"`):
//! the child starts the named binary with the trial's llama.cpp arguments
//! on a free loopback port, waits for `/health`, and acts as the app's
//! clients. Each repetition is a round of `n_parallel` streaming requests of
//! the app's shape (`request_prompt_tokens`, `request_max_tokens`) sent at
//! once, every prompt unique (random tokens, as llama-bench draws them, or
//! passages of the app's text, which speculative decoding needs), so
//! every figure comes from the app's request: time to first token and end
//! to end per request, generation speed on the client's clock, prompt speed
//! from the server's timings. The server's own figures go beside them (its
//! generation speed, the round's aggregate throughput, the tokens drafted
//! and accepted). The server's log becomes part of the trial's; the server
//! is stopped however the trial ends, and dies with the child if the parent
//! kills it.

use super::bench::describe_model;
use crate::export::llama_args::{LlamaArg, Trial, trial_args};
use crate::knobs::{self, EffectiveParams};
use crate::llama_log;
use crate::models::gguf::GgufHeader;
use crate::objective::Metric;
use crate::protocol::{
    ModelFacts, RequestBounds, ServerFigures, ServerTrial, TrialMetrics, TrialSpec,
};
use crate::runtime::clients::{self, Limits, Request, Round};
use crate::runtime::log_echo::LogEcho;
use crate::runtime::prompts;
use crate::runtime::server::Started;
use crate::store::row::per_repetition_means;
use std::path::Path;
use std::time::Duration;

/// How long loading may take; the parent's trial timeout bounds the whole.
const READY: Duration = Duration::from_secs(3600);
/// How long one answer may pause before the server counts as hung.
const STALL: Duration = Duration::from_secs(120);
/// Tokens each warm-up request generates: enough to run a draft model too
/// (llama-server warms only the target up).
const WARMUP_TOKENS: u32 = 8;

/// Measures `spec` through `server`; the error is the reason it failed.
pub fn measure(spec: &TrialSpec, server: &ServerTrial) -> Result<TrialMetrics, String> {
    let path = &spec.model.path;
    let header =
        GgufHeader::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let n_vocab = prompts::vocabulary_size(path).map_err(|e| format!("{e:#}"))?;
    let (params, defaulted) = spec
        .params
        .overlaid(&spec.forced)
        .resolve(&super::apply::defaults());
    let args = args_of(spec, &params, &defaulted)
        .into_iter()
        .flat_map(|arg| std::iter::once(arg.flag.to_string()).chain(arg.value));
    let n_clients = params.int(knobs::N_PARALLEL).max(1) as usize;
    let log = super::scratch_dir().join(format!("llama-server-{}.log", spec.trial_id));
    // The server's log is the trial's (the child's stderr is its log file),
    // copied as it is written: a trial killed for its timeout keeps it.
    let echo = LogEcho::start(&log, "llama-server| ");
    // Device memory as the in-process child counts it: free before the
    // server loads, less free once it is ready (its model and context).
    let gpu_free_before = super::bench::gpu_free_bytes();
    let mut running = Started::start(&server.binary, args, &log).map_err(|e| e.reason)?;
    let measured = rounds(
        spec,
        n_clients,
        &mut running,
        n_vocab,
        &log,
        gpu_free_before,
    );
    running.stop();
    echo.finish();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let mut m = measured?;
    if params.text(knobs::SPEC_TYPE) != knobs::SpecType::NONE
        && let Some(why) = llama_log::speculation_failure(&text)
    {
        return Err(format!("llama-server did not speculate: {why}"));
    }
    read_log_facts(&mut m, &header, path, &params, &text);
    Ok(m)
}

/// What a runtime's llama.cpp log says of a trial, into `m`: the model's
/// facts (from its header), the layers offloaded, the sizes llama.cpp used
/// (n_ctx 0 is the model's; n_batch clamped to n_ctx, n_ubatch to n_batch,
/// where the log does not say), flash attention as resolved, the weights'
/// buffers, and the device memory the weights take when nothing measured
/// it. Shared by the trials through llama-server and llama-cpp-python.
pub(super) fn read_log_facts(
    m: &mut TrialMetrics,
    header: &GgufHeader,
    path: &Path,
    params: &EffectiveParams,
    text: &str,
) {
    let n_params = header.parameter_count();
    m.model = ModelFacts {
        description: describe_model(
            header.architecture().unwrap_or("?"),
            n_params,
            header.file_type(),
        ),
        n_params,
        size_bytes: std::fs::metadata(path).map(|f| f.len()).unwrap_or(0),
        n_layer: header.block_count().unwrap_or(0),
    };
    let offloaded = llama_log::offloaded_layers(text);
    m.layers_offloaded = offloaded.map_or(0, |(n, _)| n);
    m.layers_total = offloaded.map_or(m.model.n_layer + 1, |(_, total)| total);
    // The sizes llama.cpp used, where the log says them (llama-server's
    // at a higher verbosity than its default); else what it does with the
    // settings.
    let size = |key: &str, asked: i64| {
        llama_log::context_size(text, key).unwrap_or(asked.clamp(0, i64::from(u32::MAX)) as u32)
    };
    m.n_ctx_actual = match size("n_ctx", params.int(knobs::N_CTX)) {
        0 => header.n_ctx_train().unwrap_or(0),
        n => n,
    };
    m.n_batch_actual = size("n_batch", params.int(knobs::N_BATCH)).min(m.n_ctx_actual);
    m.n_ubatch_actual = size("n_ubatch", params.int(knobs::N_UBATCH)).min(m.n_batch_actual);
    m.flash_attn_resolved = text.lines().find_map(llama_log::flash_attn_resolved);
    m.weights = llama_log::model_buffers(text);
    if m.device_memory_used_bytes.is_none() {
        // llama-sweep's own build sees no GPU, the runtime's does: its
        // log's weights on devices, a lower bound (the KV cache and compute
        // buffers come on top).
        let on_devices: f64 = m
            .weights
            .iter()
            .filter(|b| !b.name.starts_with("CPU"))
            .map(|b| b.mib)
            .sum();
        if on_devices > 0.0 {
            m.device_memory_used_bytes = Some((on_devices * 1024.0 * 1024.0) as u64);
        }
    }
}

/// The llama.cpp arguments `spec` starts llama-server with, its parameters
/// resolved against `defaults` into `params` (with the knobs `defaulted`):
/// its row's server-args export.
pub fn args_of(spec: &TrialSpec, params: &EffectiveParams, defaulted: &[&str]) -> Vec<LlamaArg> {
    trial_args(&Trial {
        model_path: &spec.model.path.display().to_string(),
        params,
        defaulted: &defaulted.join(";"),
        flash_attn_resolved: None,
    })
}

/// Waits for the server, warms it up, and sends the measured rounds.
fn rounds(
    spec: &TrialSpec,
    n: usize,
    running: &mut Started,
    n_vocab: u32,
    log: &Path,
    gpu_free_before: Option<u64>,
) -> Result<TrialMetrics, String> {
    running.wait_until_ready(READY, log).map_err(|e| e.reason)?;
    let load_ms = running.started.elapsed().as_secs_f64() * 1000.0;
    let device_memory_used_bytes = gpu_free_before.and_then(|before| {
        super::bench::gpu_free_bytes().map(|after| before.saturating_sub(after))
    });
    eprintln!(
        "llama-sweep: llama-server ready on port {} after {load_ms:.0} ms",
        running.port
    );
    let w = &spec.workload;
    let limits = Limits {
        timeout: READY,
        stall: STALL,
    };
    let count = (w.warmup + w.repetitions) as usize * n;
    let prompts = match prompts::text_of(&w.prompts).map_err(|e| format!("{e:#}"))? {
        None => prompts::random_prompts(spec.seed, n_vocab, count, w.request_prompt_tokens),
        Some(text) => {
            let tokens = clients::tokenize(running.port, &text, limits)?;
            prompts::passages(spec.seed, &tokens, count, w.request_prompt_tokens).ok_or_else(
                || {
                    format!(
                        "the prompts' text is {} tokens, fewer than one request's {}",
                        tokens.len(),
                        w.request_prompt_tokens
                    )
                },
            )?
        }
    };
    let round_of = |k: usize, max_tokens: u32| -> Vec<Request> {
        (0..n)
            .map(|j| Request {
                prompt: prompts[k * n + j].clone(),
                max_tokens,
                temperature: f64::from(spec.sampling.temperature),
                seed: spec.seed.wrapping_add((k * n + j) as u64),
                cache_prompt: false,
            })
            .collect()
    };
    let send = |running: &mut Started, requests: &[Request]| {
        clients::round(running.port, requests, limits).map_err(|why| match running.exited() {
            Some(status) => format!("{why} (llama-server exited: {status})"),
            None => why,
        })
    };
    for k in 0..w.warmup as usize {
        eprintln!("llama-sweep: warm-up round {} of {n} request(s)", k + 1);
        send(
            running,
            &round_of(k, w.request_max_tokens.min(WARMUP_TOKENS)),
        )?;
    }
    let mut runs = Runs::default();
    let bounds = spec.server.as_ref().map(|s| s.bounds).unwrap_or_default();
    let planned = w.repetitions as usize;
    let mut dropped = None;
    let mut quiet = super::quiet::QuietWatch::new(
        spec.schedule.quiet,
        vec![std::process::id(), running.pid()],
        w.repetitions,
    );
    for rep in 0..planned {
        if crate::interrupt::requested() {
            return Err("interrupted".into());
        }
        eprintln!("llama-sweep: measured round {} of {n} request(s)", rep + 1);
        let (round, busy) = quiet.run(&format!("request round {}", rep + 1), || {
            send(
                running,
                &round_of(w.warmup as usize + rep, w.request_max_tokens),
            )
        })?;
        runs.add(&round, &bounds);
        // As the in-process child: the last run is never judged, nor one
        // the machine disturbed.
        if rep + 1 < planned && !busy {
            dropped = runs
                .judged(n)
                .iter()
                .find_map(|(metric, values)| spec.schedule.why_drop(*metric, values, planned));
            if dropped.is_some() {
                break;
            }
        }
    }
    Ok(TrialMetrics {
        model: ModelFacts {
            description: String::new(),
            n_params: 0,
            size_bytes: 0,
            n_layer: 0,
        },
        n_ctx_actual: 0,
        n_batch_actual: 0,
        n_ubatch_actual: 0,
        load_ms,
        pp_tps: runs.pp_tps,
        tg_tps: runs.tg_tps,
        ttft_ms: runs.ttft_ms,
        e2e_ms: runs.e2e_ms,
        request_tps: runs.request_tps,
        output_tps: runs.output_tps,
        layers_offloaded: 0,
        layers_total: 0,
        flash_attn_resolved: None,
        device_memory_used_bytes,
        weights: Vec::new(),
        overridden: Vec::new(),
        at_depth: Vec::new(),
        itl_ms: runs.itl_ms,
        dropped,
        server: Some(Box::new(runs.server)),
        busy: quiet.record,
    })
}

/// The figures of the rounds so far, as the in-process child keeps them:
/// one value per round (its requests' mean), but time to first token, one
/// per request, and the gaps between tokens, every one.
#[derive(Debug, Default)]
struct Runs {
    pp_tps: Vec<f64>,
    tg_tps: Vec<f64>,
    ttft_ms: Vec<f64>,
    e2e_ms: Vec<f64>,
    request_tps: Vec<f64>,
    output_tps: Vec<f64>,
    itl_ms: Vec<f64>,
    server: ServerFigures,
}

/// The round's prompt processing as the in-process child measures it: all
/// of its requests' prompt tokens over the time the longest of them took
/// (the server processes them together, so each request's own rate is a
/// share of the whole).
fn prompt_throughput(replies: &[clients::Reply]) -> Option<f64> {
    let mut tokens = 0.0;
    let mut longest_s: f64 = 0.0;
    for r in replies {
        let (Some(n), Some(rate)) = (r.server.prompt_n, r.server.prompt_per_second) else {
            continue;
        };
        if rate > 0.0 {
            tokens += f64::from(n);
            longest_s = longest_s.max(f64::from(n) / rate);
        }
    }
    (longest_s > 0.0).then(|| tokens / longest_s)
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

impl Runs {
    fn add(&mut self, round: &Round, bounds: &RequestBounds) {
        let replies = &round.replies;
        let timings: Vec<_> = replies.iter().map(|r| r.timing()).collect();
        let figures = crate::request::round(&timings);
        self.pp_tps.extend(prompt_throughput(replies));
        self.tg_tps
            .extend(mean(replies.iter().filter_map(|r| r.gen_tps())));
        self.ttft_ms.extend(figures.ttft_ms);
        self.e2e_ms.extend(figures.e2e_ms);
        self.request_tps.extend(figures.request_tps);
        self.output_tps.extend(figures.output_tps);
        self.itl_ms
            .extend(replies.iter().flat_map(|r| r.itl_ms.iter().copied()));
        let s = &mut self.server;
        s.predicted_tps
            .extend(replies.iter().filter_map(|r| r.server.predicted_per_second));
        s.aggregate_tps.extend(round.aggregate_tps());
        s.goodput_rps.push(round.goodput_within(bounds));
        for r in replies {
            s.drafted += u64::from(r.server.draft_n.unwrap_or(0));
            s.accepted += u64::from(r.server.draft_n_accepted.unwrap_or(0));
        }
    }

    /// Each quantity a drop rule may hold the trial to, with its values so
    /// far (`n` requests per round).
    fn judged(&self, n: usize) -> Vec<(Metric, Vec<f64>)> {
        vec![
            (Metric::RequestTps, self.request_tps.clone()),
            (
                Metric::TpotMs,
                crate::request::tpot_ms_of(&self.request_tps),
            ),
            (Metric::OutputTps, self.output_tps.clone()),
            (Metric::TtftMs, per_repetition_means(&self.ttft_ms, n)),
            (Metric::E2eMs, self.e2e_ms.clone()),
            (Metric::TgTps, self.tg_tps.clone()),
            (Metric::AggregateTps, self.server.aggregate_tps.clone()),
            (Metric::PpTps, self.pp_tps.clone()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::clients::{Reply, ServerTimings};

    /// A reply of three tokens, the first `ttft` ms after it was sent, 10
    /// ms apart.
    fn reply(first: std::time::Instant, ttft: f64, drafted: (u32, u32)) -> Reply {
        Reply {
            ttft_ms: ttft,
            e2e_ms: ttft + 20.0,
            itl_ms: vec![10.0, 10.0],
            token_events: 3,
            first_token: Some(first),
            last_token: Some(first + std::time::Duration::from_millis(20)),
            server: ServerTimings {
                prompt_n: Some(8),
                prompt_per_second: Some(400.0),
                predicted_n: Some(3),
                predicted_per_second: Some(90.0),
                draft_n: Some(drafted.0),
                draft_n_accepted: Some(drafted.1),
            },
        }
    }

    #[test]
    fn a_round_of_two_clients_gives_one_value_per_round_but_every_ttft() {
        let mut runs = Runs::default();
        let at = std::time::Instant::now();
        let round = Round {
            replies: vec![reply(at, 100.0, (4, 2)), reply(at, 200.0, (4, 3))],
            wall_ms: 500.0,
        };
        // The first request meets a 150 ms bound on its first token, the
        // second does not; without bounds both count.
        let bounds = RequestBounds {
            ttft_ms: Some(150.0),
            ..Default::default()
        };
        runs.add(&round, &bounds);
        runs.add(&round, &RequestBounds::default());
        assert_eq!(runs.server.goodput_rps, [2.0, 4.0], "requests per second");
        assert_eq!(runs.ttft_ms, [100.0, 200.0, 100.0, 200.0]);
        // Each request's end to end, its last token: the mean of 120 and 220.
        assert_eq!(runs.e2e_ms, [170.0, 170.0]);
        // Two tokens after the first in 20 ms.
        assert_eq!(runs.tg_tps, [100.0, 100.0]);
        assert_eq!(runs.request_tps, [100.0, 100.0]);
        // Six tokens by the last one at 220 ms.
        assert_eq!(runs.output_tps, [6.0 / 0.22, 6.0 / 0.22]);
        // Issue 36, item 8: two prompts of 8 tokens at 400 t/s each, side by
        // side: 800 t/s for the round, as the in-process child counts all
        // of its sequences' prompts.
        assert_eq!(runs.pp_tps, [800.0, 800.0]);
        // Two tokens after the first of each of two requests in 20 ms.
        assert_eq!(runs.server.aggregate_tps, [200.0, 200.0]);
        assert_eq!(runs.server.acceptance(), Some(10.0 / 16.0));
        let judged = runs.judged(2);
        assert!(judged.contains(&(Metric::TtftMs, vec![150.0, 150.0])));
        assert!(judged.contains(&(Metric::RequestTps, vec![100.0, 100.0])));
    }
}
