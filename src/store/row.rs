//! One row of results: a trial, whatever its ending, flattened into the
//! columns of results.csv and results.parquet.

use super::depths::{DepthStat, DepthStats};
use crate::knobs::{self, EffectiveParams, Value};
use crate::objective::{Measured, Metric, Objective};
use crate::protocol::TrialSpec;
use crate::runner::{TrialOutcome, TrialStatus};
use crate::stats::{Summary, quantile};

/// A stored trial. Metric columns are empty when the trial was not measured;
/// `*_samples` hold the raw per-repetition values separated by `;` (time to
/// first token: one per request, see [`per_repetition_means`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrialRow {
    pub trial_id: String,
    pub sweep: String,
    /// Position of the trial in the plan.
    pub seq: u32,
    pub status: TrialStatus,
    pub error: Option<String>,
    /// `exit code N` or `signal N (NAME)`.
    pub exit: Option<String>,
    /// Runs it took (more than 1 when a crash or timeout was retried).
    pub attempts: u32,

    pub model_name: String,
    /// Quantization of the variant, e.g. `Q4_K_M`.
    pub model_variant: String,
    pub model_path: String,
    pub model_identity: String,
    pub model_description: Option<String>,
    pub model_size_bytes: Option<u64>,
    pub model_params: Option<u64>,

    /// Every knob as the trial ran with it (llama.cpp's defaults filled in,
    /// batch sizes as llama.cpp used them): one column per knob of the
    /// parameter table (see `store::columns`).
    pub params: EffectiveParams,
    /// Parameters left at llama.cpp's default, separated by `;`.
    pub defaulted: String,
    /// Settings the backend self-test forced on the trial (`repack=false`),
    /// separated by spaces; the manifest says why.
    pub forced: String,

    pub prompt_tokens: u32,
    pub gen_tokens: u32,
    pub repetitions: u32,
    pub warmup: u32,
    pub request_prompt_tokens: u32,
    pub request_max_tokens: u32,
    /// The depths beyond 0 pp and tg were also measured at, `;`-separated.
    pub n_depth: String,
    /// Tokens of earlier conversation in the cache when the request came
    /// (empty: none).
    pub request_history_tokens: Option<u32>,

    /// The app's request (`crate::request`): its generation speed (1000 /
    /// time per output token after the first), the mean over repetitions
    /// of each repetition's value, and their spread.
    pub request_tps_mean: Option<f64>,
    pub request_tps_sd: Option<f64>,
    /// Its time per output token after the first, ms: the mean over
    /// repetitions.
    pub tpot_ms_mean: Option<f64>,
    /// All of a repetition's requests' tokens over the time to the last of
    /// them (with one user, the request's tokens over its end to end).
    pub output_tps_mean: Option<f64>,
    pub output_tps_sd: Option<f64>,
    pub pp_tps_mean: Option<f64>,
    pub pp_tps_sd: Option<f64>,
    pub tg_tps_mean: Option<f64>,
    pub tg_tps_sd: Option<f64>,
    /// Mean time to first token over every request, and the spread of the
    /// repetitions' means (not of the requests: see
    /// [`per_repetition_means`]).
    pub ttft_ms_mean: Option<f64>,
    pub ttft_ms_sd: Option<f64>,
    pub e2e_ms_mean: Option<f64>,
    pub e2e_ms_sd: Option<f64>,
    /// tg of all n_parallel sequences together (n_parallel × tg_tps), on
    /// an empty cache; at a depth (`at_depth`), on top of that many tokens
    /// (llama-batched-bench's S_TG is the depth of its prompt).
    pub aggregate_tps_mean: Option<f64>,
    pub aggregate_tps_sd: Option<f64>,
    /// Percentiles of time to first token over every request (n_parallel
    /// arriving together, each repetition), and of the time between two
    /// tokens of a request over every decode step.
    pub ttft_ms_p50: Option<f64>,
    pub ttft_ms_p95: Option<f64>,
    pub itl_ms_p50: Option<f64>,
    pub itl_ms_p95: Option<f64>,
    /// Number of measured repetitions behind each mean (of the request, or
    /// of tg where the request was not measured).
    pub n_samples: Option<u32>,
    pub load_ms: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub device_memory_mib: Option<f64>,
    pub layers_offloaded: Option<u32>,
    pub layers_total: Option<u32>,
    pub n_ctx_actual: Option<u32>,
    pub flash_attn_resolved: Option<bool>,
    /// Where the weights went: buffer types and sizes, `CPU_Mapped 12.85
    /// MiB, CPU 1.50 MiB` (llama.cpp's load log).
    pub weights: Option<String>,
    /// Tensors placed by tensor overrides, per buffer type: `48 tensors to
    /// CPU` (the trial's log names them).
    pub overridden: Option<String>,

    /// Measured and within every constraint of the objective.
    pub feasible: bool,
    /// The constraints it breaks, separated by `; `.
    pub violations: Option<String>,
    /// Coefficient of variation (sd / mean) of the objective's metric, over
    /// repetitions (for TTFT, of the repetitions' means).
    pub cv: Option<f64>,
    /// `cv` above the sweep's noise limit: too noisy to rank against close
    /// neighbours.
    pub noisy: bool,
    /// Set when the drift anchor moved while this trial was measured.
    pub drift: String,
    /// One of the first trials that all failed the same way and stopped the
    /// sweep (a common cause, not its configuration): it runs again when the
    /// sweep is resumed.
    pub systematic: Option<bool>,

    pub request_tps_samples: String,
    pub output_tps_samples: String,
    /// All sequences' tokens per second, one per repetition: n × tg in the
    /// child; each round's aggregate through llama-server.
    pub aggregate_tps_samples: String,
    pub pp_tps_samples: String,
    pub tg_tps_samples: String,
    /// Every request's time to first token, repetition by repetition (see
    /// [`per_repetition_means`]).
    pub ttft_ms_samples: String,
    pub e2e_ms_samples: String,
    /// pp and tg at each depth of n_depth (see `store::depths`).
    pub at_depth: DepthStats,

    pub wall_s: f64,
    pub started_at: String,
    pub finished_at: String,
    /// What measured it: llama-sweep's version and llama.cpp's build.
    pub build: String,
    /// The trial's llama.cpp log, relative to the sweep folder.
    pub log_file: String,
    pub log_tail: String,

    /// Quality of this row's model variant and KV types (quality.csv):
    /// perplexity, its increase over the reference variant's in percent,
    /// mean KL divergence from it, top-1 agreement with it in percent.
    pub ppl: Option<f64>,
    pub ppl_increase_pct: Option<f64>,
    pub kld: Option<f64>,
    pub top1_pct: Option<f64>,
    /// Bytes of weights one generated token reads (from the GGUF header):
    /// with the machine's memory bandwidth, the ceiling of generation speed.
    pub bytes_per_token: Option<u64>,
    /// Where it was measured: the host, the worker (empty for a plain
    /// `run`), the machine's fingerprint and its description (see
    /// `workers::fingerprint`).
    pub host: Option<String>,
    pub worker: Option<String>,
    pub machine_id: Option<String>,
    pub machine: Option<String>,
    /// The app's runtime that measured it (`[sweep] runtime`):
    /// `llama-server` or `llama-cpp-python`; empty for llama-sweep's own.
    pub runtime: Option<String>,
    /// The server's own generation speed of the requests (its `timings`),
    /// beside the client's `tg_tps_mean`.
    pub server_tg_tps_mean: Option<f64>,
    /// With speculative decoding: drafted tokens the model accepted.
    pub draft_acceptance: Option<f64>,
    /// Tokens the speculation drafted over the measured requests (0: it
    /// never guessed); empty for llama-sweep's own runtime.
    pub draft_tokens: Option<u64>,
    /// Runs other processes disturbed (more than `[trial] busy_cores_max`
    /// of a core beside them): measured again, or kept when the machine
    /// never got quiet (status `busy`); empty when none.
    pub busy_runs: Option<u32>,
    /// The most of a core other processes used during one of its runs.
    pub other_cores_max: Option<f64>,
    /// Requests per second that met every latency bound of `[objective]`
    /// (every request without bounds), the mean over the rounds; empty for
    /// llama-sweep's own runtime.
    pub goodput_rps_mean: Option<f64>,
}

/// What `build` says of a row made under `--test-fault`.
pub const TEST_FAULT_MARK: &str = "[test fault";

/// The columns added after results.csv's first layout, in order: a file
/// written without them is read with them empty, and rewritten.
pub const LATER_COLUMNS: [&str; 33] = [
    "ppl",
    "ppl_increase_pct",
    "kld",
    "top1_pct",
    "bytes_per_token",
    "n_depth",
    "request_history_tokens",
    "aggregate_tps_mean",
    "aggregate_tps_sd",
    "ttft_ms_p50",
    "ttft_ms_p95",
    "itl_ms_p50",
    "itl_ms_p95",
    "at_depth",
    "host",
    "worker",
    "machine_id",
    "machine",
    "runtime",
    "server_tg_tps_mean",
    "draft_acceptance",
    "draft_tokens",
    "goodput_rps_mean",
    "request_tps_mean",
    "request_tps_sd",
    "tpot_ms_mean",
    "output_tps_mean",
    "output_tps_sd",
    "request_tps_samples",
    "output_tps_samples",
    "busy_runs",
    "other_cores_max",
    "aggregate_tps_samples",
];

/// Where and when a trial ran, for its row.
pub struct RowContext<'a> {
    pub sweep: &'a str,
    pub seq: u32,
    pub defaults: &'a EffectiveParams,
    pub objective: &'a Objective,
    pub started_at: String,
    pub finished_at: String,
    pub build: &'a str,
    pub log_file: String,
    pub attempts: u32,
    /// Coefficient of variation above which a trial is flagged noisy.
    pub noise_cv_max: f64,
    /// Quality and bytes per token of the model variants, where known.
    pub facts: Option<&'a crate::quality::VariantFacts>,
    /// Where it runs.
    pub origin: &'a super::writers::Origin,
}

fn join(samples: &[f64]) -> String {
    samples
        .iter()
        .map(|x| format!("{x:.4}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// Parses a `;`-separated samples cell back into numbers.
pub fn split_samples(cell: &str) -> Vec<f64> {
    cell.split(';')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// One time to first token per repetition, from one per request.
///
/// `per_request` is laid out as `measure::bench` records it (and
/// `ttft_ms_samples` stores it): repetition by repetition, the n_parallel
/// requests of each, sequence 0 first. The requests of a repetition arrive
/// together and queue for the same batches, so most of their spread is
/// their place in the queue, and they share the repetition's moment of the
/// machine: they are not independent measurements. The spread, the noise
/// flag and the tests of a change use one value per repetition, the mean
/// of its requests; the mean rather than the median, so that the mean of
/// these values is the mean over every request (`ttft_ms_mean`). The
/// percentiles, what clients feel, stay over every request.
///
/// Values that do not fill whole repetitions of `requests_per_repetition`
/// (a row written by hand) are taken as one per repetition.
pub fn per_repetition_means(per_request: &[f64], requests_per_repetition: usize) -> Vec<f64> {
    let n = requests_per_repetition.max(1);
    if per_request.len() % n != 0 {
        return per_request.to_vec();
    }
    per_request
        .chunks(n)
        .map(|requests| requests.iter().sum::<f64>() / n as f64)
        .collect()
}

const MIB: f64 = 1024.0 * 1024.0;

impl TrialRow {
    pub fn new(spec: &TrialSpec, outcome: &TrialOutcome, ctx: RowContext) -> TrialRow {
        let (mut p, defaulted) = spec.params.overlaid(&spec.forced).resolve(ctx.defaults);
        if let Some(m) = outcome.metrics.as_ref() {
            // The batch sizes llama.cpp really used.
            p.set(knobs::N_BATCH, Value::Int(i64::from(m.n_batch_actual)));
            p.set(knobs::N_UBATCH, Value::Int(i64::from(m.n_ubatch_actual)));
        }
        let m = outcome.metrics.as_ref();
        let n_seq = p.int(knobs::N_PARALLEL).max(1);
        let summary =
            |f: fn(&crate::protocol::TrialMetrics) -> &Vec<f64>| m.and_then(|m| Summary::of(f(m)));
        let (pp, tg, e2e) = (
            summary(|m| &m.pp_tps),
            summary(|m| &m.tg_tps),
            summary(|m| &m.e2e_ms),
        );
        let (request, output) = (summary(|m| &m.request_tps), summary(|m| &m.output_tps));
        let tpot = m.and_then(|m| Summary::of(&crate::request::tpot_ms_of(&m.request_tps)));
        let ttft = m.and_then(|m| Summary::of(&per_repetition_means(&m.ttft_ms, n_seq as usize)));
        let samples = |f: fn(&crate::protocol::TrialMetrics) -> &Vec<f64>| {
            m.map(|m| join(f(m))).unwrap_or_default()
        };
        let w = &spec.workload;
        // A server's clients measure the throughput of their rounds; the
        // in-process child decodes its sequences in lockstep.
        let server = m.and_then(|m| m.server.as_deref());
        let aggregate_samples: Vec<f64> = match server.filter(|s| !s.aggregate_tps.is_empty()) {
            Some(s) => s.aggregate_tps.clone(),
            None => m.map_or_else(Vec::new, |m| {
                m.tg_tps.iter().map(|v| v * n_seq as f64).collect()
            }),
        };
        let aggregate = Summary::of(&aggregate_samples).map(|s| (s.mean, s.stddev));
        let percentile = |f: fn(&crate::protocol::TrialMetrics) -> &Vec<f64>, q: f64| {
            m.and_then(|m| quantile(f(m), q))
        };
        let mut row = TrialRow {
            trial_id: spec.trial_id.clone(),
            sweep: ctx.sweep.to_string(),
            seq: ctx.seq,
            status: outcome.status,
            error: outcome.error.clone(),
            exit: outcome.exit.clone(),
            attempts: ctx.attempts,
            model_name: spec.model.name.clone(),
            model_variant: spec.model.variant.clone(),
            model_path: spec.model.path.display().to_string(),
            model_identity: spec.model.identity.clone(),
            model_description: m.map(|m| m.model.description.clone()),
            model_size_bytes: m.map(|m| m.model.size_bytes),
            model_params: m.map(|m| m.model.n_params),
            params: p,
            defaulted: defaulted.join(";"),
            forced: spec.forced.to_string(),
            prompt_tokens: w.prompt_tokens,
            gen_tokens: w.gen_tokens,
            repetitions: w.repetitions,
            warmup: w.warmup,
            request_prompt_tokens: w.request_prompt_tokens,
            request_max_tokens: w.request_max_tokens,
            n_depth: w
                .n_depth
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(";"),
            request_history_tokens: (w.request_history_tokens > 0)
                .then_some(w.request_history_tokens),
            request_tps_mean: request.map(|s| s.mean),
            request_tps_sd: request.map(|s| s.stddev),
            tpot_ms_mean: tpot.map(|s| s.mean),
            output_tps_mean: output.map(|s| s.mean),
            output_tps_sd: output.map(|s| s.stddev),
            pp_tps_mean: pp.map(|s| s.mean),
            pp_tps_sd: pp.map(|s| s.stddev),
            tg_tps_mean: tg.map(|s| s.mean),
            tg_tps_sd: tg.map(|s| s.stddev),
            ttft_ms_mean: ttft.map(|s| s.mean),
            ttft_ms_sd: ttft.map(|s| s.stddev),
            e2e_ms_mean: e2e.map(|s| s.mean),
            e2e_ms_sd: e2e.map(|s| s.stddev),
            aggregate_tps_mean: aggregate.map(|a| a.0),
            aggregate_tps_sd: aggregate.map(|a| a.1),
            ttft_ms_p50: percentile(|m| &m.ttft_ms, 0.5),
            ttft_ms_p95: percentile(|m| &m.ttft_ms, 0.95),
            itl_ms_p50: percentile(|m| &m.itl_ms, 0.5),
            itl_ms_p95: percentile(|m| &m.itl_ms, 0.95),
            n_samples: request.or(tg).map(|s| s.n as u32),
            load_ms: m.map(|m| m.load_ms),
            peak_rss_mib: outcome.peak_rss_kib.map(|kib| kib as f64 / 1024.0),
            device_memory_mib: m
                .and_then(|m| m.device_memory_used_bytes)
                .map(|b| b as f64 / MIB),
            layers_offloaded: m.map(|m| m.layers_offloaded),
            layers_total: m.map(|m| m.layers_total),
            n_ctx_actual: m.map(|m| m.n_ctx_actual),
            flash_attn_resolved: m.and_then(|m| m.flash_attn_resolved),
            weights: m
                .filter(|m| !m.weights.is_empty())
                .map(|m| crate::protocol::describe_buffers(&m.weights)),
            overridden: m.filter(|m| !m.overridden.is_empty()).map(|m| {
                m.overridden
                    .iter()
                    .map(|(buft, n)| format!("{n} tensors to {buft}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
            feasible: false,
            violations: None,
            cv: None,
            noisy: false,
            drift: String::new(),
            systematic: None,
            aggregate_tps_samples: join(&aggregate_samples),
            request_tps_samples: samples(|m| &m.request_tps),
            output_tps_samples: samples(|m| &m.output_tps),
            pp_tps_samples: samples(|m| &m.pp_tps),
            tg_tps_samples: samples(|m| &m.tg_tps),
            ttft_ms_samples: samples(|m| &m.ttft_ms),
            e2e_ms_samples: samples(|m| &m.e2e_ms),
            at_depth: DepthStats(
                m.map(|m| m.at_depth.iter().map(DepthStat::of).collect())
                    .unwrap_or_default(),
            ),
            wall_s: outcome.wall.as_secs_f64(),
            started_at: ctx.started_at,
            finished_at: ctx.finished_at,
            build: ctx.build.to_string(),
            log_file: ctx.log_file,
            log_tail: outcome.log_tail.clone(),
            ppl: None,
            ppl_increase_pct: None,
            kld: None,
            top1_pct: None,
            bytes_per_token: None,
            host: Some(ctx.origin.host.clone()).filter(|h| !h.is_empty()),
            worker: Some(ctx.origin.worker.clone()).filter(|w| !w.is_empty()),
            machine_id: Some(ctx.origin.machine_id.clone()).filter(|m| !m.is_empty()),
            machine: Some(ctx.origin.machine.clone()).filter(|m| !m.is_empty()),
            runtime: spec.runtime().map(str::to_string),
            server_tg_tps_mean: server
                .and_then(|s| Summary::of(&s.predicted_tps))
                .map(|s| s.mean),
            draft_acceptance: server.and_then(|s| s.acceptance()),
            draft_tokens: server.map(|s| s.drafted),
            goodput_rps_mean: server
                .and_then(|s| Summary::of(&s.goodput_rps))
                .map(|s| s.mean),
            busy_runs: m.map(|m| m.busy.discarded + m.busy.kept).filter(|&n| n > 0),
            other_cores_max: m.map(|m| m.busy.other_cores_max).filter(|&c| c > 0.0),
        };
        if let Some(facts) = ctx.facts {
            row.take_facts(facts);
        }
        let metric = ctx.objective.metric;
        row.cv = match (row.mean_of(metric), row.sd_of(metric)) {
            (Some(m), Some(sd)) if m != 0.0 => Some(sd / m.abs()),
            _ => None,
        };
        row.noisy = row.cv.is_some_and(|cv| cv > ctx.noise_cv_max);
        row.judge(ctx.objective);
        row
    }

    /// Copies its variant's quality and bytes per token from `facts`.
    fn take_facts(&mut self, facts: &crate::quality::VariantFacts) {
        let (type_k, type_v) = (
            self.params.kv_type(knobs::TYPE_K),
            self.params.kv_type(knobs::TYPE_V),
        );
        if let Some(q) = facts.quality(&self.model_identity, type_k, type_v) {
            self.ppl = Some(q.ppl);
            self.ppl_increase_pct = Some(q.ppl_increase_pct);
            self.kld = Some(q.kld);
            self.top1_pct = Some(q.top1_pct);
        }
        if let Some(b) = facts.bytes_per_token(&self.model_identity) {
            self.bytes_per_token = Some(b);
        }
    }

    /// Sets `feasible` and `violations` against the objective.
    fn judge(&mut self, objective: &Objective) {
        if self.status == TrialStatus::Ok {
            let violations = objective.violations(&*self);
            self.feasible = violations.is_empty() && objective.score(&*self).is_some();
            self.violations = (!violations.is_empty()).then(|| violations.join("; "));
        }
    }

    /// A row recorded before its variant's quality was known (an earlier
    /// run, an older version) gets it now, and is judged again. Returns
    /// whether anything changed.
    pub fn update_facts(
        &mut self,
        facts: &crate::quality::VariantFacts,
        objective: &Objective,
    ) -> bool {
        let before = self.clone();
        self.take_facts(facts);
        if *self != before {
            self.judge(objective);
        }
        *self != before
    }

    /// Whether the trial runs again when its sweep is resumed: one of the
    /// first trials that all failed the same way (a common cause), one
    /// measured while the machine was busy, or one
    /// measured by a version of llama-sweep that did not record the app's
    /// request's generation speed, the default objective.
    pub fn to_measure_again(&self) -> bool {
        self.systematic == Some(true)
            || self.status == TrialStatus::Busy
            || (self.is_ok() && self.ttft_ms_mean.is_some() && self.request_tps_mean.is_none())
    }

    /// Whether the trial left `knob` at llama.cpp's default.
    pub fn is_defaulted(&self, knob: crate::knobs::KnobId) -> bool {
        self.defaulted.split(';').any(|name| name == knob.name())
    }

    pub fn is_ok(&self) -> bool {
        self.status == TrialStatus::Ok
    }

    /// Made under `--test-fault`: its children misbehaved on purpose, so its
    /// figures are not measurements (never ranked, confirmed or exported,
    /// and measured again by a run without the flag).
    pub fn is_test_fault(&self) -> bool {
        self.build.contains(TEST_FAULT_MARK)
    }

    /// The parameters this row ran with.
    pub fn effective_params(&self) -> EffectiveParams {
        self.params.clone()
    }
}

impl Measured for TrialRow {
    fn mean_of(&self, metric: Metric) -> Option<f64> {
        if !self.is_ok() {
            return None;
        }
        match metric {
            Metric::RequestTps => self.request_tps_mean,
            Metric::TpotMs => self.tpot_ms_mean,
            Metric::OutputTps => self.output_tps_mean,
            Metric::TgTps => self.tg_tps_mean,
            Metric::PpTps => self.pp_tps_mean,
            Metric::AggregateTps => self.aggregate_tps_mean,
            Metric::TtftMsP95 => self.ttft_ms_p95,
            Metric::ItlMsP50 => self.itl_ms_p50,
            Metric::ItlMsP95 => self.itl_ms_p95,
            Metric::AtDepth(speed, depth) => {
                self.at_depth.at(depth)?.speed(speed, self.n_parallel()).0
            }
            Metric::TtftMs => self.ttft_ms_mean,
            Metric::E2eMs => self.e2e_ms_mean,
            Metric::PeakRssMib => self.peak_rss_mib,
            Metric::DeviceMemoryMib => Some(self.device_memory_mib.unwrap_or(0.0)),
            Metric::Kld => self.kld,
            Metric::PplIncreasePct => self.ppl_increase_pct,
            Metric::Top1Pct => self.top1_pct,
        }
    }
}

impl TrialRow {
    /// Sequences decoded together in this trial (n_parallel).
    pub fn n_parallel(&self) -> f64 {
        self.params.int(knobs::N_PARALLEL).max(1) as f64
    }

    /// The per-repetition samples of `metric` (none for the metrics
    /// measured once: memory, quality, percentiles); for time to first
    /// token, each repetition's mean over its requests.
    pub fn samples_of(&self, metric: Metric) -> Vec<f64> {
        let n = self.n_parallel();
        let times = |xs: Vec<f64>| xs.into_iter().map(|x| x * n).collect();
        match metric {
            Metric::RequestTps => split_samples(&self.request_tps_samples),
            Metric::TpotMs => crate::request::tpot_ms_of(&split_samples(&self.request_tps_samples)),
            Metric::OutputTps => split_samples(&self.output_tps_samples),
            Metric::TgTps => split_samples(&self.tg_tps_samples),
            Metric::PpTps => split_samples(&self.pp_tps_samples),
            // Rows from before the column: the child's aggregate is tg × n.
            Metric::AggregateTps if self.aggregate_tps_samples.is_empty() => {
                times(split_samples(&self.tg_tps_samples))
            }
            Metric::AggregateTps => split_samples(&self.aggregate_tps_samples),
            Metric::TtftMs => {
                per_repetition_means(&split_samples(&self.ttft_ms_samples), n as usize)
            }
            Metric::E2eMs => split_samples(&self.e2e_ms_samples),
            Metric::AtDepth(speed, depth) => self
                .at_depth
                .at(depth)
                .map_or_else(Vec::new, |at| at.speed(speed, n).2),
            _ => Vec::new(),
        }
    }

    /// The standard deviation that goes with `mean_of(metric)`, where there is one.
    pub fn sd_of(&self, metric: Metric) -> Option<f64> {
        match metric {
            Metric::RequestTps => self.request_tps_sd,
            Metric::TpotMs => Summary::of(&self.samples_of(metric)).map(|s| s.stddev),
            Metric::OutputTps => self.output_tps_sd,
            Metric::TgTps => self.tg_tps_sd,
            Metric::PpTps => self.pp_tps_sd,
            Metric::TtftMs => self.ttft_ms_sd,
            Metric::E2eMs => self.e2e_ms_sd,
            Metric::AggregateTps => self.aggregate_tps_sd,
            Metric::AtDepth(speed, depth) => {
                self.at_depth.at(depth)?.speed(speed, self.n_parallel()).1
            }
            Metric::TtftMsP95
            | Metric::ItlMsP50
            | Metric::ItlMsP95
            | Metric::PeakRssMib
            | Metric::DeviceMemoryMib
            | Metric::Kld
            | Metric::PplIncreasePct
            | Metric::Top1Pct => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::Direction;
    use crate::test_support;

    /// Three repetitions of four requests arriving together, repetition by
    /// repetition: within one, time to first token grows with the request's
    /// place in the queue; the repetitions' means (250, 252.5, 247.5) agree
    /// within 1%.
    const QUEUED: [f64; 12] = [
        100.0, 200.0, 300.0, 400.0, //
        101.0, 202.0, 303.0, 404.0, //
        99.0, 198.0, 297.0, 396.0,
    ];

    fn close(x: f64, y: f64) -> bool {
        (x - y).abs() < 1e-9
    }

    /// The row of a trial with `n_parallel` sequences whose requests took
    /// `ttft` ms to their first token, ranked on TTFT.
    fn row_with(n_parallel: i64, ttft: &[f64]) -> TrialRow {
        let mut spec = test_support::spec("t");
        spec.params.set(knobs::N_PARALLEL, Value::Int(n_parallel));
        let mut outcome = crate::runner::mock::measured(100.0, 400.0);
        outcome.metrics.as_mut().expect("measured").ttft_ms = ttft.to_vec();
        let objective = Objective {
            metric: Metric::TtftMs,
            direction: Direction::Minimize,
            constraints: Vec::new(),
        };
        TrialRow::new(
            &spec,
            &outcome,
            RowContext {
                sweep: "s",
                seq: 0,
                defaults: &test_support::defaults(),
                objective: &objective,
                started_at: "t0".into(),
                finished_at: "t1".into(),
                build: "test build",
                log_file: "logs/t.log".into(),
                attempts: 1,
                noise_cv_max: 0.05,
                facts: None,
                origin: &Default::default(),
            },
        )
    }

    #[test]
    fn queue_position_within_a_repetition_is_not_noise() {
        let row = row_with(4, &QUEUED);
        assert!(!row.noisy, "cv {:?}", row.cv);
        assert!(close(row.ttft_ms_mean.unwrap(), 250.0));
        assert!(close(row.ttft_ms_sd.unwrap(), 2.5), "{:?}", row.ttft_ms_sd);
        assert!(close(row.cv.unwrap(), 0.01), "{:?}", row.cv);
    }

    #[test]
    fn ttft_samples_are_a_mean_per_repetition_and_the_cell_keeps_every_request() {
        let row = row_with(4, &QUEUED);
        let means = row.samples_of(Metric::TtftMs);
        assert_eq!(means.len(), 3, "{means:?}");
        assert!(
            means
                .iter()
                .zip([250.0, 252.5, 247.5])
                .all(|(m, w)| close(*m, w)),
            "{means:?}"
        );
        assert_eq!(split_samples(&row.ttft_ms_samples), QUEUED);
    }

    #[test]
    fn the_percentiles_stay_over_every_request() {
        let row = row_with(4, &QUEUED);
        assert_eq!(row.ttft_ms_p50, quantile(&QUEUED, 0.5));
        assert_eq!(row.ttft_ms_p95, quantile(&QUEUED, 0.95));
        assert!(row.ttft_ms_p95.unwrap() > 390.0, "{:?}", row.ttft_ms_p95);
    }

    #[test]
    fn repetitions_that_disagree_are_noisy_whatever_their_queue() {
        // Repetitions averaging 100, 120 and 80 ms: 20% apart.
        let ttft: Vec<f64> = [100.0, 120.0, 80.0]
            .iter()
            .flat_map(|m| [m - 1.5, m - 0.5, m + 0.5, m + 1.5])
            .collect();
        let row = row_with(4, &ttft);
        assert!(row.noisy);
        assert!(close(row.cv.unwrap(), 0.2), "{:?}", row.cv);
    }

    #[test]
    fn values_that_fill_no_whole_repetitions_are_one_each() {
        assert_eq!(per_repetition_means(&[1.0, 3.0, 5.0, 7.0], 2), [2.0, 6.0]);
        assert_eq!(per_repetition_means(&[1.0, 2.0, 3.0], 4), [1.0, 2.0, 3.0]);
        assert_eq!(per_repetition_means(&[1.0, 2.0], 0), [1.0, 2.0]);
        assert!(per_repetition_means(&[], 4).is_empty());
    }

    #[test]
    fn one_request_per_repetition_is_that_repetitions_value() {
        let row = row_with(1, &[100.0, 110.0, 90.0]);
        assert_eq!(row.samples_of(Metric::TtftMs), [100.0, 110.0, 90.0]);
        assert!(close(row.ttft_ms_sd.unwrap(), 10.0));
    }
}

#[cfg(test)]
mod aggregate_tests {
    use super::*;
    use crate::test_support;

    /// Issue 36, item 7: through llama-server the aggregate is each round's
    /// own (its clients' tokens over the round, below n × one client's
    /// speed by their stagger): the samples a drop bar reads are those, not
    /// n × tg.
    #[test]
    fn a_servers_aggregate_samples_are_its_rounds() {
        let mut spec = test_support::spec("t");
        spec.params.set(knobs::N_PARALLEL, Value::Int(2));
        let mut outcome = crate::runner::mock::measured(100.0, 400.0);
        let m = outcome.metrics.as_mut().unwrap();
        m.tg_tps = vec![100.0, 100.0];
        m.server = Some(Box::new(crate::protocol::ServerFigures {
            aggregate_tps: vec![140.0, 140.0],
            ..Default::default()
        }));
        let row = test_support::row_of(&spec, &outcome);
        assert_eq!(row.samples_of(Metric::AggregateTps), [140.0, 140.0]);
        assert_eq!(row.aggregate_tps_mean, Some(140.0));
        // The in-process child decodes its sequences in lockstep: n × tg.
        let mut child = outcome.clone();
        child.metrics.as_mut().unwrap().server = None;
        let row = test_support::row_of(&spec, &child);
        assert_eq!(row.samples_of(Metric::AggregateTps), [200.0, 200.0]);
        // A row from before the column reads n × tg.
        let mut old = row.clone();
        old.aggregate_tps_samples.clear();
        assert_eq!(old.samples_of(Metric::AggregateTps), [200.0, 200.0]);
    }
}
