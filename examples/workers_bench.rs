//! Benchmark of workers sharing a sweep folder, with a mock executor (no
//! child processes; workers are threads, each with its own store, rows file
//! and claims, as separate processes would have):
//!
//! 1. the claim-and-record overhead per trial: trials that take no time, so
//!    all that is measured is claiming, following the other workers' rows,
//!    appending and syncing the row, and releasing the claim;
//! 2. the speed-up of K workers over one on trials of fixed length.
//!
//!     cargo run --release --example workers_bench -- [FOLDER] [ROUNDS]
//!
//! FOLDER (default: a temporary folder) is where the sweep folders go: put
//! it on the shared filesystem to measure that filesystem.

use llama_sweep::failure_watch::FailureWatch;
use llama_sweep::knobs::{self, EffectiveParams, Params};
use llama_sweep::objective::Objective;
use llama_sweep::protocol::{ModelVariant, TrialSpec, Workload};
use llama_sweep::runner::Execution;
use llama_sweep::runner::mock::{MockExecutor, measured};
use llama_sweep::search::GridStrategy;
use llama_sweep::store::Store;
use llama_sweep::sweep::{self, Silent, SweepContext, SweepOptions};
use llama_sweep::workers::Origin;
use llama_sweep::workers::claims::{Claims, DEFAULT_LEASE};
use std::path::Path;
use std::time::{Duration, Instant};

fn plan(n: usize) -> Vec<TrialSpec> {
    (0..n)
        .map(|i| TrialSpec {
            schedule: Default::default(),
            server: None,
            python: None,
            trial_id: format!("t{i:05}"),
            model: ModelVariant {
                name: "mock".into(),
                variant: "Q4_1".into(),
                path: "mock.gguf".into(),
                identity: "mock".into(),
            },
            params: Params::default().with(knobs::N_THREADS, (i as i32 + 1).into()),
            workload: Workload {
                prompt_tokens: 8,
                gen_tokens: 4,
                repetitions: 2,
                warmup: 0,
                request_prompt_tokens: 8,
                request_max_tokens: 4,
                n_depth: Vec::new(),
                request_history_tokens: 0,
                prompts: Default::default(),
            },
            seed: 0,
            sampling: Default::default(),
            forced: Default::default(),
        })
        .collect()
}

/// One worker over `trials` until none is left for it.
fn worker(folder: &Path, name: &str, trials: &[TrialSpec], trial_time: Duration) {
    let defaults: EffectiveParams = serde_json::from_value(serde_json::json!({
        "n_gpu_layers": -1, "n_ctx": 4096, "n_batch": 2048, "n_ubatch": 512,
        "n_threads": 4, "n_threads_batch": 4, "flash_attn": "auto",
        "type_k": "f16", "type_v": "f16", "use_mmap": true, "offload_kqv": true,
    }))
    .expect("defaults parse");
    let objective = Objective::default();
    let claims = Claims::new(folder, name, "host", DEFAULT_LEASE).expect("claims");
    let origin = Origin {
        host: "host".into(),
        worker: name.into(),
        ..Origin::default()
    };
    let ctx = SweepContext {
        sweep_name: "bench",
        build: "mock",
        defaults: &defaults,
        objective: &objective,
        plan: trials,
        unavailable: Default::default(),
        facts: None,
        origin: &origin,
        claims: &claims,
    };
    let mut store = Store::open_as(folder, Some(name)).expect("store");
    let mut strategy = GridStrategy::new(trials, &store.recorded_ids());
    let mut executor = MockExecutor::new(|_| {
        std::thread::sleep(trial_time);
        Execution::Done(measured(100.0, 500.0))
    });
    let options = SweepOptions {
        wait_for_others: false,
        ..SweepOptions::default()
    };
    sweep::run(
        &mut strategy,
        &mut executor,
        &mut store,
        &ctx,
        &options,
        &mut Silent,
        &mut FailureWatch::new(true),
    )
    .expect("sweep");
}

/// Seconds for `k` workers to record `trials` in a fresh folder under `root`.
fn sweep_time(root: &Path, k: usize, trials: &[TrialSpec], trial_time: Duration) -> f64 {
    let dir = tempfile::tempdir_in(root).expect("folder");
    let started = Instant::now();
    std::thread::scope(|s| {
        for w in 0..k {
            let folder = dir.path();
            s.spawn(move || worker(folder, &format!("w{w}"), trials, trial_time));
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let rows = llama_sweep::store::read_rows(dir.path()).expect("rows");
    assert_eq!(rows.len(), trials.len(), "every trial recorded once");
    elapsed
}

fn median_and_range(mut xs: Vec<f64>) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    (xs[xs.len() / 2], xs[0], xs[xs.len() - 1])
}

fn main() {
    let mut args = std::env::args().skip(1);
    let root = args
        .next()
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let rounds: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(3);
    println!(
        "workers on {} ({rounds} rounds; median [min, max])",
        root.display()
    );

    let instant = plan(400);
    for k in [1, 8] {
        let per_trial: Vec<f64> = (0..rounds)
            .map(|_| sweep_time(&root, k, &instant, Duration::ZERO) * 1000.0 * k as f64 / 400.0)
            .collect();
        let (m, lo, hi) = median_and_range(per_trial);
        println!(
            "claim-and-record overhead, {k} worker(s), 400 trials: {m:.2} ms per trial per worker [{lo:.2}, {hi:.2}]"
        );
    }

    let trial_time = Duration::from_millis(100);
    let fixed = plan(96);
    let one: Vec<f64> = (0..rounds)
        .map(|_| sweep_time(&root, 1, &fixed, trial_time))
        .collect();
    let (t1, _, _) = median_and_range(one.clone());
    println!("1 worker, 96 trials of 100 ms: {t1:.2} s");
    for k in [2, 4, 8] {
        let speedups: Vec<f64> = (0..rounds)
            .map(|r| one[r] / sweep_time(&root, k, &fixed, trial_time))
            .collect();
        let (m, lo, hi) = median_and_range(speedups);
        println!(
            "{k} workers: speed-up {m:.2}× [{lo:.2}, {hi:.2}] over one, {:.2} K",
            m / k as f64
        );
    }
}
