//! Why the app's figure differs from the sweep's, from recorded facts only:
//! pure rules, unit-tested on the cases users meet (a llama-cpp-python
//! built CPU-only on a GPU machine, fewer layers offloaded, a process
//! confined to fewer CPUs than it starts threads, another llama.cpp, time
//! spent outside llama.cpp). Each cause says what to do. `doctor` uses the
//! offload rule before any trial runs.

use crate::runtime::{RuntimeInfo, RuntimeKind};
use crate::stats::RatioInterval;
use serde::{Deserialize, Serialize};

/// Within this many percent either way, and sure of it, the app runs at
/// the sweep's speed.
pub const SAME_WITHIN: f64 = 0.05;
/// An undecided interval no wider than this either way still bounds the
/// gap, and says so.
const NO_WIDER_THAN: f64 = 0.25;
/// Below this share of the runtime's own counter, the client's clock shows
/// time spent outside llama.cpp's decoding.
const OVERHEAD_BELOW: f64 = 0.90;

/// How the app's figure compares with the sweep's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Slower, and the interval says so.
    Slower,
    /// Faster, and the interval says so.
    Faster,
    /// Within `SAME_WITHIN` either way, and the interval says so.
    Same,
    /// The interval is too wide to tell.
    Unclear,
}

impl Verdict {
    pub fn of(ratio: &RatioInterval) -> Verdict {
        match (ratio.low, ratio.high) {
            (Some(l), Some(h)) if l >= 1.0 - SAME_WITHIN && h <= 1.0 + SAME_WITHIN => Verdict::Same,
            (Some(_), Some(h)) if h < 1.0 => Verdict::Slower,
            (Some(l), Some(_)) if l > 1.0 => Verdict::Faster,
            _ => Verdict::Unclear,
        }
    }

    /// The verdict in words, with what an undecided interval (`bounds`,
    /// low and high) still says: 0.94–1.07× is a result (within 7% either
    /// way), not a shrug.
    pub fn reading(self, bounds: Option<(f64, f64)>) -> String {
        if self != Verdict::Unclear {
            return self.phrase().to_string();
        }
        match bounds {
            Some((low, high)) if (1.0 - low).max(high - 1.0) <= NO_WIDER_THAN => {
                // Up to the next whole percent, past float noise.
                let pct = |x: f64| (x * 100.0 - 1e-6).ceil().max(0.0);
                format!(
                    "no difference shown: between {:.0}% slower and {:.0}% faster than the \
                     sweep measured",
                    pct(1.0 - low),
                    pct(high - 1.0)
                )
            }
            Some((low, high)) => format!(
                "too noisy to tell from the sweep's figure (it may be {low:.2}× to {high:.2}×)"
            ),
            None => "too few rounds to tell from the sweep's figure".to_string(),
        }
    }

    pub fn phrase(self) -> &'static str {
        match self {
            Verdict::Slower => "slower than the sweep measured",
            Verdict::Faster => "faster than the sweep measured",
            Verdict::Same => "as fast as the sweep measured (within 5%)",
            Verdict::Unclear => "too noisy to tell from the sweep's figure",
        }
    }
}

/// A likely reason for a gap, and what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    /// Short name, for tests and scripts: `cannot-offload`, `fewer-layers`,
    /// `fewer-cpus`, `threads`, `overhead`, `llama-cpp-version`.
    pub kind: String,
    /// What the evidence shows.
    pub what: String,
    /// What to do.
    pub fix: String,
}

/// The facts about one configuration in one app runtime, beside the same
/// configuration in llama-sweep's runtime, measured in the same rounds.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub app: &'a RuntimeInfo,
    pub sweep: &'a RuntimeInfo,
    /// App over sweep generation t/s, paired over the rounds.
    pub ratio: Option<RatioInterval>,
    /// The configuration's n_gpu_layers (negative: all).
    pub asked_gpu_layers: i64,
    /// `(offloaded, total)` as each runtime's llama.cpp logged it.
    pub sweep_layers: Option<(u32, u32)>,
    pub app_layers: Option<(u32, u32)>,
    /// The configuration's n_threads, and what each runtime ran with.
    pub config_threads: i64,
    pub app_threads: Option<i32>,
    /// The CPUs each runtime's process could run on.
    pub sweep_cpus: Option<u32>,
    pub app_cpus: Option<u32>,
    /// Client-clock over own-counter generation t/s in the app's runtime.
    pub app_client_share: Option<f64>,
}

/// The causes the facts support, strongest first. Facts that are wrong
/// whatever the figures (a runtime that cannot offload what the sweep
/// offloaded, fewer layers, too few CPUs) are always named; the others only
/// when the app differs beyond the noise: another thread count, other
/// instruction sets or another llama.cpp either way, time outside llama.cpp
/// when it is slower.
pub fn diagnose(f: &Facts) -> Vec<Cause> {
    let mut causes = Vec::new();
    let sweep_offloaded = f.sweep_layers.map_or(0, |(n, _)| n);
    if let Some(cause) = cannot_offload(f.app, f.sweep, f.asked_gpu_layers, sweep_offloaded) {
        causes.push(cause);
    } else if let Some(cause) = sweep_did_not_offload(f, sweep_offloaded) {
        causes.push(cause);
    } else if let (Some((app, total)), true) = (f.app_layers, sweep_offloaded > 0) {
        if app < sweep_offloaded {
            causes.push(Cause {
                kind: "fewer-layers".into(),
                what: format!(
                    "{} offloaded {app}/{total} layers to the GPU; the sweep ran {sweep_offloaded}",
                    f.app.kind
                ),
                fix:
                    "check that n_gpu_layers reaches the runtime as exported and that the GPU has \
                      as much free memory when the app starts as during the sweep"
                        .into(),
            });
        }
    }
    let threads = f.app_threads.map_or(f.config_threads, i64::from);
    if let Some(cpus) = f.app_cpus {
        let sweep_cpus = f.sweep_cpus.unwrap_or(cpus);
        if i64::from(cpus) < threads || cpus < sweep_cpus.min(threads.max(1) as u32) {
            causes.push(Cause {
                kind: "fewer-cpus".into(),
                what: format!(
                    "{} could run on {cpus} CPU(s) but starts {threads} threads{}: the threads \
                     take turns instead of running side by side",
                    f.app.kind,
                    match f.sweep_cpus {
                        Some(s) if s != cpus => format!(" (the sweep ran on {s})"),
                        _ => String::new(),
                    }
                ),
                fix: format!(
                    "give the app's process the CPUs the sweep had (taskset, a container's CPU \
                     limit or a cgroup confines it), or set n_threads to {cpus} and sweep under \
                     the same limit"
                ),
            });
        }
    }
    let verdict = f.ratio.as_ref().map(Verdict::of);
    let slower = verdict == Some(Verdict::Slower);
    if !slower && verdict != Some(Verdict::Faster) {
        return causes;
    }
    if let Some(app_threads) = f.app_threads {
        if i64::from(app_threads) != f.config_threads {
            causes.push(Cause {
                kind: "threads".into(),
                what: format!(
                    "{} ran {app_threads} threads; the configuration says {}",
                    f.app.kind, f.config_threads
                ),
                fix: "pass n_threads as exported; a runtime that picks its own count uses \
                      another one"
                    .into(),
            });
        }
    }
    if let Some(share) = f.app_client_share.filter(|s| slower && *s < OVERHEAD_BELOW) {
        causes.push(Cause {
            kind: "overhead".into(),
            what: format!(
                "{:.0}% of the time between tokens is spent outside llama.cpp's decoding in {} \
                 (its own counters are {:.0}% faster than its client saw): sampling, \
                 detokenizing, the {} layer",
                (1.0 - share) * 100.0,
                f.app.kind,
                (1.0 / share - 1.0) * 100.0,
                if f.app.kind == RuntimeKind::Python {
                    "Python"
                } else {
                    "HTTP"
                }
            ),
            fix: "no llama.cpp setting changes this; a lighter sampler chain or streaming fewer, \
                  larger chunks does"
                .into(),
        });
    }
    let missing = missing_cpu_features(&f.app.system_info, &f.sweep.system_info);
    if !missing.is_empty() {
        let what = format!(
            "{}'s llama.cpp was compiled without instruction sets this CPU has and llama-sweep's \
             build uses ({}): its CPU kernels are other code",
            f.app.kind,
            missing.join(", ")
        );
        causes.push(if slower {
            Cause {
                kind: "cpu-features".into(),
                what,
                fix: native_rebuild_command(f.app),
            }
        } else {
            Cause {
                kind: "cpu-features".into(),
                what: format!("{what}, and here the plainer ones are faster"),
                fix: "trust the verified figure for the app; to rank configurations with the \
                      app's kernels, build llama-sweep without `-C target-cpu=native` \
                      (.cargo/config.toml), which builds its llama.cpp without GGML_NATIVE"
                    .into(),
            }
        });
    }
    if let (Some(app), Some(sweep)) = (release_of(&f.app.llama_cpp), release_of(&f.sweep.llama_cpp))
    {
        if app != sweep {
            causes.push(Cause {
                kind: "llama-cpp-version".into(),
                what: format!(
                    "another llama.cpp: the sweep measured {}, {} runs {}",
                    f.sweep.llama_cpp, f.app.kind, f.app.llama_cpp
                ),
                fix: "kernels change between versions: build the app's runtime from the llama.cpp \
                      the sweep used, or sweep with the app's"
                    .into(),
            });
        }
    }
    if slower && causes.is_empty() {
        let (compared, not_compared) = compared(f);
        let not = if not_compared.is_empty() {
            String::new()
        } else {
            format!(" ({} could not be compared)", list(&not_compared))
        };
        let what = if compared.is_empty() {
            format!(
                "nothing that was compared explains it{not}: what is left is {}'s own work \
                 around each token",
                f.app.kind
            )
        } else {
            format!(
                "no difference in {} explains it{not}: what is left is {}'s own work around \
                 each token",
                list(&compared),
                f.app.kind
            )
        };
        causes.push(Cause {
            kind: "unexplained".into(),
            what: format!(
                "{what} (its sampler chain, detokenizing, streaming{})",
                if f.app.kind == RuntimeKind::Server {
                    "; llama-server's default sampler chain is longer than llama-cpp-python's"
                } else {
                    ""
                }
            ),
            fix: "compare the runtime's log in verify/ with llama-sweep's; if the gap matters, \
                  sweep in the app's runtime so that the ranking includes it"
                .into(),
        });
    }
    causes
}

/// What the facts let the diagnosis compare between the two runtimes, and
/// what they do not: a runtime that did not say its release (llama-server's
/// build numbers are another scheme), its instruction sets, threads, CPUs
/// or layers offloaded.
fn compared(f: &Facts) -> (Vec<&'static str>, Vec<&'static str>) {
    let checks = [
        (
            "llama.cpp release",
            release_of(&f.app.llama_cpp).is_some() && release_of(&f.sweep.llama_cpp).is_some(),
        ),
        (
            "instruction sets",
            !cpu_features(&f.app.system_info).is_empty()
                && !cpu_features(&f.sweep.system_info).is_empty(),
        ),
        ("threads", f.app_threads.is_some()),
        ("CPUs", f.app_cpus.is_some()),
        (
            "layers offloaded",
            f.app_layers.is_some() && f.sweep_layers.is_some(),
        ),
    ];
    let mut compared = Vec::new();
    let mut not = Vec::new();
    for (what, known) in checks {
        if known {
            compared.push(what);
        } else {
            not.push(what);
        }
    }
    (compared, not)
}

/// `a, b or c`.
fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The app put layers on a GPU and llama-sweep's build could not (or did
/// not): the sweep measured the configuration on the CPU, which is not what
/// the app runs, whatever the figures say.
fn sweep_did_not_offload(f: &Facts, sweep_offloaded: u32) -> Option<Cause> {
    let app_offloaded = f.app_layers.map_or(0, |(n, _)| n);
    let sweep_could_not = !f.sweep.supports_gpu_offload && sweep_offloaded == 0;
    if !sweep_could_not
        || !(app_offloaded > 0 || (f.app.supports_gpu_offload && f.asked_gpu_layers != 0))
    {
        return None;
    }
    let backend = f.app.backends.first().map_or("cuda", String::as_str);
    let feature = match backend.to_ascii_lowercase().as_str() {
        "vulkan" => "vulkan",
        "metal" | "mtl" => "metal",
        _ => "cuda",
    };
    Some(Cause {
        kind: "sweep-cannot-offload".into(),
        what: format!(
            "{} put {app_offloaded} layers on the GPU, but llama-sweep's build has no GPU \
             backend and offloaded none: the sweep measured the configuration on the CPU, not \
             what the app runs",
            f.app.kind
        ),
        fix: format!(
            "build llama-sweep for the GPU (cargo build --release --features {feature}; see \
             docs/gpus-and-clusters.md) and sweep again: its ranking of CPU runs says nothing \
             about the GPU"
        ),
    })
}

/// A runtime that cannot put layers on a GPU while the configuration asks
/// for GPU layers and the sweep's llama.cpp offloaded some (or could): the
/// case of a llama-cpp-python that a plain `pip install` built CPU-only.
pub fn cannot_offload(
    app: &RuntimeInfo,
    sweep: &RuntimeInfo,
    asked_gpu_layers: i64,
    sweep_offloaded: u32,
) -> Option<Cause> {
    if app.supports_gpu_offload || asked_gpu_layers == 0 {
        return None;
    }
    if sweep_offloaded == 0 && !sweep.supports_gpu_offload {
        return None;
    }
    let measured = if sweep_offloaded > 0 {
        format!("the sweep ran {sweep_offloaded} layers on the GPU")
    } else {
        format!(
            "the configuration asks for GPU layers and llama-sweep's build can offload ({})",
            sweep.backends.join(", ")
        )
    };
    Some(Cause {
        kind: "cannot-offload".into(),
        what: format!(
            "{} was built without a GPU backend and cannot offload (llama_supports_gpu_offload() \
             is false): every layer runs on the CPU, whatever n_gpu_layers says, while {measured}",
            app.version
        ),
        fix: rebuild_command(app, sweep),
    })
}

/// The command that rebuilds `app` with the GPU backend llama-sweep's build
/// has (CUDA when it names none).
pub fn rebuild_command(app: &RuntimeInfo, sweep: &RuntimeInfo) -> String {
    let flag = cmake_flag(sweep.backends.first().map_or("CUDA", String::as_str));
    match app.kind {
        RuntimeKind::Python => {
            let version = app.version.strip_prefix("llama-cpp-python ").unwrap_or("");
            let pin = if version.is_empty() || version == "unknown" {
                String::new()
            } else {
                format!("=={version}")
            };
            format!(
                "reinstall it with the backend compiled in: CMAKE_ARGS=\"{flag}=on\" {} -m pip \
                 install --force-reinstall --no-cache-dir llama-cpp-python{pin}",
                crate::export::shell::quote(&app.program)
            )
        }
        _ => format!(
            "use a llama-server built with the backend: cmake -B build {flag}=ON && cmake --build \
             build --target llama-server"
        ),
    }
}

/// The cmake option that compiles ggml's `backend` in.
fn cmake_flag(backend: &str) -> &'static str {
    match backend.to_ascii_uppercase().as_str() {
        "VULKAN" => "-DGGML_VULKAN",
        "METAL" | "MTL" => "-DGGML_METAL",
        "ROCM" | "HIP" => "-DGGML_HIP",
        "SYCL" => "-DGGML_SYCL",
        _ => "-DGGML_CUDA",
    }
}

/// The release a llama.cpp version string names (`0.6.0-dev` of
/// `llama.cpp 0.6.0-dev (vendored by ...)` or of `0.5.0-dev (llama-cpp-python
/// 0.3.36's own)`), when it names one in that form; llama-server's build
/// numbers are another scheme and compare with nothing here.
fn release_of(version: &str) -> Option<&str> {
    let word = version
        .trim()
        .trim_start_matches("llama.cpp ")
        .split_whitespace()
        .next()?;
    let numeric = word.split('-').next()?;
    (numeric.split('.').count() == 3 && numeric.split('.').all(|p| p.parse::<u32>().is_ok()))
        .then_some(word)
}

/// The CPU instruction sets llama.cpp's system info says its CPU backend
/// was compiled with (`CPU : SSE3 = 1 | AVX2 = 1 | ...`).
fn cpu_features(system_info: &str) -> Vec<&str> {
    system_info
        .split('|')
        .skip_while(|part| !part.trim_start().starts_with("CPU :"))
        .map(|part| part.trim().trim_start_matches("CPU :").trim())
        .take_while(|part| !part.contains(" : "))
        .filter_map(|part| part.strip_suffix("= 1").map(str::trim))
        .filter(|name| !name.is_empty())
        .collect()
}

/// Instruction sets in `sweep`'s CPU backend that `app`'s lacks (both
/// known); build options such as OPENMP or REPACK are not instruction sets.
pub fn missing_cpu_features(app: &str, sweep: &str) -> Vec<String> {
    let (app, sweep) = (cpu_features(app), cpu_features(sweep));
    if app.is_empty() || sweep.is_empty() {
        return Vec::new();
    }
    const NOT_ISA: [&str; 4] = ["OPENMP", "REPACK", "LLAMAFILE", "ACCELERATE"];
    sweep
        .into_iter()
        .filter(|f| !app.contains(f) && !NOT_ISA.contains(f))
        .map(str::to_string)
        .collect()
}

/// The command that rebuilds `app` for this CPU.
pub fn native_rebuild_command(app: &RuntimeInfo) -> String {
    match app.kind {
        RuntimeKind::Python => format!(
            "reinstall it compiled for this CPU: CMAKE_ARGS=\"-DGGML_NATIVE=on\" {} -m pip install \
             --force-reinstall --no-cache-dir llama-cpp-python{}",
            crate::export::shell::quote(&app.program),
            app.version
                .strip_prefix("llama-cpp-python ")
                .map(|v| format!("=={v}"))
                .unwrap_or_default()
        ),
        _ => "build llama-server on this machine with cmake -DGGML_NATIVE=ON".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(kind: RuntimeKind, version: &str, llama_cpp: &str, gpu: bool) -> RuntimeInfo {
        RuntimeInfo {
            kind,
            program: "/app/venv/bin/python".into(),
            version: version.into(),
            llama_cpp: llama_cpp.into(),
            backends: if gpu { vec!["CUDA".into()] } else { Vec::new() },
            supports_gpu_offload: gpu,
            devices: Vec::new(),
            system_info: String::new(),
        }
    }

    fn ratio(r: f64, low: f64, high: f64) -> Option<RatioInterval> {
        Some(RatioInterval {
            ratio: r,
            low: Some(low),
            high: Some(high),
        })
    }

    fn facts<'a>(app: &'a RuntimeInfo, sweep: &'a RuntimeInfo) -> Facts<'a> {
        Facts {
            app,
            sweep,
            ratio: ratio(1.0, 0.98, 1.02),
            asked_gpu_layers: -1,
            sweep_layers: Some((0, 31)),
            app_layers: Some((0, 31)),
            config_threads: 2,
            app_threads: Some(2),
            sweep_cpus: Some(2),
            app_cpus: Some(2),
            app_client_share: Some(0.97),
        }
    }

    fn kinds(causes: &[Cause]) -> Vec<&str> {
        causes.iter().map(|c| c.kind.as_str()).collect()
    }

    #[test]
    fn a_cpu_only_llama_cpp_python_on_a_gpu_sweep_is_named_with_the_reinstall_command() {
        // The case llama-sweep was started for: every layer "on the GPU",
        // 6.56 t/s in the app, 20x less than the sweep measured.
        let app = info(
            RuntimeKind::Python,
            "llama-cpp-python 0.3.36",
            "b6500",
            false,
        );
        let sweep = info(RuntimeKind::Sweep, "llama-sweep 0.1.0", "b6500", true);
        let f = Facts {
            ratio: ratio(0.05, 0.04, 0.06),
            sweep_layers: Some((29, 29)),
            app_layers: Some((0, 29)),
            ..facts(&app, &sweep)
        };
        let causes = diagnose(&f);
        assert_eq!(kinds(&causes), ["cannot-offload"], "{causes:?}");
        // Word for word as docs/verify.md shows it.
        assert_eq!(
            causes[0].what,
            "llama-cpp-python 0.3.36 was built without a GPU backend and cannot offload \
             (llama_supports_gpu_offload() is false): every layer runs on the CPU, whatever \
             n_gpu_layers says, while the sweep ran 29 layers on the GPU"
        );
        assert_eq!(
            causes[0].fix,
            "reinstall it with the backend compiled in: CMAKE_ARGS=\"-DGGML_CUDA=on\" \
             /app/venv/bin/python -m pip install --force-reinstall --no-cache-dir \
             llama-cpp-python==0.3.36"
        );
    }

    /// Issue 36, item 3: a CUDA llama-cpp-python against a CPU-only
    /// llama-sweep build: the sweep measured the wrong thing, named as such
    /// whatever the figures say.
    #[test]
    fn an_app_that_offloads_what_the_sweep_could_not_is_named_with_the_gpu_build() {
        let app = info(
            RuntimeKind::Python,
            "llama-cpp-python 0.3.36",
            "0.5.0-dev",
            true,
        );
        let sweep = info(
            RuntimeKind::Sweep,
            "llama-sweep",
            "llama.cpp 0.6.0-dev",
            false,
        );
        let mut f = facts(&app, &sweep);
        f.sweep_layers = Some((0, 31));
        f.app_layers = Some((31, 31));
        f.ratio = ratio(5.0, 4.5, 5.5);
        let causes = diagnose(&f);
        assert_eq!(kinds(&causes)[0], "sweep-cannot-offload", "{causes:?}");
        assert!(
            causes[0].what.contains("put 31 layers on the GPU"),
            "{causes:?}"
        );
        assert!(causes[0].fix.contains("--features cuda"), "{causes:?}");
        // Named however the figures came out.
        f.ratio = ratio(1.0, 0.98, 1.02);
        assert_eq!(kinds(&diagnose(&f)), ["sweep-cannot-offload"]);
    }

    /// Issue 36, item 4: "unexplained" says only what was compared: an
    /// upstream llama-server names no release this can read and prints no
    /// system info.
    #[test]
    fn unexplained_names_only_what_was_compared() {
        let app = info(
            RuntimeKind::Server,
            "version: 6500 (abc1234)",
            "6500 (abc1234)",
            false,
        );
        let mut sweep = info(
            RuntimeKind::Sweep,
            "llama-sweep",
            "llama.cpp 0.6.0-dev",
            false,
        );
        sweep.system_info = "CPU : SSE3 = 1 | AVX2 = 1 | ".into();
        let mut f = facts(&app, &sweep);
        f.ratio = ratio(0.7, 0.6, 0.8);
        f.app_threads = Some(4);
        f.config_threads = 4;
        f.app_cpus = Some(4);
        let causes = diagnose(&f);
        assert_eq!(kinds(&causes), ["unexplained"], "{causes:?}");
        let what = &causes[0].what;
        assert!(
            what.starts_with("no difference in threads, CPUs or layers offloaded explains it"),
            "{what}"
        );
        assert!(
            what.contains("(llama.cpp release or instruction sets could not be compared)"),
            "{what}"
        );
    }

    #[test]
    fn a_cpu_only_sweep_is_not_an_offload_problem() {
        let app = info(
            RuntimeKind::Python,
            "llama-cpp-python 0.3.36",
            "b6500",
            false,
        );
        let sweep = info(RuntimeKind::Sweep, "llama-sweep", "b6500", false);
        assert!(diagnose(&facts(&app, &sweep)).is_empty());
        assert!(cannot_offload(&app, &sweep, -1, 0).is_none());
        // llama-sweep's build can offload though this sweep asked for none.
        let gpu_sweep = info(RuntimeKind::Sweep, "llama-sweep", "b6500", true);
        assert!(cannot_offload(&app, &gpu_sweep, 0, 0).is_none());
        assert!(cannot_offload(&app, &gpu_sweep, 33, 0).is_some());
    }

    #[test]
    fn fewer_layers_and_fewer_cpus_are_named_whatever_the_noise() {
        let app = info(
            RuntimeKind::Server,
            "llama-server 6500 (abc)",
            "6500 (abc)",
            true,
        );
        let sweep = info(RuntimeKind::Sweep, "llama-sweep", "b6500", true);
        let f = Facts {
            ratio: ratio(0.9, 0.7, 1.2),
            sweep_layers: Some((31, 31)),
            app_layers: Some((20, 31)),
            app_cpus: Some(1),
            ..facts(&app, &sweep)
        };
        let causes = diagnose(&f);
        assert_eq!(kinds(&causes), ["fewer-layers", "fewer-cpus"], "{causes:?}");
        assert!(
            causes[1]
                .what
                .contains("could run on 1 CPU(s) but starts 2 threads (the sweep ran on 2)"),
            "{}",
            causes[1].what
        );
    }

    #[test]
    fn a_real_gap_names_threads_overhead_and_another_llama_cpp() {
        let app = info(
            RuntimeKind::Python,
            "llama-cpp-python 0.3.36",
            "0.5.0-dev (llama-cpp-python 0.3.36's own)",
            false,
        );
        let sweep = info(
            RuntimeKind::Sweep,
            "llama-sweep",
            "llama.cpp 0.6.0-dev (vendored by llama-cpp-sys-2 0.1.161)",
            false,
        );
        let f = Facts {
            ratio: ratio(0.8, 0.75, 0.85),
            app_threads: Some(1),
            app_cpus: Some(2),
            app_client_share: Some(0.8),
            ..facts(&app, &sweep)
        };
        let causes = diagnose(&f);
        assert_eq!(
            kinds(&causes),
            ["threads", "overhead", "llama-cpp-version"],
            "{causes:?}"
        );
        assert!(
            causes[1].what.starts_with("20% of the time between tokens"),
            "{}",
            causes[1].what
        );
        // Faster beyond the noise: another llama.cpp, not time lost.
        let faster = Facts {
            ratio: ratio(1.37, 1.26, 1.49),
            ..f.clone()
        };
        assert_eq!(kinds(&diagnose(&faster)), ["threads", "llama-cpp-version"]);
        // Slower with nothing in the evidence: said so, not guessed.
        let same = RuntimeInfo {
            llama_cpp: sweep.llama_cpp.clone(),
            ..app.clone()
        };
        let bare = Facts {
            app: &same,
            app_threads: Some(2),
            app_client_share: Some(0.98),
            ..f.clone()
        };
        assert_eq!(kinds(&diagnose(&bare)), ["unexplained"]);
        // An app built for fewer instruction sets runs other kernels: named
        // first, either way, with a fix that fits the direction.
        let plain = RuntimeInfo {
            system_info: "CPU : SSE3 = 1 | AVX2 = 1 | OPENMP = 1 | ".into(),
            ..app.clone()
        };
        let native = RuntimeInfo {
            system_info: "CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | OPENMP = 1 | ".into(),
            ..sweep.clone()
        };
        let faster_plain = Facts {
            app: &plain,
            sweep: &native,
            app_threads: Some(2),
            ..faster.clone()
        };
        let causes = diagnose(&faster_plain);
        assert_eq!(kinds(&causes), ["cpu-features", "llama-cpp-version"]);
        assert!(
            causes[0].what.contains("(AVX512)") && causes[0].fix.contains("target-cpu=native"),
            "{causes:?}"
        );
        let slower_plain = Facts {
            ratio: ratio(0.8, 0.75, 0.85),
            ..faster_plain.clone()
        };
        let causes = diagnose(&slower_plain);
        assert_eq!(causes[0].kind, "overhead");
        assert!(
            causes
                .iter()
                .any(|c| c.kind == "cpu-features" && c.fix.contains("GGML_NATIVE=on")),
            "{causes:?}"
        );
        // Within the noise, only hard facts are named.
        let noisy = Facts {
            ratio: ratio(0.8, 0.5, 1.3),
            ..f.clone()
        };
        assert!(diagnose(&noisy).is_empty());
    }

    #[test]
    fn verdicts_need_the_interval_to_decide() {
        assert_eq!(
            Verdict::of(&ratio(0.8, 0.75, 0.85).unwrap()),
            Verdict::Slower
        );
        assert_eq!(Verdict::of(&ratio(1.2, 1.1, 1.3).unwrap()), Verdict::Faster);
        assert_eq!(
            Verdict::of(&ratio(0.99, 0.96, 1.02).unwrap()),
            Verdict::Same
        );
        assert_eq!(
            Verdict::of(&ratio(0.97, 0.90, 1.04).unwrap()),
            Verdict::Unclear
        );
        let one_round = RatioInterval {
            ratio: 0.5,
            low: None,
            high: None,
        };
        assert_eq!(Verdict::of(&one_round), Verdict::Unclear);
    }

    #[test]
    fn an_undecided_verdict_says_what_its_interval_still_bounds() {
        let read = |r: Option<RatioInterval>| {
            let verdict = r.as_ref().map_or(Verdict::Unclear, Verdict::of);
            verdict.reading(r.and_then(|r| r.low.zip(r.high)))
        };
        assert_eq!(
            read(ratio(1.01, 0.94, 1.07)),
            "no difference shown: between 6% slower and 7% faster than the sweep measured"
        );
        assert_eq!(
            read(ratio(0.8, 0.5, 1.3)),
            "too noisy to tell from the sweep's figure (it may be 0.50× to 1.30×)"
        );
        let one_round = RatioInterval {
            ratio: 0.5,
            low: None,
            high: None,
        };
        assert_eq!(
            read(Some(one_round)),
            "too few rounds to tell from the sweep's figure"
        );
        assert_eq!(
            read(ratio(0.8, 0.75, 0.85)),
            "slower than the sweep measured"
        );
    }

    #[test]
    fn releases_are_compared_where_both_name_one() {
        assert_eq!(
            release_of("llama.cpp 0.6.0-dev (vendored by llama-cpp-sys-2 0.1.161)"),
            Some("0.6.0-dev")
        );
        assert_eq!(
            release_of("0.5.0-dev (llama-cpp-python 0.3.36's own)"),
            Some("0.5.0-dev")
        );
        assert_eq!(
            release_of("0.6.0-dev (build 30, commit 64d23ce)"),
            Some("0.6.0-dev")
        );
        assert_eq!(release_of("6500 (abc1234)"), None);
        assert_eq!(cmake_flag("Vulkan"), "-DGGML_VULKAN");
    }

    #[test]
    fn instruction_sets_the_app_was_built_without_are_named() {
        let sweep = "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_VNNI = 1 | OPENMP = 1 | REPACK = 1 | ";
        let app =
            "CPU : SSE3 = 1 | AVX = 1 | AVX2 = 1 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | ";
        assert_eq!(missing_cpu_features(app, sweep), ["AVX512", "AVX512_VNNI"]);
        assert!(missing_cpu_features(sweep, sweep).is_empty());
        assert!(
            missing_cpu_features("", sweep).is_empty(),
            "unknown is not missing"
        );
        let gpu = "CUDA : ARCHS = 890 | USE_GRAPHS = 1 | CPU : SSE3 = 1 | AVX2 = 1 | ";
        assert_eq!(cpu_features(gpu), ["SSE3", "AVX2"]);
    }
}
