//! A real sweep on the demo model: a derived quantization, a corrupt model
//! that must fail as a row, and every output file checked.

use crate::support::*;
use llama_sweep::runner::TrialStatus;
use sha2::{Digest, Sha256};
use std::collections::HashSet;

/// Keys llama-cpp-python 0.3's `Llama()` accepts that config.yaml may write,
/// with the YAML type expected; `temperature` and `max_tokens` are the app's.
const LLAMA_KWARGS: &[(&str, &str)] = &[
    ("model_path", "str"),
    ("n_gpu_layers", "int"),
    ("n_ctx", "int"),
    ("n_batch", "int"),
    ("n_ubatch", "int"),
    ("n_threads", "int"),
    ("n_threads_batch", "int"),
    ("flash_attn", "bool"),
    ("type_k", "int"),
    ("type_v", "int"),
    ("use_mmap", "bool"),
    ("use_mlock", "bool"),
    ("offload_kqv", "bool"),
    ("op_offload", "bool"),
    ("split_mode", "int"),
    ("main_gpu", "int"),
    ("verbose", "bool"),
    ("temperature", "float"),
    ("max_tokens", "int"),
];

fn yaml_type(value: &str) -> &'static str {
    let value = value.split("  #").next().unwrap().trim();
    if value == "true" || value == "false" {
        "bool"
    } else if value.parse::<i64>().is_ok() {
        "int"
    } else if value.parse::<f64>().is_ok() {
        "float"
    } else if value.starts_with('"') && value.ends_with('"') {
        "str"
    } else {
        "unknown"
    }
}

/// Checks config.yaml's `llm:` keys against the Llama() keyword arguments
/// and returns them.
fn check_config_yaml(text: &str) -> Vec<(String, String)> {
    let mut lines = text.lines().skip_while(|l| l.starts_with('#'));
    assert_eq!(
        lines.next(),
        Some("llm:"),
        "config.yaml starts with its comment header, then llm:\n{text}"
    );
    let mut keys = Vec::new();
    for line in lines.filter(|l| !l.trim_start().starts_with('#')) {
        let (key, value) = line
            .trim()
            .split_once(": ")
            .unwrap_or_else(|| panic!("not a key: value line: {line}"));
        let expected = LLAMA_KWARGS
            .iter()
            .find(|(k, _)| *k == key)
            .unwrap_or_else(|| panic!("{key} is not a llama-cpp-python Llama() keyword argument"));
        let found = yaml_type(value);
        assert!(
            found == expected.1 || (expected.1 == "float" && found == "int"),
            "{key}: {value} is a {found}, Llama() expects a {}",
            expected.1
        );
        keys.push((key.to_string(), value.to_string()));
    }
    keys
}

#[test]
fn real_sweep_with_a_derived_quantization_and_a_corrupt_model() {
    let dir = tempfile::tempdir().unwrap();
    let model = demo_model();
    let broken = dir.path().join("broken.gguf");
    let bytes = std::fs::read(&model).unwrap();
    std::fs::write(&broken, &bytes[..1 << 20]).unwrap(); // a truncated GGUF
    let models =
        model_table("smol", &model, "quantize = [\"Q8_0\"]") + &model_table("broken", &broken, "");
    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = [1, 2]",
        "[objective]\nttft_ms_max = 60000\n[quality]\nn_ctx = 128\nchunks = 3\n[confirm]\ntop = 3\npairs = 3\nmax_pairs = 3",
    );

    let plan = run(&["plan", sweep.to_str().unwrap()]);
    assert!(plan.status.success(), "{}", stderr(&plan));
    assert!(
        stdout(&plan).contains("6 trials, 0 already recorded"),
        "{}",
        stdout(&plan)
    );
    assert!(
        stdout(&plan).contains("Quality: measured first, once per variant and KV-cache type"),
        "{}",
        stdout(&plan)
    );
    assert!(!dir.path().join("reports").exists(), "plan writes nothing");

    let out = run(&["run", sweep.to_str().unwrap()]);
    let (so, se) = (stdout(&out), stderr(&out));
    assert!(out.status.success(), "stdout:\n{so}\nstderr:\n{se}");
    assert!(se.contains("deriving smol Q8_0"), "{se}");
    // 6 trials and llama.cpp's defaults, counted together.
    assert!(se.contains("[7/7]"), "one progress line per trial: {se}");
    assert!(so.contains("Best trials"), "{so}");
    // The 6 trials, and llama.cpp's defaults on the first variant.
    assert!(
        so.contains("7 trials: 5 ok (5 within constraints), 2 failed"),
        "{so}"
    );

    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    assert_eq!(rows.len(), 7);
    let ids: HashSet<_> = rows.iter().map(|r| r.trial_id.clone()).collect();
    assert_eq!(ids.len(), 7, "one row per trial");
    let planned = llama_sweep::store::plan_file::read(&folder)
        .unwrap()
        .unwrap();
    let in_plan = |r: &&llama_sweep::store::row::TrialRow| planned.trial_ids.contains(&r.trial_id);
    assert_eq!(rows.iter().filter(in_plan).count(), 6);

    for r in rows
        .iter()
        .filter(in_plan)
        .filter(|r| r.model_name == "smol")
    {
        assert_eq!(r.status, TrialStatus::Ok, "{:?}", r.error);
        // Speeds are measured, not asserted: a shared machine running other
        // tests beside this one can be slow. They must be real rates.
        let (tg, pp) = (r.tg_tps_mean.unwrap(), r.pp_tps_mean.unwrap());
        assert!(
            tg.is_finite() && tg > 0.0 && pp.is_finite() && pp > 0.0,
            "tg {tg} t/s, pp {pp} t/s"
        );
        assert_eq!(
            llama_sweep::store::row::split_samples(&r.tg_tps_samples).len(),
            2
        );
        assert_eq!(r.n_samples, Some(2));
        assert!(r.ttft_ms_mean.unwrap() > 0.0 && r.e2e_ms_mean.unwrap() >= r.ttft_ms_mean.unwrap());
        assert_eq!(
            (r.layers_offloaded, r.layers_total),
            (Some(0), Some(31)),
            "CPU build: nothing offloaded"
        );
        assert!(
            r.peak_rss_mib.unwrap() > 50.0,
            "peak RSS from wait4 includes the model"
        );
        assert_eq!(
            r.params.int(llama_sweep::knobs::N_THREADS_BATCH),
            r.params.int(llama_sweep::knobs::N_THREADS),
            "threads_batch follows threads"
        );
        assert_eq!(r.n_ctx_actual, Some(256));
        assert!(r.feasible);
        let description = r.model_description.as_deref().unwrap();
        assert!(
            description.contains(if r.model_variant == "Q8_0" {
                "Q8_0"
            } else {
                "Q4_1"
            }),
            "{description}"
        );
        assert!(r.defaulted.contains("n_ubatch") && !r.defaulted.contains("n_batch"));
    }
    let variants: HashSet<_> = rows.iter().map(|r| r.model_variant.as_str()).collect();
    assert!(
        variants.contains("Q8_0") && variants.contains("Q4_1"),
        "{variants:?}"
    );

    for r in rows.iter().filter(|r| r.model_name == "broken") {
        assert_eq!(r.status, TrialStatus::Failed);
        let error = r.error.as_deref().unwrap();
        assert!(error.contains("cannot load model"), "{error}");
        assert!(
            error.contains("llama.cpp says:"),
            "llama.cpp's own reason is kept: {error}"
        );
        assert!(!r.feasible && r.tg_tps_mean.is_none());
    }

    for r in &rows {
        let log = std::fs::read_to_string(folder.join(&r.log_file)).unwrap();
        assert!(
            log.contains("llama_model_load") || log.contains("gguf"),
            "{}: {log}",
            r.log_file
        );
    }

    // Quality: Q8_0 (the larger file) is smol's reference; Q4_1 is measured
    // against it; the broken model's quality fails and is recorded.
    let quality = llama_sweep::quality::record::read(&folder).unwrap();
    let by_variant = |name: &str, variant: &str| {
        quality
            .iter()
            .find(|q| q.model_name == name && q.model_variant == variant)
            .unwrap_or_else(|| panic!("no quality row for {name} {variant}: {quality:?}"))
    };
    let reference = by_variant("smol", "Q8_0");
    let q4 = by_variant("smol", "Q4_1");
    assert!(reference.is_reference && !q4.is_reference);
    assert_eq!(q4.reference_variant, "Q8_0");
    assert!(reference.is_ok() && q4.is_ok(), "{quality:?}");
    assert_eq!(reference.chunks, Some(3));
    assert_eq!(reference.tokens_scored, Some(3 * 63));
    assert_eq!(
        (reference.kld_mean, reference.top1_pct),
        (Some(0.0), Some(100.0))
    );
    let (ppl, kld, top1) = (q4.ppl.unwrap(), q4.kld_mean.unwrap(), q4.top1_pct.unwrap());
    assert!(ppl > 1.0 && ppl < 1000.0, "{q4:?}");
    assert!(
        kld > 0.0 && kld < 0.5,
        "Q8_0 made from Q4_1 is close to it: {q4:?}"
    );
    assert!(top1 > 50.0 && top1 <= 100.0, "{q4:?}");
    let broken_quality = quality
        .iter()
        .find(|q| q.model_name == "broken")
        .expect("the broken model's quality is recorded");
    assert_ne!(broken_quality.status, "ok");
    assert!(
        broken_quality
            .error
            .as_deref()
            .unwrap()
            .contains("cannot load model"),
        "{broken_quality:?}"
    );
    assert!(
        se.contains("quality"),
        "the quality phase says what it does: {se}"
    );
    for r in rows.iter().filter(|r| r.model_name == "smol") {
        let expected = if r.model_variant == "Q8_0" { 0.0 } else { kld };
        assert_eq!(r.kld, Some(expected), "rows carry their variant's quality");
        assert!(r.ppl.is_some() && r.top1_pct.is_some());
        let bytes = r.bytes_per_token.expect("bytes read per token");
        let size = std::fs::metadata(&r.model_path).unwrap().len();
        assert!(bytes > size / 2 && bytes < size, "{bytes} of {size}");
    }
    let bandwidth = manifest_bandwidth(&folder);
    assert!(bandwidth > 0.1 && bandwidth < 10_000.0, "{bandwidth} GB/s");

    let parquet = llama_sweep::store::parquet_file::read(&folder.join("results.parquet")).unwrap();
    assert_eq!(parquet.height(), 7);

    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap())
            .unwrap();
    let sha = format!("{:x}", Sha256::digest(std::fs::read(&sweep).unwrap()));
    assert_eq!(manifest["sweep"]["sha256"], sha.as_str());
    assert!(
        manifest["llama_cpp"]["backends"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b == "CPU")
    );
    assert!(manifest["machine"]["logical_cores"].as_u64().unwrap() >= 1);
    assert!(
        manifest["llama_cpp"]["llama_cpp_build"]
            .as_str()
            .unwrap()
            .contains("llama.cpp")
    );
    assert_eq!(manifest["trials_recorded"], 7);
    assert_eq!(
        std::fs::read_to_string(folder.join("sweep.toml")).unwrap(),
        std::fs::read_to_string(&sweep).unwrap()
    );

    // config.yaml: the best feasible trial, in llama-cpp-python's vocabulary.
    let yaml = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    let keys = check_config_yaml(&yaml);
    // The confirmation round measured the best three again and chose one
    // of them; config.yaml is that one, and says so.
    let ranked = llama_sweep::objective::Objective::default().rank(&rows);
    let recommendation =
        llama_sweep::confirm::read_recommendation(&folder).expect("recommendation.json");
    let top3: Vec<&str> = ranked
        .iter()
        .take(3)
        .map(|&i| rows[i].trial_id.as_str())
        .collect();
    assert!(
        recommendation.covers(&top3),
        "{recommendation:?} vs {top3:?}"
    );
    let best = rows
        .iter()
        .find(|r| r.trial_id == recommendation.trial_id)
        .unwrap();
    assert!(yaml.contains(&format!("trial {}", best.trial_id)), "{yaml}");
    assert!(yaml.contains("# confirmed: "), "{yaml}");
    // How the answer was reached: side by side, each subject resident,
    // three pairs of blocks, fixed here (max_pairs = 3).
    assert!(
        yaml.contains("after the 3 pairs of blocks asked for"),
        "{yaml}"
    );
    let blocks = llama_sweep::confirm::read_runs(&folder).unwrap();
    assert!(
        blocks.iter().all(|b| b.repetitions == 1),
        "one block a run: {blocks:?}"
    );
    for id in &recommendation.candidates {
        assert!(
            folder.join(format!("logs/{id}.resident.log")).is_file(),
            "{id} was resident"
        );
    }
    let get = |k: &str| {
        keys.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("n_threads"),
        Some(best.params.int(llama_sweep::knobs::N_THREADS).to_string())
    );
    // The swept trials ask n_ubatch 512 with n_batch 64; llama.cpp's
    // defaults (a trial too, and it may win) ask 512 with 2048.
    let asked = |knob| best.params.int(knob);
    let ubatch = asked(llama_sweep::knobs::N_UBATCH).min(asked(llama_sweep::knobs::N_BATCH));
    assert_eq!(
        get("n_ubatch"),
        Some(ubatch.to_string()),
        "llama.cpp clamps n_ubatch to n_batch: {yaml}"
    );
    assert_eq!(get("model_path"), Some(format!("{:?}", best.model_path)));
    assert_eq!(get("max_tokens"), Some("8".into()));

    // Exporting again from stored results, and another trial by id: a
    // swept one, whose n_ubatch 512 llama.cpp clamps to its n_batch 64.
    let other = rows
        .iter()
        .find(|r| {
            r.is_ok()
                && r.trial_id != best.trial_id
                && r.params.int(llama_sweep::knobs::N_BATCH) == 64
        })
        .unwrap();
    let exported = dir.path().join("other.yaml");
    let out = run(&[
        "export",
        folder.to_str().unwrap(),
        "--trial",
        &other.trial_id,
        "-o",
        exported.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = std::fs::read_to_string(&exported).unwrap();
    assert!(exported.contains(&other.trial_id), "{exported}");
    assert!(
        exported.contains("\n  n_ubatch: 64\n"),
        "llama.cpp clamps n_ubatch to n_batch: {exported}"
    );
    let failed = rows.iter().find(|r| !r.is_ok()).unwrap();
    let out = run(&[
        "export",
        folder.to_str().unwrap(),
        "--trial",
        &failed.trial_id,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("did not complete"),
        "{}",
        stderr(&out)
    );

    // Running again resumes: nothing left, the derived model is reused.
    let derived: Vec<_> = std::fs::read_dir(dir.path().join("models"))
        .unwrap()
        .collect();
    assert_eq!(
        derived.len(),
        1,
        "one cached derived model and no partial files"
    );
    let again = run(&["run", sweep.to_str().unwrap()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("6 already recorded, up to 0 to run"),
        "{}",
        stderr(&again)
    );
    assert!(!stderr(&again).contains("deriving"), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("confirmed earlier (same top 3)"),
        "the confirmation round is not repeated for the same top trials: {}",
        stderr(&again)
    );
    assert_eq!(read_rows(&folder).len(), 7);
}

/// The host memory bandwidth the run measured, GB/s.
fn manifest_bandwidth(folder: &std::path::Path) -> f64 {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("manifest.json")).unwrap())
            .unwrap();
    manifest["memory_bandwidth"]["gb_per_s"].as_f64().unwrap()
}
