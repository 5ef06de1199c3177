//! `llama-sweep doctor`: what this machine and this build of llama.cpp can do
//! for a sweep's models, before any trial runs. It gathers the llama.cpp
//! build (from a probe child), the CPU and memory, the measured memory
//! bandwidth and each model's header facts; `render` prints them and
//! `warnings` says what to fix first. Nothing is written.

mod render;
mod warnings;

use crate::bandwidth::{self, Bandwidth};
use crate::cli::DoctorArgs;
use crate::config::{self, SweepConfig};
use crate::knobs::{self, KvType};
use crate::machine::{self, Machine};
use crate::models::gguf::GgufHeader;
use crate::models::placement::{self, MemoryPlan, Placement};
use crate::models::{self, quant_types};
use crate::protocol::ModelVariant;
use crate::protocol::ProbeReport;
use crate::runner::child::ChildRunner;
use crate::selftest::{self, Attempt};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The context the memory estimate uses when neither `--n-ctx` nor a sweep
/// gives one.
const DEFAULT_N_CTX: u32 = 4096;
const DEFAULT_SWEEP: &str = "sweep.toml";

/// Everything the doctor found, for `render` and `warnings`.
pub struct Findings {
    /// The sweep file read, and whether it was the implicit ./sweep.toml.
    pub sweep: Option<(PathBuf, bool)>,
    /// llama.cpp's report, or why the probe child failed.
    pub llama: Result<ProbeReport, String>,
    pub machine: Machine,
    pub ram_available: Option<u64>,
    /// The 1-minute load average before anything was measured.
    pub load_average: Option<f64>,
    /// What other processes used, and how much a fixed piece of CPU work
    /// varies, measured first (`machine_load::idle_noise`).
    pub noise: Option<crate::machine_load::IdleNoise>,
    /// NVIDIA GPUs the kernel driver lists, whatever this build can use.
    pub nvidia_gpus: Vec<String>,
    pub bandwidth: Bandwidth,
    pub estimate: Estimate,
    pub models: Vec<ModelCheck>,
    /// The sweep's settings that put layers on a GPU, e.g.
    /// `[space] n_gpu_layers = -1`.
    pub gpu_requests: Vec<String>,
    /// Every n_ctx the sweep asks for.
    pub sweep_n_ctx: Vec<u32>,
    /// The backend self-test of each model, with repacking on and off.
    pub backend: Vec<BackendTest>,
    /// What llama.cpp's `--fit` would change, per model.
    pub fits: Vec<(String, crate::fit::FitSummary)>,
    /// The app's runtimes (`--python`, `--server`, the sweep's `[app]`):
    /// what each is and can do, or why it cannot be used.
    pub app: Vec<AppRuntimeCheck>,
}

/// One of the app's runtimes, probed.
pub struct AppRuntimeCheck {
    pub kind: crate::runtime::RuntimeKind,
    pub program: String,
    pub info: Result<crate::runtime::RuntimeInfo, String>,
    /// The sweep's trials run in it (`[sweep] runtime`).
    pub runs_trials: bool,
}

/// The backend self-test of one model: llama.cpp's default (weights
/// repacked into the CPU's extra buffer types) and plain CPU kernels.
pub struct BackendTest {
    pub label: String,
    pub repack_on: Attempt,
    pub repack_off: Attempt,
}

/// The context and KV cache types memory is estimated for.
pub struct Estimate {
    pub n_ctx: u32,
    /// Where n_ctx came from, e.g. "the sweep's largest n_ctx".
    pub n_ctx_from: &'static str,
    pub type_k: KvType,
    pub type_v: KvType,
    /// The sweep's placements, each model's memory is planned for.
    pub placements: Vec<Placement>,
    /// Free memory of each GPU device (none: a CPU-only build).
    pub gpu_free: Vec<u64>,
}

pub struct ModelCheck {
    /// `<name> <variant>` for a sweep's model, the file name for `--model`.
    pub label: String,
    pub path: PathBuf,
    pub state: ModelState,
}

impl ModelCheck {
    /// The model as a child job loads it, when its file is there to load.
    fn variant(&self) -> Option<ModelVariant> {
        matches!(self.state, ModelState::Ready(_)).then(|| ModelVariant {
            name: self.label.clone(),
            variant: String::new(),
            path: self.path.clone(),
            identity: String::new(),
        })
    }
}

pub enum ModelState {
    Ready(Box<ModelFacts>),
    /// A derived quantization `run` has not made yet.
    NotDerived {
        source: PathBuf,
        quant: &'static str,
    },
    Unreadable(String),
}

/// What a model's header says, and what follows from it.
pub struct ModelFacts {
    pub architecture: String,
    pub name: Option<String>,
    pub layers: Option<u32>,
    pub parameters: u64,
    pub file_type: String,
    pub file_bytes: u64,
    pub weight_bytes: Option<u64>,
    pub bytes_per_token: Option<u64>,
    pub n_ctx_train: Option<u32>,
    pub kv_cache_bytes: Option<u64>,
    /// Where each of the sweep's placements puts weights and KV cache.
    pub plans: Vec<(Placement, MemoryPlan)>,
}

impl ModelFacts {
    /// Weights and KV cache at the estimate's context (the file size stands
    /// in for weights of an unknown type).
    pub fn memory_needed(&self) -> u64 {
        self.weight_bytes.unwrap_or(self.file_bytes) + self.kv_cache_bytes.unwrap_or(0)
    }
}

pub fn run(args: &DoctorArgs) -> anyhow::Result<()> {
    let load_average = load_average();
    let noise = Some(crate::machine_load::idle_noise(30));
    let mut sweep = match &args.sweep {
        Some(path) => Some((path.clone(), false)),
        None => Path::new(DEFAULT_SWEEP)
            .is_file()
            .then(|| (PathBuf::from(DEFAULT_SWEEP), true)),
    };
    let config = match &sweep {
        Some((path, implicit)) => match config::load(path) {
            Ok(config) => Some(config),
            // The models named on the command line are checked whatever
            // state the folder's sweep file is in (the demo's names a model
            // not fetched yet); one named with --sweep must be right.
            Err(e) if *implicit && !args.models.is_empty() => {
                eprintln!(
                    "warning: ./{DEFAULT_SWEEP} is not read, the --model files are checked \
                     without it: {e}"
                );
                sweep = None;
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    if config.is_none() && args.models.is_empty() {
        eprintln!("note: no sweep.toml here and no --model: only the machine is checked");
    }
    let llama = probe();
    let gpu_free: Vec<u64> = llama.as_ref().map_or_else(
        |_| Vec::new(),
        |p| p.accelerators().map(|d| d.memory_free_bytes).collect(),
    );
    let estimate = estimate(args, config.as_ref(), gpu_free);
    let mut models = Vec::new();
    for path in &args.models {
        let label = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        models.push(check_model(label, path, &estimate));
    }
    if let Some(config) = &config {
        for planned in models::plan_variants(config)? {
            let v = &planned.variant;
            let label = format!("{} {}", v.name, v.variant);
            models.push(match &planned.derive_from {
                Some((source, quant)) if !planned.is_ready() => ModelCheck {
                    label,
                    path: v.path.clone(),
                    state: ModelState::NotDerived {
                        source: source.clone(),
                        quant: quant.name,
                    },
                },
                _ => check_model(label, &v.path, &estimate),
            });
        }
    }
    let (backend, fits) = match &llama {
        Ok(_) => (backend_tests(args, &models)?, fits(&models, &estimate)?),
        Err(_) => (Vec::new(), Vec::new()),
    };
    let default_ngl = llama
        .as_ref()
        .ok()
        .map(|p| p.defaults.int(knobs::N_GPU_LAYERS));
    let mut runtimes = args.app.runtimes();
    if runtimes.is_empty() {
        runtimes = config
            .as_ref()
            .map(|c| c.app.runtimes.clone())
            .unwrap_or_default();
    }
    let trials_in = config.as_ref().and_then(|c| c.trial_runtime.name());
    let findings = Findings {
        app: app_runtimes(&runtimes, trials_in),
        gpu_requests: config
            .as_ref()
            .map_or_else(Vec::new, |c| warnings::gpu_requests(c, default_ngl)),
        sweep_n_ctx: config.as_ref().map_or_else(Vec::new, sweep_n_ctx),
        sweep,
        llama,
        machine: Machine::detect(),
        ram_available: machine::memory_available(),
        load_average,
        noise,
        nvidia_gpus: nvidia_gpus(),
        bandwidth: bandwidth::measure_host(),
        estimate,
        models,
        backend,
        fits,
    };
    print!("{}", render::render(&findings));
    Ok(())
}

/// Probes each of the app's runtimes; a log is kept (and named) only where
/// the probe failed.
/// `runtimes`, each probed; `trials_in`: the runtime the sweep's trials
/// run in, by name.
fn app_runtimes(
    runtimes: &crate::config::AppRuntimes,
    trials_in: Option<&str>,
) -> Vec<AppRuntimeCheck> {
    crate::runtime::named(runtimes)
        .iter()
        .map(|runtime| {
            let log = std::env::temp_dir().join(format!(
                "llama-sweep-doctor-{}-{}.log",
                std::process::id(),
                runtime.kind()
            ));
            let info = runtime.probe(&log).map_err(|e| e.to_string());
            if info.is_ok() {
                let _ = std::fs::remove_file(&log);
                let _ = std::fs::remove_file(log.with_extension("devices.log"));
            }
            AppRuntimeCheck {
                kind: runtime.kind(),
                program: runtime.program(),
                info,
                runs_trials: trials_in == Some(runtime.kind().name()),
            }
        })
        .collect()
}

/// The self-test of every model that can be loaded, with repacking on and
/// off. Logs go to a temporary folder, kept (and named) only where a test
/// failed.
fn backend_tests(args: &DoctorArgs, models: &[ModelCheck]) -> anyhow::Result<Vec<BackendTest>> {
    let mut children = ChildRunner::current()?;
    children.test_fault = args.test_fault;
    let logs = tempfile::Builder::new()
        .prefix("llama-sweep-doctor-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let mut tests = Vec::new();
    let mut failed = false;
    for (i, model) in models.iter().enumerate() {
        let Some(variant) = model.variant() else {
            continue;
        };
        let mut run = |repack: bool| -> anyhow::Result<Option<Attempt>> {
            let params = knobs::Params::default().with(knobs::REPACK, repack.into());
            let log = format!("selftest-{i}-repack-{repack}.log");
            selftest::try_once(&mut children, &variant, &params, logs.path(), log)
        };
        let (Some(on), Some(off)) = (run(true)?, run(false)?) else {
            break;
        };
        failed |= !on.is_ok() || !off.is_ok();
        tests.push(BackendTest {
            label: model.label.clone(),
            repack_on: on,
            repack_off: off,
        });
    }
    if failed {
        // Keep the logs of the failures, with full paths in the report.
        let kept = logs.keep();
        for t in &mut tests {
            for a in [&mut t.repack_on, &mut t.repack_off] {
                a.log = kept.join(&a.log).display().to_string();
            }
        }
    }
    Ok(tests)
}

/// What llama.cpp's `--fit` would change of llama-server's start for each
/// model that can be read, at the estimate's context.
fn fits(
    models: &[ModelCheck],
    estimate: &Estimate,
) -> anyhow::Result<Vec<(String, crate::fit::FitSummary)>> {
    let mut children = ChildRunner::current()?;
    let logs = tempfile::Builder::new()
        .prefix("llama-sweep-doctor-fit-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let mut out = Vec::new();
    for (i, model) in models.iter().enumerate() {
        let Some(variant) = model.variant() else {
            continue;
        };
        let params =
            knobs::Params::default().with(knobs::N_CTX, knobs::Value::Int(estimate.n_ctx.into()));
        // One folder per model, so that each keeps its own log.
        let folder = logs.path().join(i.to_string());
        std::fs::create_dir_all(folder.join("logs"))?;
        match crate::fit::ask(&mut children, &variant, &params, &folder)? {
            Some(mut summary) => {
                let full = folder.join(&summary.log).display().to_string();
                summary.note = summary.note.replace(&summary.log, &full);
                summary.log = full;
                out.push((model.label.clone(), summary));
            }
            None => break,
        }
    }
    // A fit that failed points at its log: the logs stay where the user
    // can read them.
    if out.iter().any(|(_, s)| s.note.contains(&s.log)) {
        let _ = logs.keep();
    }
    Ok(out)
}

/// llama.cpp's build and devices from a probe child, whose log is removed
/// when it succeeded.
fn probe() -> Result<ProbeReport, String> {
    let result = ChildRunner::current()
        .and_then(|mut runner| super::run_setup::probe(&mut runner))
        .map_err(|e| format!("{e:#}"))?;
    let (report, log) = result;
    let _ = std::fs::remove_file(log);
    Ok(report)
}

/// The most placements the memory plan shows per model.
const MAX_PLACEMENTS: usize = 8;

/// The distinct placements of the sweep's [space] (n_gpu_layers ×
/// n_cpu_moe × tensor_split × offload_kqv), or llama.cpp's defaults.
fn placements(config: Option<&SweepConfig>) -> Vec<Placement> {
    let values = |knob| {
        config
            .and_then(|c| c.space.get(knob))
            .map(<[knobs::Value]>::to_vec)
            .unwrap_or_default()
    };
    let or = |v: Vec<knobs::Value>, d: knobs::Value| if v.is_empty() { vec![d] } else { v };
    let ngl = or(values(knobs::N_GPU_LAYERS), (-1).into());
    let moe = or(values(knobs::N_CPU_MOE), 0.into());
    let split = or(
        values(knobs::TENSOR_SPLIT),
        knobs::Value::Text(knobs::lists::AUTO_SPLIT.into()),
    );
    let kqv = or(values(knobs::OFFLOAD_KQV), true.into());
    let mut out = Vec::new();
    for n in &ngl {
        for m in &moe {
            for s in &split {
                for k in &kqv {
                    out.push(Placement {
                        n_gpu_layers: n.as_int().unwrap_or(-1),
                        n_cpu_moe: m.as_int().unwrap_or(0) as u32,
                        tensor_split: knobs::lists::tensor_split_numbers(
                            s.as_str().unwrap_or_default(),
                        ),
                        offload_kqv: k.as_bool().unwrap_or(true),
                    });
                }
            }
        }
    }
    out.truncate(MAX_PLACEMENTS);
    out
}

fn estimate(args: &DoctorArgs, config: Option<&SweepConfig>, gpu_free: Vec<u64>) -> Estimate {
    let from_sweep = config.and_then(|c| sweep_n_ctx(c).into_iter().max());
    let (n_ctx, n_ctx_from) = match (args.n_ctx, from_sweep) {
        (Some(n), _) => (n, "--n-ctx"),
        (None, Some(n)) => (n, "the sweep's largest n_ctx"),
        (None, None) => (DEFAULT_N_CTX, "default"),
    };
    Estimate {
        n_ctx,
        n_ctx_from,
        type_k: args.type_k,
        type_v: args.type_v,
        placements: placements(config),
        gpu_free,
    }
}

/// Every n_ctx of the sweep's [space] and [baseline].
fn sweep_n_ctx(config: &SweepConfig) -> Vec<u32> {
    let space = config.space.get(knobs::N_CTX).unwrap_or_default();
    let baseline = config
        .baseline
        .as_ref()
        .and_then(|b| b.params.get(knobs::N_CTX));
    space
        .iter()
        .chain(baseline)
        .filter_map(|v| v.as_int().and_then(|n| u32::try_from(n).ok()))
        .collect()
}

fn check_model(label: String, path: &Path, estimate: &Estimate) -> ModelCheck {
    let state = match read_facts(path, estimate) {
        Ok(facts) => ModelState::Ready(Box::new(facts)),
        Err(e) => ModelState::Unreadable(format!("{e:#}")),
    };
    ModelCheck {
        label,
        path: path.to_path_buf(),
        state,
    }
}

fn read_facts(path: &Path, estimate: &Estimate) -> anyhow::Result<ModelFacts> {
    let header =
        GgufHeader::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let file_bytes = std::fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    let file_type = match header.file_type() {
        Some(f) => quant_types::name_of_ftype(f).map_or_else(|| format!("ftype {f}"), Into::into),
        None => "unknown".into(),
    };
    let kv = header.kv_cache_bytes(estimate.n_ctx, estimate.type_k, estimate.type_v);
    let plans = estimate
        .placements
        .iter()
        .filter_map(|p| {
            placement::plan(&header, p, kv.unwrap_or(0), &estimate.gpu_free).map(|m| (p.clone(), m))
        })
        .collect();
    Ok(ModelFacts {
        plans,
        architecture: header.architecture().unwrap_or("unknown").into(),
        name: header.str("general.name").map(Into::into),
        layers: header.block_count(),
        parameters: header.parameter_count(),
        file_type,
        file_bytes,
        weight_bytes: header.weight_bytes(),
        bytes_per_token: header.bytes_read_per_token(),
        n_ctx_train: header.n_ctx_train(),
        kv_cache_bytes: header.kv_cache_bytes(estimate.n_ctx, estimate.type_k, estimate.type_v),
    })
}

/// The 1-minute load average from /proc/loadavg.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The models of the NVIDIA GPUs the kernel driver knows, from
/// /proc/driver/nvidia/gpus/*/information; empty without the driver.
fn nvidia_gpus() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc/driver/nvidia/gpus") else {
        return Vec::new();
    };
    let mut gpus: Vec<String> = entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("information")).ok())
        .filter_map(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("Model:"))
                .map(|m| m.trim().to_string())
        })
        .collect();
    gpus.sort();
    gpus
}

#[cfg(test)]
mod tests {
    use super::{Estimate, Findings, ModelCheck, ModelFacts, ModelState};
    use crate::knobs::KvType;
    use crate::protocol::{DeviceInfo, ProbeReport};

    /// Findings for a CPU-only build (a GPU with `gpu_free_gib` free when
    /// given) and one model that needs `need_gib` of memory at n_ctx 4096,
    /// trained with a context of 2048.
    pub fn findings(need_gib: u64, gpu_free_gib: Option<u64>) -> Findings {
        const GIB: u64 = 1 << 30;
        let mut devices = Vec::new();
        if let Some(free) = gpu_free_gib {
            devices.push(DeviceInfo {
                name: "CUDA0".into(),
                description: "test GPU".into(),
                backend: "CUDA".into(),
                kind: "gpu".into(),
                memory_total_bytes: 24 * GIB,
                memory_free_bytes: free * GIB,
            });
        }
        Findings {
            sweep: None,
            app: Vec::new(),
            llama: Ok(ProbeReport {
                llama_cpp_build: "test".into(),
                system_info: String::new(),
                supports_gpu_offload: gpu_free_gib.is_some(),
                supports_mmap: true,
                backends: vec!["CPU".into()],
                devices,
                cpu_extra_buffer_types: vec!["CPU_REPACK".into()],
                defaults: crate::test_support::defaults(),
            }),
            machine: crate::machine::Machine::detect(),
            ram_available: Some(8 * GIB),
            load_average: None,
            noise: None,
            nvidia_gpus: Vec::new(),
            bandwidth: crate::bandwidth::Bandwidth {
                gb_per_s: 10.0,
                median_gb_per_s: 9.0,
                threads: 2,
                buffer_mib: 1024,
                runs: 7,
            },
            estimate: Estimate {
                n_ctx: 4096,
                n_ctx_from: "--n-ctx",
                type_k: KvType::F16,
                type_v: KvType::F16,
                placements: Vec::new(),
                gpu_free: Vec::new(),
            },
            models: vec![ModelCheck {
                label: "big".into(),
                path: "big.gguf".into(),
                state: ModelState::Ready(Box::new(ModelFacts {
                    architecture: "llama".into(),
                    name: None,
                    layers: Some(80),
                    parameters: 70_000_000_000,
                    file_type: "Q4_K_M".into(),
                    file_bytes: need_gib * GIB,
                    weight_bytes: Some(need_gib * GIB - GIB),
                    bytes_per_token: Some(need_gib * GIB - GIB),
                    n_ctx_train: Some(2048),
                    kv_cache_bytes: Some(GIB),
                    plans: Vec::new(),
                })),
            }],
            gpu_requests: Vec::new(),
            sweep_n_ctx: Vec::new(),
            fits: Vec::new(),
            backend: Vec::new(),
        }
    }
}
