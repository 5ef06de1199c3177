//! What the doctor's findings mean for a sweep, as warnings that each say
//! what to do: GPU layers asked of a build without a GPU backend, a model
//! that fits in no memory, a context beyond the model's training context.

use super::render::fmt_bytes;
use super::{Findings, ModelState};
use crate::config::SweepConfig;
use crate::knobs::{self, Value};

/// The advice for a build without GPU offload.
pub const REBUILD: &str = "rebuild with `cargo build --release --features cuda` (or vulkan, metal)";

/// The sweep's settings that put layers on a GPU: a non-zero n_gpu_layers
/// in [space] or [baseline], or one left unset where llama.cpp's default
/// (`default_ngl`) is non-zero.
pub fn gpu_requests(config: &SweepConfig, default_ngl: Option<i64>) -> Vec<String> {
    let unset = |table: &str| match default_ngl {
        Some(d) if d != 0 => Some(format!(
            "[{table}] leaves n_gpu_layers unset (llama.cpp's default: {d})"
        )),
        _ => None,
    };
    let mut requests = Vec::new();
    match config.space.get(knobs::N_GPU_LAYERS) {
        Some(values) => {
            let on_gpu: Vec<String> = values
                .iter()
                .filter_map(Value::as_int)
                .filter(|&v| v != 0)
                .map(|v| v.to_string())
                .collect();
            if !on_gpu.is_empty() {
                requests.push(format!("[space] n_gpu_layers = {}", on_gpu.join(", ")));
            }
        }
        None => requests.extend(unset("space")),
    }
    if let Some(baseline) = &config.baseline {
        match baseline.params.int(knobs::N_GPU_LAYERS) {
            Some(0) => {}
            Some(v) => requests.push(format!("[baseline] n_gpu_layers = {v}")),
            None => requests.extend(unset("baseline")),
        }
    }
    requests
}

pub fn warnings(f: &Findings) -> Vec<String> {
    let mut out = Vec::new();
    for t in &f.backend {
        match (t.repack_on.is_ok(), t.repack_off.is_ok()) {
            (false, true) => out.push(format!(
                "{}: llama.cpp's kernels fail with repack on (its default) on this machine ({}) \
                 and work with it off: sweeps force repack = false here; run llama-server with \
                 --no-repack (llama-cpp-python's Llama() cannot turn it off)",
                t.label,
                t.repack_on.detail.as_deref().unwrap_or(&t.repack_on.status)
            )),
            (_, false) => out.push(format!(
                "{}: llama.cpp's kernels fail on this machine even with repack off ({}): every \
                 trial of it would fail; see {}",
                t.label,
                t.repack_off
                    .detail
                    .as_deref()
                    .unwrap_or(&t.repack_off.status),
                t.repack_off.log
            )),
            (true, true) => {}
        }
    }
    if let Some(w) = busy(f.load_average, f.machine.logical_cores) {
        out.push(w);
    }
    if let Some(n) = f
        .noise
        .as_ref()
        .filter(|n| n.load.busy(crate::machine_load::DEFAULT_BUSY_CORES))
    {
        out.push(format!(
            "other processes use the machine now ({}): a sweep waits for them before each run \
             it keeps ([trial] busy_cores_max), and runs they disturb decide nothing",
            n.load
                .describe(n.busiest.as_ref().map(|(name, _)| name.as_str()))
        ));
    }
    match &f.llama {
        Err(e) => out.push(format!(
            "llama.cpp did not start ({e}): every trial would fail the same way; fix this first"
        )),
        Ok(probe) if !probe.supports_gpu_offload => {
            if !f.gpu_requests.is_empty() {
                out.push(format!(
                    "the sweep asks for GPU layers ({}) but this llama.cpp build has no GPU \
                     backend, so every layer runs on the CPU: {REBUILD}; on a machine without a \
                     GPU, set n_gpu_layers = 0",
                    f.gpu_requests.join("; ")
                ));
            }
            if !f.nvidia_gpus.is_empty() {
                out.push(format!(
                    "this machine has {} but this llama.cpp build cannot use it: {REBUILD}",
                    f.nvidia_gpus.join(", ")
                ));
            }
        }
        Ok(_) => {}
    }
    out.extend(app_runtime_warnings(f));
    let gpu_free = match &f.llama {
        Ok(probe) => probe
            .devices
            .iter()
            .filter(|d| d.kind.contains("gpu"))
            .map(|d| d.memory_free_bytes)
            .max(),
        Err(_) => None,
    };
    let e = &f.estimate;
    for model in &f.models {
        let facts = match &model.state {
            ModelState::Ready(facts) => facts,
            ModelState::Unreadable(e) => {
                out.push(format!(
                    "{}: {e}; a sweep of it would fail: check the path and that it is a GGUF model",
                    model.label
                ));
                continue;
            }
            ModelState::NotDerived { .. } => continue,
        };
        let need = facts.memory_needed();
        let fits_ram = f.ram_available.is_none_or(|a| need <= a);
        let fits_gpu = gpu_free.is_some_and(|free| need <= free);
        if !fits_ram && !fits_gpu {
            out.push(format!(
                "{}: weights + KV cache at n_ctx {} ({}) exceed the available memory ({} RAM{}): \
                 choose a smaller quantization, a smaller n_ctx, or a quantized KV cache \
                 (type_k/type_v = \"q8_0\")",
                model.label,
                e.n_ctx,
                fmt_bytes(need),
                fmt_bytes(f.ram_available.unwrap_or(0)),
                gpu_free.map_or(String::new(), |g| format!(
                    ", {} free on the GPU",
                    fmt_bytes(g)
                )),
            ));
        }
        if let Some(train) = facts.n_ctx_train {
            let mut asked: Vec<u32> = f.sweep_n_ctx.clone();
            if e.n_ctx_from == "--n-ctx" {
                asked.push(e.n_ctx);
            }
            if let Some(&over) = asked.iter().filter(|&&n| n > train).max() {
                out.push(format!(
                    "{}: n_ctx {over} is larger than the context it was trained with ({train}): \
                     its output degrades past that unless it is set up for context extension; \
                     use n_ctx <= {train}",
                    model.label
                ));
            }
        }
    }
    out
}

/// The app's runtimes: one that cannot be used, and one that cannot offload
/// while the sweep asks for GPU layers or llama-sweep's build can offload
/// (the app would run every layer on the CPU, whatever the sweep finds).
fn app_runtime_warnings(f: &Findings) -> Vec<String> {
    let sweep = f
        .llama
        .as_ref()
        .ok()
        .map(|p| crate::runtime::sweep_child::info_of(p, "llama-sweep"));
    let mut out = Vec::new();
    for check in &f.app {
        let info = match &check.info {
            Err(e) => {
                out.push(format!(
                    "{} ({}) cannot be used: {e}; verifying the winner in it would fail: fix this first",
                    check.kind, check.program
                ));
                continue;
            }
            Ok(info) => info,
        };
        let Some(sweep) = &sweep else { continue };
        let missing =
            crate::verify::diagnose::missing_cpu_features(&info.system_info, &sweep.system_info);
        if !missing.is_empty() {
            out.push(format!(
                "{} ({}) was compiled without instruction sets this CPU has and llama-sweep's \
                 build uses ({}): its CPU kernels differ from the ones the sweep measures, usually \
                 slower, sometimes faster (`llama-sweep verify` measures which); {}",
                info.version,
                check.program,
                missing.join(", "),
                crate::verify::diagnose::native_rebuild_command(info)
            ));
        }
        if info.supports_gpu_offload {
            continue;
        }
        let why = if !f.gpu_requests.is_empty() {
            format!(
                "the sweep asks for GPU layers ({})",
                f.gpu_requests.join("; ")
            )
        } else if sweep.supports_gpu_offload {
            format!(
                "llama-sweep's build can offload ({})",
                sweep.backends.join(", ")
            )
        } else {
            continue;
        };
        out.push(format!(
            "{} ({}) was built without a GPU backend and cannot offload, while {why}: the app \
             would run every layer on the CPU whatever n_gpu_layers says, far slower than the \
             sweep measures; {}",
            info.version,
            check.program,
            crate::verify::diagnose::rebuild_command(info, sweep)
        ));
    }
    out
}

/// A machine busy with other work reads slow: its bandwidth here, and every
/// speed a sweep measures. Busy means a 1-minute load average of at least
/// half the logical cores (and at least 1).
pub fn busy(load_average: Option<f64>, logical_cores: usize) -> Option<String> {
    let load = load_average?;
    (load >= (logical_cores as f64 / 2.0).max(1.0)).then(|| {
        format!(
            "the machine is busy (load average {load:.1} on {logical_cores} logical cores): the \
             bandwidth above, and any speed a sweep measures now, read low; run when it is idle"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::findings;
    use super::*;
    use std::path::Path;

    fn config(dir: &Path, tables: &str) -> SweepConfig {
        std::fs::write(dir.join("m.gguf"), b"GGUF").unwrap();
        let text = format!("[sweep]\nname = \"s\"\n[[model]]\npath = \"m.gguf\"\n{tables}");
        crate::config::parse(&dir.join("s.toml"), &text).unwrap()
    }

    #[test]
    fn a_model_that_fits_no_memory_is_a_warning_with_advice() {
        let w = warnings(&findings(40, None));
        assert!(
            w[0].starts_with("big: weights + KV cache at n_ctx 4096 (40.00 GiB) exceed the available memory (8.00 GiB RAM)"),
            "{w:?}"
        );
        assert!(w[0].contains("smaller quantization"), "{w:?}");
        assert!(
            warnings(&findings(4, None))
                .iter()
                .all(|w| !w.contains("exceed"))
        );
        let on_gpu = warnings(&findings(20, Some(22)));
        assert!(
            on_gpu.iter().all(|w| !w.contains("exceed")),
            "fits the GPU: {on_gpu:?}"
        );
        let neither = warnings(&findings(30, Some(22)));
        assert!(
            neither[0].contains("22.00 GiB free on the GPU"),
            "{neither:?}"
        );
    }

    #[test]
    fn an_n_ctx_past_the_training_context_is_a_warning() {
        let w = warnings(&findings(4, None));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("n_ctx 4096 is larger than the context it was trained with (2048)"));
        let mut f = findings(4, None);
        f.estimate.n_ctx_from = "default";
        assert!(warnings(&f).is_empty(), "a default n_ctx asks for nothing");
        f.sweep_n_ctx = vec![1024, 8192];
        assert!(warnings(&f)[0].contains("n_ctx 8192"));
    }

    #[test]
    fn gpu_requests_of_a_cpu_build_and_a_failed_probe_are_warnings() {
        let mut f = findings(4, None);
        f.estimate.n_ctx_from = "default";
        f.gpu_requests = vec!["[space] n_gpu_layers = -1".into()];
        let w = warnings(&f);
        assert!(w[0].contains("([space] n_gpu_layers = -1)"), "{w:?}");
        assert!(w[0].contains(REBUILD), "{w:?}");
        f.gpu_requests.clear();
        f.nvidia_gpus = vec!["NVIDIA GeForce RTX 4090".into()];
        assert!(warnings(&f)[0].starts_with("this machine has NVIDIA GeForce RTX 4090"));
        f.models[0].state = ModelState::Unreadable("cannot read big.gguf: not a GGUF file".into());
        assert!(warnings(&f)[1].starts_with("big: cannot read big.gguf: not a GGUF file; a sweep"));
        f.llama = Err("no backend".into());
        assert!(warnings(&f)[0].starts_with("llama.cpp did not start (no backend)"));
    }

    #[test]
    fn a_load_of_half_the_cores_is_busy() {
        assert!(
            busy(Some(5.2), 2)
                .unwrap()
                .contains("load average 5.2 on 2 logical cores")
        );
        assert!(busy(Some(0.9), 2).is_none());
        assert!(busy(Some(3.9), 8).is_none());
        assert!(busy(Some(4.0), 8).is_some());
        assert!(busy(None, 2).is_none());
    }

    #[test]
    fn gpu_layers_are_requests_unless_zero() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(dir.path(), "[space]\nn_gpu_layers = [0, -1, 99]\n");
        assert_eq!(
            gpu_requests(&c, Some(-1)),
            ["[space] n_gpu_layers = -1, 99"]
        );
        let c = config(dir.path(), "[space]\nn_gpu_layers = 0\n");
        assert!(gpu_requests(&c, Some(-1)).is_empty());
    }

    #[test]
    fn an_unset_gpu_layer_count_counts_when_the_default_uses_a_gpu() {
        let dir = tempfile::tempdir().unwrap();
        let c = config(
            dir.path(),
            "[space]\nn_ctx = 1024\n[baseline]\nn_ctx = 1024\n",
        );
        assert_eq!(
            gpu_requests(&c, Some(-1)),
            [
                "[space] leaves n_gpu_layers unset (llama.cpp's default: -1)",
                "[baseline] leaves n_gpu_layers unset (llama.cpp's default: -1)"
            ]
        );
        assert!(gpu_requests(&c, Some(0)).is_empty());
        assert!(gpu_requests(&c, None).is_empty());
        let c = config(
            dir.path(),
            "[space]\nn_gpu_layers = 0\n[baseline]\nn_gpu_layers = 20\n",
        );
        assert_eq!(gpu_requests(&c, Some(-1)), ["[baseline] n_gpu_layers = 20"]);
    }

    #[test]
    fn an_app_runtime_that_cannot_offload_beside_a_gpu_build_is_a_warning_with_the_fix() {
        use crate::cmd::doctor::AppRuntimeCheck;
        use crate::runtime::{RuntimeInfo, RuntimeKind};
        let python = |gpu: bool| AppRuntimeCheck {
            kind: RuntimeKind::Python,
            program: "/app/venv/bin/python".into(),
            info: Ok(RuntimeInfo {
                kind: RuntimeKind::Python,
                program: "/app/venv/bin/python".into(),
                version: "llama-cpp-python 0.3.36".into(),
                llama_cpp: "b1".into(),
                backends: Vec::new(),
                supports_gpu_offload: gpu,
                devices: Vec::new(),
                system_info: String::new(),
            }),
            runs_trials: false,
        };
        // A GPU build (a device with 20 GiB free) and a CPU-only app.
        let mut f = findings(1, Some(20));
        f.app = vec![python(false)];
        let w = warnings(&f).join("\n");
        assert!(
            w.contains(
                "llama-cpp-python 0.3.36 (/app/venv/bin/python) was built without a GPU backend"
            ),
            "{w}"
        );
        assert!(
            w.contains("--force-reinstall --no-cache-dir llama-cpp-python==0.3.36"),
            "{w}"
        );
        f.app = vec![python(true)];
        assert!(!warnings(&f).join("\n").contains("without a GPU backend"));
        // A CPU-only build asked for nothing on a GPU: nothing to say.
        let mut cpu = findings(1, None);
        cpu.app = vec![python(false)];
        assert!(!warnings(&cpu).join("\n").contains("without a GPU backend"));
        cpu.app = vec![AppRuntimeCheck {
            info: Err("python3 cannot import llama_cpp".into()),
            ..python(false)
        }];
        assert!(
            warnings(&cpu)
                .join("\n")
                .contains("cannot be used: python3 cannot import llama_cpp")
        );
    }
}
