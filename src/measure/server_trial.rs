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
    let mut running = Started::start(&server.binary, args, &log).map_err(|e| e.reason)?;
    let measured = rounds(spec, n_clients, &mut running, n_vocab, &log);
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
    let offloaded = llama_log::offloaded_layers(&text);
    m.layers_offloaded = offloaded.map_or(0, |(n, _)| n);
    m.layers_total = offloaded.map_or(m.model.n_layer + 1, |(_, total)| total);
    // The sizes llama.cpp used, where the server's log says them (at a
    // higher verbosity than its default); else what it does with the
    // flags: n_ctx 0 is the model's, n_batch is clamped to n_ctx and
    // n_ubatch to n_batch.
    let size = |key: &str, asked: i64| {
        llama_log::context_size(&text, key).unwrap_or(asked.clamp(0, i64::from(u32::MAX)) as u32)
    };
    m.n_ctx_actual = match size("n_ctx", params.int(knobs::N_CTX)) {
        0 => header.n_ctx_train().unwrap_or(0),
        n => n,
    };
    m.n_batch_actual = size("n_batch", params.int(knobs::N_BATCH)).min(m.n_ctx_actual);
    m.n_ubatch_actual = size("n_ubatch", params.int(knobs::N_UBATCH)).min(m.n_batch_actual);
    m.flash_attn_resolved = text.lines().find_map(llama_log::flash_attn_resolved);
    m.weights = llama_log::model_buffers(&text);
    Ok(m)
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
) -> Result<TrialMetrics, String> {
    running.wait_until_ready(READY, log).map_err(|e| e.reason)?;
    let load_ms = running.started.elapsed().as_secs_f64() * 1000.0;
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
    for rep in 0..planned {
        if crate::interrupt::requested() {
            return Err("interrupted".into());
        }
        eprintln!("llama-sweep: measured round {} of {n} request(s)", rep + 1);
        let round = send(
            running,
            &round_of(w.warmup as usize + rep, w.request_max_tokens),
        )?;
        runs.add(&round, &bounds);
        // As the in-process child: the last run is never judged.
        if rep + 1 < planned {
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
        layers_offloaded: 0,
        layers_total: 0,
        flash_attn_resolved: None,
        device_memory_used_bytes: None,
        weights: Vec::new(),
        overridden: Vec::new(),
        at_depth: Vec::new(),
        itl_ms: runs.itl_ms,
        dropped,
        server: Some(Box::new(runs.server)),
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
    itl_ms: Vec<f64>,
    server: ServerFigures,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

impl Runs {
    fn add(&mut self, round: &Round, bounds: &RequestBounds) {
        let replies = &round.replies;
        self.pp_tps.extend(mean(
            replies.iter().filter_map(|r| r.server.prompt_per_second),
        ));
        self.tg_tps
            .extend(mean(replies.iter().filter_map(|r| r.gen_tps())));
        self.ttft_ms.extend(replies.iter().map(|r| r.ttft_ms));
        self.e2e_ms.extend(mean(replies.iter().map(|r| r.e2e_ms)));
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

    fn reply(first: std::time::Instant, ttft: f64, e2e: f64, drafted: (u32, u32)) -> Reply {
        Reply {
            ttft_ms: ttft,
            e2e_ms: e2e,
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
            replies: vec![
                reply(at, 100.0, 300.0, (4, 2)),
                reply(at, 200.0, 500.0, (4, 3)),
            ],
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
        assert_eq!(runs.e2e_ms, [400.0, 400.0]);
        // Two tokens after the first in 20 ms.
        assert_eq!(runs.tg_tps, [100.0, 100.0]);
        assert_eq!(runs.pp_tps, [400.0, 400.0]);
        // Two tokens after the first of each of two requests in 20 ms.
        assert_eq!(runs.server.aggregate_tps, [200.0, 200.0]);
        assert_eq!(runs.server.acceptance(), Some(10.0 / 16.0));
        let judged = runs.judged(2);
        assert_eq!(judged[0], (Metric::TtftMs, vec![150.0, 150.0]));
    }
}
