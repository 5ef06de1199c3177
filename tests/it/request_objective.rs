//! The app's request is what "best" means (issue 33): with no metric named,
//! a sweep of the real demo model ranks its trials by the request's
//! generation speed after its prompt, every row holds the request's
//! figures as `llama_sweep::request` defines them, and config.yaml's header
//! leads with them.

use crate::support::{demo_model, model_table, read_rows, run, stderr, stdout, sweep_file};
use llama_sweep::objective::{Measured, Metric};
use llama_sweep::store::row::split_samples;

#[test]
fn the_default_objective_is_the_apps_request_and_the_header_states_it() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = sweep_file(
        dir.path(),
        &model_table("smol", &demo_model(), ""),
        "n_threads = 2\nflash_attn = [\"on\", \"off\"]",
        "",
    );
    // The app's request: a 256-token prompt, then 64 tokens.
    let text = std::fs::read_to_string(&sweep)
        .unwrap()
        .replace("n_ctx = 256", "n_ctx = 512")
        .replace("n_batch = 64", "n_batch = 512")
        .replace("request_prompt_tokens = 32", "request_prompt_tokens = 256")
        .replace("request_max_tokens = 8", "request_max_tokens = 64")
        .replace("repetitions = 2", "repetitions = 3");
    std::fs::write(&sweep, text).unwrap();

    let out = run(&["run", sweep.to_str().unwrap()]);
    let (so, se) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout:\n{so}\nstderr:\n{se}");
    assert!(
        so.contains("Best trials (maximize request_tps (t/s)"),
        "the default objective: {so}"
    );
    assert!(so.contains("request t/s"), "{so}");
    assert!(
        se.contains("→ ok  request "),
        "progress leads with it: {se}"
    );

    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let ok: Vec<_> = rows.iter().filter(|r| r.is_ok()).collect();
    assert!(ok.len() >= 2, "{rows:?}");
    for r in &ok {
        // Each repetition's figure is the definition's: the 63 tokens after
        // the first over the time from the first to the last (one user).
        let request = split_samples(&r.request_tps_samples);
        let e2e = split_samples(&r.e2e_ms_samples);
        let ttft = split_samples(&r.ttft_ms_samples);
        assert_eq!(request.len(), 3, "{}: {request:?}", r.trial_id);
        for ((rate, e2e), ttft) in request.iter().zip(&e2e).zip(&ttft) {
            let defined = 63.0 / ((e2e - ttft) / 1000.0);
            assert!(
                (rate / defined - 1.0).abs() < 1e-3,
                "{}: {rate} against {defined}",
                r.trial_id
            );
        }
        let tpot = r.tpot_ms_mean.unwrap();
        let from_rates = request.iter().map(|r| 1000.0 / r).sum::<f64>() / 3.0;
        assert!(
            (tpot / from_rates - 1.0).abs() < 1e-3,
            "{tpot} {from_rates}"
        );
        // One user: its tokens over its end to end.
        let output = r.output_tps_mean.unwrap();
        let from_e2e = e2e.iter().map(|e| 64.0 / (e / 1000.0)).sum::<f64>() / 3.0;
        assert!(
            (output / from_e2e - 1.0).abs() < 1e-3,
            "{output} {from_e2e}"
        );
    }

    // The recommendation is the fastest request among the trials.
    let best = ok
        .iter()
        .max_by(|a, b| {
            a.mean_of(Metric::RequestTps)
                .unwrap()
                .total_cmp(&b.mean_of(Metric::RequestTps).unwrap())
        })
        .unwrap();
    let yaml = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    assert!(
        yaml.contains(&format!("trial {}", best.trial_id)),
        "recommended {} (request {:?} t/s): {yaml}",
        best.trial_id,
        best.request_tps_mean
    );
    let header = format!(
        "# in your app's request of 256 prompt + 64 generated tokens: first token {:.1} ± \
         {:.1} ms, then {:.1} ± {:.1} t/s",
        best.ttft_ms_mean.unwrap(),
        best.ttft_ms_sd.unwrap(),
        best.request_tps_mean.unwrap(),
        best.request_tps_sd.unwrap()
    );
    assert!(yaml.contains(&header), "{header}\nnot in:\n{yaml}");
    let first_figures = yaml
        .lines()
        .position(|l| l.contains("in your app's request"));
    let kernel = yaml
        .lines()
        .position(|l| l.contains("llama-bench's figures"));
    assert!(first_figures < kernel, "the request leads: {yaml}");
}
