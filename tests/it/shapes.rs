//! Depth and concurrency on the real demo model: a sweep with n_depth and
//! n_parallel measures pp and tg on a filled cache and with several
//! sequences decoding together, records every request of every sequence,
//! ranks by a speed at a depth, draws both curves in the report and
//! exports -np and --kv-unified as measured.

use crate::support::*;
use llama_sweep::knobs;
use llama_sweep::objective::{Measured, Metric, Speed};
use llama_sweep::runner::TrialStatus;
use llama_sweep::store::row::{TrialRow, split_samples};

#[test]
fn a_sweep_over_depth_and_concurrency_measures_both_and_reports_both_curves() {
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("demo", &demo_model(), "");
    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = 2\nn_parallel = [1, 2]\nkv_unified = [true, false]",
        "n_depth = [64]\nrequest_history_tokens = 16\n\
         [objective]\nmetric = \"tg_tps@64\"\nttft_ms_p95_max = 100000\n[confirm]\ntop = 0",
    );
    let plan = run(&["plan", sweep.to_str().unwrap()]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    let plan = stdout(&plan);
    assert!(
        plan.contains("n_depth [64]: pp and tg are measured 2 times per trial"),
        "{plan}"
    );
    let out = run(&["run", sweep.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let swept: Vec<&TrialRow> = rows
        .iter()
        .filter(|r| !r.is_defaulted(knobs::N_PARALLEL))
        .collect();
    assert_eq!(swept.len(), 4, "n_parallel 1, 2 × kv_unified");
    for row in &swept {
        assert_eq!(row.status, TrialStatus::Ok, "{:?}", row.error);
        let n = row.params.int(knobs::N_PARALLEL) as usize;
        let deep = row.at_depth.at(64).expect("measured at depth 64");
        assert_eq!((deep.pp_tps.len(), deep.tg_tps.len()), (2, 2));
        for v in deep.pp_tps.iter().chain(&deep.tg_tps) {
            assert!(v.is_finite() && *v > 0.0, "{deep:?}");
        }
        assert!(row.mean_of(Metric::AtDepth(Speed::Tg, 64)).is_some());
        // Every request of every sequence is a sample of time to first
        // token; every decode step after the first token one of the gap.
        assert_eq!(split_samples(&row.ttft_ms_samples).len(), 2 * n);
        let (p50, p95) = (row.ttft_ms_p50.unwrap(), row.ttft_ms_p95.unwrap());
        assert!(p50 > 0.0 && p95 >= p50, "{p50} {p95}");
        let (i50, i95) = (row.itl_ms_p50.unwrap(), row.itl_ms_p95.unwrap());
        assert!(i50 > 0.0 && i95 >= i50, "{i50} {i95}");
        let aggregate = row.aggregate_tps_mean.unwrap();
        assert!(
            (aggregate - n as f64 * row.tg_tps_mean.unwrap()).abs() < 1e-6 * aggregate,
            "all sequences together: n × one's rate"
        );
        assert_eq!(row.n_depth, "64");
        assert_eq!(row.request_history_tokens, Some(16));
    }

    let html = std::fs::read_to_string(folder.join("report.html")).unwrap();
    for plot in ["depth-tg", "depth-pp", "load"] {
        assert!(html.contains(&format!("data-plot=\"{plot}\"")), "{plot}");
    }
    assert!(html.contains("Deep into a conversation, several users at once"));
    assert!(
        html.contains("2 users at once (n_parallel 2)"),
        "best per shape"
    );
    assert!(html.contains("the largest n_parallel whose p95 time to first token stays within"));

    let two = swept
        .iter()
        .find(|r| r.params.int(knobs::N_PARALLEL) == 2 && r.params.flag(knobs::KV_UNIFIED))
        .unwrap();
    let args = export(&folder, &two.trial_id, "server-args");
    assert!(
        args.contains("-np 2") && args.contains("--kv-unified"),
        "{args}"
    );
    let one = swept
        .iter()
        .find(|r| r.params.int(knobs::N_PARALLEL) == 1 && !r.params.flag(knobs::KV_UNIFIED))
        .unwrap();
    let args = export(&folder, &one.trial_id, "server-args");
    assert!(
        args.contains("-np 1") && args.contains("--no-kv-unified"),
        "llama-server picks its own slots unless told: {args}"
    );
    let yaml = export(&folder, &two.trial_id, "yaml");
    assert!(
        yaml.contains("with 64 tokens in the cache: generation"),
        "{yaml}"
    );
    assert!(
        yaml.contains("measured with 2 sequences decoding together"),
        "{yaml}"
    );
    assert!(
        yaml.contains("follow-up: 16 tokens of conversation"),
        "{yaml}"
    );
}
