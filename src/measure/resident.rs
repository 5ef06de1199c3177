//! A resident subject of the confirmation: the trial is loaded and warmed up
//! once, exactly as `bench::measure` does, then measured one block at a
//! time, on command, until told to stop. A block is one run of the
//! objective's test: one round of the app's requests (every sequence's), or
//! one pp or tg run at its depth. The parent alternates such blocks between
//! several resident subjects, so that two subjects' blocks are seconds
//! apart and share the machine's moment (`crate::confirm::blocks`).
//!
//! Each block's figures are the ones its test gives (`crate::request` for a
//! request), and where the block has per-token timings a robust estimate
//! beside the mean: the request's speed from the median time between its
//! tokens, which one preempted token barely moves.
//!
//! A trial in the app's llama-cpp-python (`[sweep] runtime = "python"`) is
//! kept resident in its interpreter instead (`python_trial::serve`, which
//! shares this module's replies and request blocks).

use super::apply;
use super::bench::{Bench, load, load_model};
use super::llama::Sampler;
use super::tokens::Run;
use crate::early_drop::Test;
use crate::objective::{Metric, Speed};
use crate::protocol::{BlockFigures, ChildReply, RESIDENT_MEASURE, ResidentJob};
use std::io::{BufRead, Write};
use std::time::Instant;

/// Loads `job`'s trial, replies Ready, and answers each command read from
/// `commands` with one reply line on `out` until the stop command or the end
/// of the input. The error is why the subject could not be loaded or a
/// block not measured (the child then replies Failed and exits).
pub fn serve(
    job: &ResidentJob,
    commands: &mut impl BufRead,
    out: &mut impl Write,
) -> Result<(), String> {
    let spec = &job.spec;
    let test = Test::of(job.metric)
        .ok_or_else(|| format!("{} is not measured by a test of its own", job.metric))?;
    let params = spec.params.overlaid(&spec.forced);
    let settings = apply::settings(&params);
    let started = Instant::now();
    let model = load_model(spec, &settings)?;
    let mut ctx = load(&model, &settings)?;
    let n_seq = settings.context.n_seq_max.max(1);
    let mut bench = Bench::new(&model, &mut ctx, spec.seed, false);
    bench.sequences(n_seq);
    let w = &spec.workload;
    let mut samplers = bench.samplers(spec);
    let history = bench.fill(Run::History, w.request_history_tokens)?;
    bench.warm_up(w, history.as_ref(), &mut samplers)?;
    let depth = match test {
        Test::Prompt(d) | Test::Generation(d) => d,
        Test::Request => 0,
    };
    let state = bench.fill(Run::Depth(depth), depth)?;
    if let Test::Generation(d) = test {
        bench.warm_generation(w, d, state.as_ref())?;
    }
    reply(
        out,
        &ChildReply::Ready {
            load_ms: started.elapsed().as_secs_f64() * 1000.0,
            measurers: Vec::new(),
        },
    )?;
    eprintln!(
        "llama-sweep: resident, loaded in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    for block in 0u32.. {
        if !measure_asked(commands) {
            break;
        }
        let figures = match test {
            Test::Request => {
                bench.reset_to(history.as_ref())?;
                samplers.iter_mut().for_each(Sampler::reset);
                let timings =
                    bench.requests(Run::Request(block), w, w.request_max_tokens, &mut samplers)?;
                request_block(&timings.requests, &timings.itl_ms)
            }
            Test::Generation(d) => {
                let rate = bench.generation_run(w, d, state.as_ref())?;
                let (one, all) = match d {
                    0 => (Metric::TgTps, Metric::AggregateTps),
                    d => (
                        Metric::AtDepth(Speed::Tg, d),
                        Metric::AtDepth(Speed::Aggregate, d),
                    ),
                };
                BlockFigures {
                    figures: vec![(one, rate), (all, rate * f64::from(n_seq))],
                    robust: Vec::new(),
                }
            }
            Test::Prompt(d) => {
                let rate = bench.prompt_run(w, d, state.as_ref(), block)?;
                let metric = match d {
                    0 => Metric::PpTps,
                    d => Metric::AtDepth(Speed::Pp, d),
                };
                BlockFigures {
                    figures: vec![(metric, rate)],
                    robust: Vec::new(),
                }
            }
        };
        eprintln!("llama-sweep: block {} measured", block + 1);
        reply(out, &ChildReply::Block(figures))?;
    }
    Ok(())
}

/// Whether the next command asks for a block; anything else (the stop
/// command, the end of the input) ends the resident subject.
pub(super) fn measure_asked(commands: &mut impl BufRead) -> bool {
    let mut line = String::new();
    matches!(commands.read_line(&mut line), Ok(n) if n > 0 && line.trim() == RESIDENT_MEASURE)
}

pub(super) fn reply(out: &mut impl Write, reply: &ChildReply) -> Result<(), String> {
    let json = serde_json::to_string(reply).expect("replies serialize");
    writeln!(out, "{json}")
        .and_then(|_| out.flush())
        .map_err(|e| format!("cannot answer the parent: {e}"))
}

/// The figures of one round of requests (`crate::request`), with the
/// request's speed also from the median gap between tokens.
pub(crate) fn request_block(
    requests: &[crate::request::RequestTiming],
    itl_ms: &[f64],
) -> BlockFigures {
    let round = crate::request::round(requests);
    let mut figures = Vec::new();
    figures.extend(round.request_tps.map(|v| (Metric::RequestTps, v)));
    figures.extend(round.tpot_ms.map(|v| (Metric::TpotMs, v)));
    figures.extend(round.output_tps.map(|v| (Metric::OutputTps, v)));
    figures.extend(round.e2e_ms.map(|v| (Metric::E2eMs, v)));
    if !round.ttft_ms.is_empty() {
        let mean = round.ttft_ms.iter().sum::<f64>() / round.ttft_ms.len() as f64;
        figures.push((Metric::TtftMs, mean));
    }
    figures.extend(crate::stats::quantile(&round.ttft_ms, 0.95).map(|v| (Metric::TtftMsP95, v)));
    let median = crate::stats::quantile(itl_ms, 0.5);
    figures.extend(median.map(|v| (Metric::ItlMsP50, v)));
    figures.extend(crate::stats::quantile(itl_ms, 0.95).map(|v| (Metric::ItlMsP95, v)));
    let robust = median
        .filter(|&m| m > 0.0)
        .map(|m| vec![(Metric::RequestTps, 1000.0 / m), (Metric::TpotMs, m)])
        .unwrap_or_default();
    BlockFigures { figures, robust }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::RequestTiming;

    #[test]
    fn a_preempted_token_moves_the_robust_speed_less_than_the_mean() {
        // 64 tokens 10 ms apart, but one gap of 200 ms (another process
        // took the core for a moment).
        let mut itl = vec![10.0; 63];
        itl[30] = 200.0;
        let span: f64 = itl.iter().sum();
        let request = RequestTiming {
            ttft_ms: 500.0,
            last_token_ms: 500.0 + span,
            tokens: 64,
        };
        let block = request_block(&[request], &itl);
        let mean = block.mean_of(Metric::RequestTps).unwrap();
        let robust = block.value(Metric::RequestTps).unwrap();
        assert!((robust - 100.0).abs() < 1e-9, "{robust}");
        assert!(mean < 77.0, "{mean}: the mean pays the whole stall");
        assert_eq!(block.value(Metric::TtftMs), Some(500.0));
        assert_eq!(block.value(Metric::TpotMs), Some(10.0));
        assert!(block.mean_of(Metric::TpotMs).unwrap() > 12.0);
    }
}
