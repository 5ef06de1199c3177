//! Facts about the machine a sweep runs on (CPU, cores, memory, OS), read from
//! /proc and uname, for the manifest. llama.cpp's own view (backends,
//! devices) comes from a probe child, not from here.

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
    fn detect_reads_this_machine() {
        let m = Machine::detect();
        assert!(m.logical_cores >= 1);
        assert!(!m.kernel.is_empty());
    }
}
