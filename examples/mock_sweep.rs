//! Benchmark of the parent alone: a sweep of many trials through the real
//! sweep loop and store, with a mock executor instead of child processes.
//! Prints the time the parent spends per trial (bookkeeping, CSV append and
//! sync, Parquet rewrite) and its resident memory as the sweep grows.
//!
//!     cargo run --release --example mock_sweep -- [TRIALS]   (default 1000)

use llama_sweep::knobs::{self, EffectiveParams, Params};
use llama_sweep::objective::Objective;
use llama_sweep::protocol::{ModelVariant, TrialSpec, Workload};
use llama_sweep::runner::Execution;
use llama_sweep::runner::mock::{MockExecutor, measured};
use llama_sweep::search::GridStrategy;
use llama_sweep::store::Store;
use llama_sweep::sweep::{self, SweepContext, SweepObserver, SweepOptions, TrialEvent};
use std::collections::HashSet;
use std::time::Instant;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Report {
    started: Instant,
    last: Instant,
    marks: Vec<usize>,
}

impl SweepObserver for Report {
    fn trial_finished(&mut self, event: TrialEvent) {
        if self.marks.contains(&event.done) {
            let now = Instant::now();
            println!(
                "{:>6} trials: RSS {:>7} KiB, {:>6.2} ms per trial overall, last trial {:>6.2} ms",
                event.done,
                rss_kib(),
                self.started.elapsed().as_secs_f64() * 1000.0 / event.done as f64,
                now.duration_since(self.last).as_secs_f64() * 1000.0
            );
        }
        self.last = Instant::now();
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let dir = tempfile::tempdir().expect("temp dir");
    let trials: Vec<TrialSpec> = (0..n)
        .map(|i| TrialSpec {
            schedule: Default::default(),
            server: None,
            python: None,
            trial_id: format!("{i:012x}"),
            model: ModelVariant {
                name: "m".into(),
                variant: "Q4_1".into(),
                path: "models/m.gguf".into(),
                identity: "file:mock".into(),
            },
            params: Params::default().with(knobs::N_THREADS, (1 + (i % 64) as i32).into()),
            workload: Workload {
                prompt_tokens: 512,
                gen_tokens: 128,
                repetitions: 5,
                warmup: 1,
                request_prompt_tokens: 512,
                request_max_tokens: 128,
                n_depth: Vec::new(),
                request_history_tokens: 0,
                prompts: Default::default(),
            },
            seed: 0,
            sampling: Default::default(),
            forced: Default::default(),
        })
        .collect();
    // llama.cpp's defaults; knobs added later take the table's `before`.
    let defaults: EffectiveParams = serde_json::from_value(serde_json::json!({
        "n_gpu_layers": -1, "n_ctx": 4096, "n_batch": 2048, "n_ubatch": 512,
        "n_threads": 4, "n_threads_batch": 4, "flash_attn": "auto",
        "type_k": "f16", "type_v": "f16", "use_mmap": true, "offload_kqv": true,
    }))
    .expect("defaults parse");
    let objective = Objective::default();
    let ctx = SweepContext {
        sweep_name: "mock",
        build: "mock",
        defaults: &defaults,
        objective: &objective,
        plan: &trials,
        unavailable: Default::default(),
        facts: None,
        origin: &Default::default(),
        claims: &llama_sweep::workers::claims::Claims::new(
            dir.path(),
            "mock",
            "host",
            llama_sweep::workers::claims::DEFAULT_LEASE,
        )
        .expect("claims"),
    };
    let mut store = Store::open(dir.path()).expect("store");
    let mut strategy = GridStrategy::new(&trials, &HashSet::new());
    let mut executor = MockExecutor::new(|_| Execution::Done(measured(100.0, 500.0)));
    let marks: Vec<usize> = [1, 10, 100, 250, 500, 1000, 2500, 5000, 10000]
        .into_iter()
        .filter(|m| *m <= n)
        .collect();
    println!(
        "mock sweep of {n} trials (no child processes); RSS at start {} KiB",
        rss_kib()
    );
    let mut report = Report {
        started: Instant::now(),
        last: Instant::now(),
        marks,
    };
    let options = SweepOptions::default();
    sweep::run(
        &mut strategy,
        &mut executor,
        &mut store,
        &ctx,
        &options,
        &mut report,
        &mut llama_sweep::failure_watch::FailureWatch::new(false),
    )
    .expect("sweep");
}
