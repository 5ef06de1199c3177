//! `init`'s choices on machines no test machine is: a 24 GB card, two
//! unequal cards, a CPU only; each proposal must also be a sweep file the
//! config accepts.

use super::*;

const GIB: u64 = 1 << 30;

fn cpu_only() -> Hardware {
    Hardware {
        logical_cores: 16,
        physical_cores: 8,
        ram_available: 64 * GIB,
        gpus: Vec::new(),
        host_gb_per_s: 60.0,
    }
}

fn with_gpus(free_gib: &[u64]) -> Hardware {
    Hardware {
        gpus: free_gib
            .iter()
            .enumerate()
            .map(|(i, &g)| Gpu {
                name: format!("CUDA{i}"),
                free_bytes: g * GIB,
            })
            .collect(),
        ..cpu_only()
    }
}

/// A 30B-A3B MoE at Q4_K_M: 48 layers of 128 experts, 17.4 GiB.
fn moe_30b() -> ModelShape {
    ModelShape {
        path: "models/Qwen3-30B-A3B-Q4_K_M.gguf".into(),
        name: "Qwen3-30B-A3B-Q4_K_M".into(),
        architecture: "qwen3moe".into(),
        file_type: Some("Q4_K_M"),
        n_layer: 48,
        n_expert: Some(128),
        layer_bytes: 16_900 << 20,
        expert_bytes: 16_000 << 20,
        other_bytes: 600 << 20,
        n_params: 30_500_000_000,
        bytes_per_token: 1_900 << 20,
        kv_bytes_per_token: 98_304,
        n_ctx_train: 40_960,
    }
}

/// A dense 8B in F16: 32 layers, 15 GiB.
fn dense_8b_f16() -> ModelShape {
    ModelShape {
        path: "models/Llama-3.1-8B-Instruct-F16.gguf".into(),
        name: "Llama-3.1-8B-Instruct-F16".into(),
        architecture: "llama".into(),
        file_type: Some("F16"),
        n_layer: 32,
        n_expert: None,
        layer_bytes: 13_000 << 20,
        expert_bytes: 0,
        other_bytes: 2_000 << 20,
        n_params: 8_000_000_000,
        bytes_per_token: 14_000 << 20,
        kv_bytes_per_token: 131_072,
        n_ctx_train: 131_072,
    }
}

/// A dense 70B at Q4_K_M: 80 layers, 40 GiB.
fn dense_70b() -> ModelShape {
    ModelShape {
        path: "models/Llama-3.3-70B-Instruct-Q4_K_M.gguf".into(),
        name: "Llama-3.3-70B-Instruct-Q4_K_M".into(),
        architecture: "llama".into(),
        file_type: Some("Q4_K_M"),
        n_layer: 80,
        n_expert: None,
        layer_bytes: 39_000 << 20,
        expert_bytes: 0,
        other_bytes: 1_500 << 20,
        n_params: 70_600_000_000,
        bytes_per_token: 40_000 << 20,
        kv_bytes_per_token: 327_680,
        n_ctx_train: 131_072,
    }
}

fn wishes() -> Wishes {
    Wishes {
        goal: Goal::Generation,
        budget: Duration::from_secs(2 * 3600),
        app_python: None,
        app_python_runs: None,
        users: 1,
        context: None,
        prompt: None,
        answer_tokens: None,
    }
}

fn ints(list: &str) -> Vec<i64> {
    list.trim_matches(['[', ']'])
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect()
}

/// The proposal, written and read back by the config as a sweep file.
fn accepted(p: &Proposal) -> crate::config::SweepConfig {
    let dir = tempfile::tempdir().unwrap();
    let model = p.value("model", "path").unwrap().trim_matches('"');
    let path = dir.path().join(model);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"GGUF").unwrap();
    let text = render::sweep_file(p, "llama-sweep init");
    crate::config::parse(&dir.path().join("sweep.toml"), &text)
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
}

#[test]
fn a_cpu_only_machine_sweeps_threads_and_batch_sizes() {
    let p = propose(&moe_30b(), &cpu_only(), &wishes());
    assert_eq!(p.value("space", "n_gpu_layers"), Some("0"));
    assert_eq!(
        p.value("space", "n_cpu_moe"),
        None,
        "no GPU: nothing to keep back"
    );
    assert_eq!(ints(p.value("space", "n_threads").unwrap()), [4, 8, 16]);
    assert!(ints(p.value("space", "n_ubatch").unwrap()).len() >= 2);
    assert!(p.findings[0].starts_with("CPU only"), "{:?}", p.findings);
    assert_eq!(
        p.value("model", "quantize"),
        None,
        "a Q4_K_M file is not requantized"
    );
    assert_eq!(p.value("quality", "measure"), Some("false"), "one variant");
    let c = accepted(&p);
    assert!(c.models[0].quantize.is_empty());
}

#[test]
fn an_moe_model_too_big_for_a_24_gb_card_keeps_some_experts_in_host_memory() {
    // 17.4 GiB of weights and 0.4 GiB of KV cache fit in 20.2 GiB usable
    // (the next test): a long context is what overflows.
    let hw = with_gpus(&[23]);
    let p = propose(
        &moe_30b(),
        &hw,
        &Wishes {
            context: Some(40_960),
            ..wishes()
        },
    );
    assert_eq!(p.value("space", "n_gpu_layers"), Some("-1"));
    let ncmoe = ints(p.value("space", "n_cpu_moe").expect("n_cpu_moe is swept"));
    assert_eq!(ncmoe.len(), 3, "{ncmoe:?}");
    // 3.75 GiB of KV cache: 21.2 GiB needed, ~1 GiB over; a layer's
    // experts are 1/3 GiB, so about 3 layers' stay in host memory.
    assert!((2..=5).contains(&ncmoe[0]), "{ncmoe:?}");
    assert!(ncmoe.windows(2).all(|w| w[0] < w[1]), "{ncmoe:?}");
    assert!(
        p.value("space", "type_k").is_some(),
        "a full GPU tries a q8_0 cache"
    );
    // 3 n_cpu_moe × 3 n_threads × 2 n_ubatch × 2 flash_attn × 2 type_k × 2
    // type_v, less the quarter llama.cpp refuses (a q8_0 V cache without
    // flash attention).
    assert_eq!(p.trials, 108);
    assert!(
        p.value("workload", "n_depth").is_some(),
        "a long context is measured at depth"
    );
    accepted(&p);
}

#[test]
fn the_same_model_fits_a_24_gb_card_with_a_short_context() {
    let p = propose(&moe_30b(), &with_gpus(&[23]), &wishes());
    let c = accepted(&p);
    assert_eq!(c.sweep.strategy, crate::config::StrategyKind::Grid);
    assert_eq!(p.value("space", "n_gpu_layers"), Some("-1"));
    assert!(
        p.findings[0].contains("fit in the GPU's 23.0 GiB free"),
        "{:?}",
        p.findings
    );
    assert_eq!(
        p.value("space", "n_threads"),
        Some("8"),
        "one value: the GPU works"
    );
}

#[test]
fn a_dense_model_that_overflows_the_card_sweeps_layers_around_where_it_stops_fitting() {
    let p = propose(&dense_70b(), &with_gpus(&[23]), &wishes());
    let layers = ints(p.value("space", "n_gpu_layers").unwrap());
    // 20.2 GiB usable over ~0.5 GiB a layer: about 40 of 80.
    assert!((35..=45).contains(layers.last().unwrap()), "{layers:?}");
    assert_eq!(layers.len(), 3);
    assert!(p.value("space", "n_threads").unwrap().starts_with('['));
    accepted(&p);
}

#[test]
fn two_unequal_cards_hold_what_one_cannot_and_sweep_how_to_split() {
    let p = propose(&dense_70b(), &with_gpus(&[23, 11]), &wishes());
    let layers = ints(p.value("space", "n_gpu_layers").unwrap());
    assert!((55..=70).contains(layers.last().unwrap()), "{layers:?}");
    let p = propose(&moe_30b(), &with_gpus(&[23, 11]), &wishes());
    assert_eq!(p.value("space", "n_gpu_layers"), Some("-1"));
    assert_eq!(p.value("space", "split_mode"), Some("[\"layer\", \"row\"]"));
    assert!(p.findings[0].contains("2 GPUs"), "{:?}", p.findings);
    accepted(&p);
}

#[test]
fn an_f16_file_gets_quantizations_to_derive_and_a_quality_bound() {
    let p = propose(&dense_8b_f16(), &with_gpus(&[23]), &wishes());
    assert_eq!(
        p.value("model", "quantize"),
        Some("[\"Q8_0\", \"Q6_K\", \"Q5_K_M\", \"Q4_K_M\"]")
    );
    assert_eq!(p.value("model", "include_source"), Some("false"));
    assert_eq!(p.value("objective", "kld_max"), Some("0.05"));
    let c = accepted(&p);
    assert_eq!(c.models[0].quantize.len(), 4);
}

#[test]
fn several_users_get_n_parallel_and_a_context_for_each() {
    let p = propose(
        &moe_30b(),
        &with_gpus(&[80]),
        &Wishes {
            goal: Goal::Throughput,
            users: 6,
            ..wishes()
        },
    );
    assert_eq!(p.value("space", "n_parallel"), Some("[1, 2, 4, 6]"));
    assert_eq!(p.value("space", "n_ctx"), Some("24576"));
    assert_eq!(p.value("objective", "metric"), Some("\"output_tps\""));
    accepted(&p);
}

#[test]
fn a_space_larger_than_the_budget_is_searched_not_run_in_full() {
    let short = Wishes {
        budget: Duration::from_secs(1800),
        goal: Goal::FirstToken,
        ..wishes()
    };
    let p = propose(&dense_70b(), &cpu_only(), &short);
    assert!(p.estimate.total_s > 1800.0, "{:?}", p.estimate);
    assert_eq!(p.value("sweep", "strategy"), Some("\"bayes\""));
    assert_eq!(p.value("sweep", "max_hours"), Some("0.5"));
    let c = accepted(&p);
    assert_eq!(c.sweep.strategy, crate::config::StrategyKind::Bayes);
    let long = Wishes {
        budget: Duration::from_secs(1000 * 3600),
        ..short
    };
    assert_eq!(
        propose(&dense_70b(), &cpu_only(), &long).value("sweep", "strategy"),
        Some("\"grid\"")
    );
}

#[test]
fn the_first_guess_is_bound_by_memory_bandwidth() {
    let p = propose(&dense_70b(), &cpu_only(), &wishes());
    // 39 GiB a token at 60 GB/s × 0.4: about 0.6 t/s.
    assert!((0.5..1.5).contains(&p.estimate.tg_tps), "{:?}", p.estimate);
    assert_eq!(estimate::human(40.0), "40 s");
    assert_eq!(estimate::human(720.0), "12 min");
    assert_eq!(estimate::human(12_000.0), "3 h 20 min");
}

#[test]
fn the_file_says_why_each_key_is_there() {
    let p = propose(&moe_30b(), &with_gpus(&[23]), &wishes());
    let text = render::sweep_file(&p, "llama-sweep init x.gguf");
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.contains(" = ") && !line.starts_with('#') {
            assert!(
                lines[i - 1].starts_with("# "),
                "no reason above {line:?}:\n{text}"
            );
        }
        assert!(line.chars().count() <= 80, "{line:?}\n{text}");
    }
    assert!(text.contains("# [app]\n# python = "), "{text}");
}

/// Issue 36, items 11 and 12: the guess counts each part as it really runs
/// (every user's prompt; the confirmation's subjects, each loaded once and
/// measured a request a pair, or whole trials a round) and says the split.
#[test]
fn the_guess_counts_every_users_prompt_and_the_confirmation_as_it_runs() {
    let model = dense_8b_f16();
    let hw = cpu_only();
    let place = placing::place(&model, &hw, 0);
    let sizes = |users: u32, confirm: estimate::ConfirmShape| estimate::Sizes {
        prompt_tokens: 512,
        gen_tokens: 128,
        request_prompt_tokens: 512,
        request_max_tokens: 256,
        warmup: 1,
        repetitions: 3,
        depth: 0,
        users,
        confirm,
    };
    let extras = estimate::Extras {
        variants: 1,
        derived: false,
        quality: false,
    };
    let none = estimate::ConfirmShape {
        subjects: 0,
        resident: true,
        first_look: 10,
    };
    let time = |s: &estimate::Sizes| estimate::sweep_time(&model, &hw, &place, s, 8, extras);
    let one = time(&sizes(1, none));
    let eight = time(&sizes(8, none));
    assert!(
        eight.per_trial_s > one.per_trial_s * 1.5,
        "eight users' prompts: {eight:?} against {one:?}"
    );
    assert_eq!(one.confirmation_s, 0.0);
    // Resident: 5 subjects, each loaded and warmed up once, then 10
    // requests; rounds: 3 rounds of 5 whole trials with 6 repetitions.
    let resident = time(&sizes(
        1,
        estimate::ConfirmShape {
            subjects: 5,
            resident: true,
            first_look: 10,
        },
    ));
    let rounds = time(&sizes(
        1,
        estimate::ConfirmShape {
            subjects: 5,
            resident: false,
            first_look: 3,
        },
    ));
    let load_s = estimate::load_s(&model);
    let run_s = (one.per_trial_s - load_s) / 4.0;
    let expect_rounds = 5.0 * 3.0 * (load_s + 7.0 * run_s);
    assert!(
        (rounds.confirmation_s / expect_rounds - 1.0).abs() < 1e-9,
        "{rounds:?} against {expect_rounds}"
    );
    assert!(
        resident.confirmation_s < rounds.confirmation_s / 2.0,
        "{resident:?}"
    );
    assert_eq!(
        resident.total_s,
        resident.trials_s + resident.references_s + resident.confirmation_s + resident.quality_s
    );
    let split = resident.split();
    assert!(
        split.starts_with("trials ") && split.contains(", confirmation "),
        "{split}"
    );
}

#[test]
fn an_app_python_that_imports_llama_cpp_runs_the_trials_when_llama_can_take_the_sweep() {
    let mut w = wishes();
    w.app_python = Some("/bin/sh".into());
    w.app_python_runs = Some("llama-cpp-python 0.3.36 (llama.cpp 0.5.0-dev; CPU only)".into());
    let p = propose(&dense_8b_f16(), &cpu_only(), &w);
    assert_eq!(p.value("sweep", "runtime"), Some("\"python\""));
    assert!(p.value("app", "python").is_some());
    let c = accepted(&p);
    assert_eq!(c.trial_runtime.name(), Some("llama-cpp-python"));
    // Several users: Llama() serves one at a time, so llama-sweep's own
    // llama.cpp runs the trials, and the proposal says why.
    w.users = 4;
    let p = propose(&dense_8b_f16(), &cpu_only(), &w);
    assert_eq!(p.value("sweep", "runtime"), None);
    assert!(
        p.findings
            .iter()
            .any(|f| f.contains("serves one request at a time")),
        "{:?}",
        p.findings
    );
    // An interpreter without llama_cpp proposes nothing of the kind.
    w.users = 1;
    w.app_python_runs = None;
    assert_eq!(
        propose(&dense_8b_f16(), &cpu_only(), &w).value("sweep", "runtime"),
        None
    );
}
