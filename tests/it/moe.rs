//! Placement knobs on a mixture-of-experts model, on the CPU: a sweep over
//! n_cpu_moe, load_mode, poll and op_offload runs; n_cpu_moe = k moves
//! exactly the expert tensors of the first k layers; override_tensor rules
//! apply and a wrong buffer type is a failed row that names the right
//! ones; the GPU knobs are validated, recorded and exported, with a plain
//! warning that they do nothing here; llama.cpp's --fit says why it is not
//! measured; and the exports carry every knob.

use crate::support::*;
use llama_sweep::knobs;
use llama_sweep::runner::TrialStatus;
use llama_sweep::store::row::TrialRow;
use std::path::Path;

/// The tensors llama.cpp's log says an override placed, with their buffer.
fn overridden_in_log(folder: &Path, row: &TrialRow) -> Vec<String> {
    let log = std::fs::read_to_string(folder.join(&row.log_file)).unwrap();
    log.lines()
        .filter_map(|l| l.strip_prefix("tensor "))
        .filter(|l| l.contains("buffer type overridden to"))
        .map(|l| {
            let name = l.split(' ').next().unwrap();
            let buft = l.rsplit(' ').next().unwrap();
            format!("{name}={buft}")
        })
        .collect()
}

#[test]
fn a_sweep_over_moe_placement_runs_on_cpu_and_its_exports_carry_every_knob() {
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("moe", &moe_model(), "");
    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = 2\nn_cpu_moe = [0, 2]\nload_mode = [\"mmap\", \"none\"]\npoll = [0, 50]\nop_offload = [true, false]",
        "[confirm]\ntop = 0",
    );
    let out = run(&["run", sweep.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for knob in ["poll", "op_offload"] {
        assert!(
            err.contains(&format!("warning: {knob} has no effect here")),
            "{knob}: {err}"
        );
    }
    assert!(
        err.contains("llama.cpp's --fit: it changes nothing: this llama.cpp offers no GPU"),
        "{err}"
    );
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let planned: Vec<&TrialRow> = rows
        .iter()
        .filter(|r| !r.is_defaulted(knobs::N_CPU_MOE))
        .collect();
    assert_eq!(planned.len(), 16, "the grid: 2 × 2 × 2 × 2");
    for row in &planned {
        assert_eq!(row.status, TrialStatus::Ok, "{:?}", row.error);
        let placed = overridden_in_log(&folder, row);
        if row.params.int(knobs::N_CPU_MOE) == 2 {
            let mut expected: Vec<String> = (0..2)
                .flat_map(|l| {
                    ["gate", "down", "up"].map(|p| format!("blk.{l}.ffn_{p}_exps.weight=CPU"))
                })
                .collect();
            let mut got = placed.clone();
            expected.sort();
            got.sort();
            assert_eq!(
                got, expected,
                "the expert tensors of layers 0 and 1, nothing else"
            );
            assert_eq!(row.overridden.as_deref(), Some("6 tensors to CPU"));
        } else {
            assert!(placed.is_empty(), "{placed:?}");
            assert_eq!(row.overridden, None);
        }
        let weights = row.weights.as_deref().unwrap_or_default();
        let expected_buffer = match row.params.text(knobs::LOAD_MODE) {
            "mmap" => "CPU_Mapped",
            _ => "CPU ",
        };
        // After the CPU's extra buffers (AMX, CPU_REPACK) where it has them.
        assert!(weights.contains(expected_buffer), "{weights}");
    }
    let manifest = std::fs::read_to_string(folder.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"fit\""), "the fit outcome is kept");

    // The exports of a trial that set every new knob away from its default.
    let chosen = planned
        .iter()
        .find(|r| {
            r.params.int(knobs::N_CPU_MOE) == 2
                && r.params.text(knobs::LOAD_MODE) == "none"
                && r.params.int(knobs::POLL) == 0
                && !r.params.flag(knobs::OP_OFFLOAD)
        })
        .unwrap();
    let args = export(&folder, &chosen.trial_id, "server-args");
    for flag in [
        "--n-cpu-moe 2",
        "--load-mode none",
        "--poll 0",
        "--no-op-offload",
    ] {
        assert!(args.contains(flag), "{flag}: {args}");
    }
    let yaml = export(&folder, &chosen.trial_id, "yaml");
    assert!(
        yaml.contains("  use_mmap: false\n") && yaml.contains("  op_offload: false\n"),
        "{yaml}"
    );
    assert!(
        yaml.contains("# WARNING: llama-cpp-python's Llama() cannot be given"),
        "{yaml}"
    );
    assert!(
        yaml.contains("--n-cpu-moe 2"),
        "the header names llama-server's equivalent: {yaml}"
    );
    let env = export(&folder, &chosen.trial_id, "env");
    assert!(env.contains("LLAMA_ARG_N_CPU_MOE=2"), "{env}");
}

#[test]
fn override_rules_place_tensors_and_a_wrong_buffer_type_names_the_right_ones() {
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("moe", &moe_model(), "");
    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = 1\nload_mode = \"none\"\noverride_tensor = [\"blk\\\\.3\\\\.ffn_up_exps=CPU\", \"token_embd=NOPE\"]",
        "[confirm]\ntop = 0",
    );
    let out = run(&["run", sweep.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let rule = |text: &str| {
        rows.iter()
            .find(|r| r.params.text(knobs::OVERRIDE_TENSOR) == text)
            .unwrap_or_else(|| panic!("{text}: {rows:?}"))
    };
    let placed = rule("blk\\.3\\.ffn_up_exps=CPU");
    assert_eq!(placed.status, TrialStatus::Ok, "{:?}", placed.error);
    assert_eq!(
        overridden_in_log(&folder, placed),
        ["blk.3.ffn_up_exps.weight=CPU"]
    );
    let wrong = rule("token_embd=NOPE");
    assert_eq!(wrong.status, TrialStatus::Failed);
    let error = wrong.error.as_deref().unwrap();
    assert!(
        error.contains("no buffer type \"NOPE\"") && error.contains("CPU"),
        "{error}"
    );
}

#[test]
fn gpu_knobs_on_a_cpu_build_are_validated_recorded_and_exported_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("moe", &moe_model(), "");
    let bad = sweep_file(dir.path(), &models, "tensor_split = [[1, 0, -1]]", "");
    let out = run(&["plan", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("space.tensor_split"),
        "{}",
        stderr(&out)
    );

    let sweep = sweep_file(
        dir.path(),
        &models,
        "n_threads = 1\ntensor_split = [[1, 1], \"3/1\"]\nsplit_mode = [\"layer\", \"row\"]\nmain_gpu = 0\ndevices = \"none\"",
        "[confirm]\ntop = 0",
    );
    let out = run(&["run", sweep.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for knob in ["tensor_split", "split_mode"] {
        assert!(
            err.contains(&format!(
                "warning: {knob} has no effect here: this llama.cpp build offers no GPU"
            )),
            "{knob}: {err}"
        );
    }
    let folder = dir.path().join("reports/it");
    let rows = read_rows(&folder);
    let mut split: Vec<&str> = rows
        .iter()
        .filter(|r| !r.is_defaulted(knobs::TENSOR_SPLIT))
        .map(|r| r.params.text(knobs::TENSOR_SPLIT))
        .collect();
    split.sort_unstable();
    assert_eq!(
        split,
        ["1,1", "1,1", "3,1", "3,1"],
        "recorded as canonical lists"
    );
    let row = rows
        .iter()
        .find(|r| {
            r.params.text(knobs::TENSOR_SPLIT) == "3,1" && r.params.text(knobs::SPLIT_MODE) == "row"
        })
        .unwrap();
    assert_eq!(row.status, TrialStatus::Ok, "{:?}", row.error);
    let args = export(&folder, &row.trial_id, "server-args");
    for flag in ["-ts 3,1", "-sm row", "-mg 0", "-dev none"] {
        assert!(args.contains(flag), "{flag}: {args}");
    }
    let yaml = export(&folder, &row.trial_id, "yaml");
    assert!(
        yaml.contains("  tensor_split: [3.0,1.0]") && yaml.contains("  split_mode: 2  # row"),
        "{yaml}"
    );
}

#[test]
fn doctor_plans_each_placement_and_says_what_fit_would_do() {
    let dir = tempfile::tempdir().unwrap();
    let models = model_table("moe", &moe_model(), "");
    let sweep = sweep_file(dir.path(), &models, "n_cpu_moe = [0, 2]", "");
    let out = run(&["doctor", sweep.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("memory plan"), "{text}");
    assert!(
        text.contains("ngl 0 ncmoe 0") && text.contains("ngl 0 ncmoe 2"),
        "{text}"
    );
    assert!(text.contains("llama.cpp's --fit"), "{text}");
    assert!(
        text.contains("it changes nothing: this llama.cpp offers no GPU"),
        "{text}"
    );
}
