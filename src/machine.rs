//! Facts about the machine a sweep runs on (CPU, cores, memory, OS), read from
//! /proc and uname, and the environment variables that change llama.cpp's
//! speed, for the manifest. llama.cpp's own view (backends, devices) comes
//! from a probe child, not from here.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub hostname: String,
    pub os: String,
    pub kernel: String,
    pub arch: String,
    pub cpu_model: String,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    pub memory_total_bytes: Option<u64>,
    /// The environment variables set for this run that change how
    /// llama.cpp runs (see [`speed_env`]), as `NAME=value`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speed_env: Vec<String>,
}

/// The prefixes of the variables that change llama.cpp's speed: OpenMP's
/// (ggml takes its thread count from OpenMP: OMP_THREAD_LIMIT=1 makes every
/// trial single-threaded), ggml's and llama.cpp's own, the BLAS libraries'
/// thread counts, and which GPUs the backends see.
const SPEED_ENV_PREFIXES: [&str; 11] = [
    "OMP_",
    "GOMP_",
    "KMP_",
    "GGML_",
    "LLAMA_",
    "OPENBLAS_",
    "MKL_",
    "CUDA_",
    "HIP_",
    "ROCR_",
    "ONEAPI_",
];

/// The variables of `vars` that change llama.cpp's speed, sorted, as
/// `NAME=value`; llama-sweep's own (`LLAMA_SWEEP_*`) are not llama.cpp's.
pub fn speed_env(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let mut found: Vec<String> = vars
        .filter(|(name, _)| {
            SPEED_ENV_PREFIXES.iter().any(|p| name.starts_with(p))
                && !name.starts_with("LLAMA_SWEEP_")
                && name != "CUDA_HOME"
                && name != "CUDA_PATH"
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    found.sort();
    found
}

/// Whether a `speed_env` entry only picks devices (the device itself is
/// in the machine's fingerprint): a worker pinned to GPU 1 is the same
/// machine as one pinned to GPU 0 of the same kind.
pub fn selects_devices(entry: &str) -> bool {
    entry
        .split_once('=')
        .is_some_and(|(name, _)| name.ends_with("_VISIBLE_DEVICES"))
}

impl Machine {
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
        let (sysname, release, hostname) = uname();
        Machine {
            hostname,
            os: os_release
                .lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or(sysname),
            kernel: release,
            arch: std::env::consts::ARCH.to_string(),
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            logical_cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            physical_cores: physical_cores(&cpuinfo),
            memory_total_bytes: memory_total(&meminfo),
            speed_env: speed_env(std::env::vars()),
        }
    }
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (key, value) = line.split_once(':')?;
    (key.trim() == name).then(|| value.trim())
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|l| field(l, "model name").or_else(|| field(l, "Model")))
        .map(str::to_string)
}

/// Distinct (physical id, core id) pairs; `None` where /proc does not say.
fn physical_cores(cpuinfo: &str) -> Option<usize> {
    let mut cores = std::collections::HashSet::new();
    let mut physical = None;
    for line in cpuinfo.lines() {
        if let Some(v) = field(line, "physical id") {
            physical = Some(v.to_string());
        } else if let Some(v) = field(line, "core id") {
            cores.insert((physical.clone(), v.to_string()));
        }
    }
    (!cores.is_empty()).then_some(cores.len())
}

fn memory_total(meminfo: &str) -> Option<u64> {
    meminfo_bytes(meminfo, "MemTotal")
}

/// Memory available to a new process now (`MemAvailable`: free memory plus
/// the caches the kernel can drop), in bytes; `None` where /proc does not
/// say.
pub fn memory_available() -> Option<u64> {
    meminfo_bytes(
        &std::fs::read_to_string("/proc/meminfo").ok()?,
        "MemAvailable",
    )
}

fn meminfo_bytes(meminfo: &str, name: &str) -> Option<u64> {
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| field(l, name))?
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn uname() -> (String, String, String) {
    // SAFETY: utsname is plain data filled by the kernel; its fields are
    // NUL-terminated.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return ("unknown".into(), "unknown".into(), "unknown".into());
    }
    let s = |f: &[libc::c_char]| {
        unsafe { std::ffi::CStr::from_ptr(f.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    };
    (s(&u.sysname), s(&u.release), s(&u.nodename))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPUINFO: &str = "processor\t: 0\nmodel name\t: Test CPU @ 3GHz\nphysical id\t: 0\ncore id\t\t: 0\n\n\
                           processor\t: 1\nmodel name\t: Test CPU @ 3GHz\nphysical id\t: 0\ncore id\t\t: 0\n\n\
                           processor\t: 2\nmodel name\t: Test CPU @ 3GHz\nphysical id\t: 0\ncore id\t\t: 1\n";

    #[test]
    fn parses_cpuinfo_and_meminfo() {
        assert_eq!(cpu_model(CPUINFO).as_deref(), Some("Test CPU @ 3GHz"));
        assert_eq!(physical_cores(CPUINFO), Some(2));
        assert_eq!(physical_cores("processor : 0\n"), None);
        assert_eq!(
            memory_total("MemTotal:       24576000 kB\n"),
            Some(24576000 * 1024)
        );
        assert_eq!(
            meminfo_bytes("MemTotal: 8 kB\nMemAvailable:   4 kB\n", "MemAvailable"),
            Some(4096)
        );
    }

    #[test]
    fn the_variables_that_change_speed_are_picked_and_sorted() {
        let vars = [
            ("PATH", "/bin"),
            ("OMP_THREAD_LIMIT", "1"),
            ("GGML_CUDA_FORCE_MMQ", "1"),
            ("LLAMA_SWEEP_TEST_RUNTIMES", "required"),
            ("LLAMA_ARG_THREADS", "4"),
            ("CUDA_VISIBLE_DEVICES", "1"),
            ("CUDA_HOME", "/usr/local/cuda"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let found = speed_env(vars.into_iter());
        assert_eq!(
            found,
            [
                "CUDA_VISIBLE_DEVICES=1",
                "GGML_CUDA_FORCE_MMQ=1",
                "LLAMA_ARG_THREADS=4",
                "OMP_THREAD_LIMIT=1"
            ]
        );
        assert!(selects_devices(&found[0]) && !selects_devices(&found[3]));
    }

    #[test]
    fn detect_reads_this_machine() {
        let m = Machine::detect();
        assert!(m.logical_cores >= 1);
        assert!(!m.kernel.is_empty());
    }
}
