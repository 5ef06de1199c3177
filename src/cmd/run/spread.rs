//! `run --workers`: one worker per GPU on this node (each pinned to its
//! device and, where there are enough, to its own CPUs, NUMA node by NUMA
//! node), or N workers pinned to disjoint CPU sets, started as
//! `llama-sweep worker` children; when they are done, the run itself goes
//! on as usual and finishes (leftovers, confirmation, report, config.yaml)
//! on the first worker's device and CPUs, so that it is the same machine
//! (fingerprint) as that worker's and its trials run where theirs did.
//! Parallel CPU workers without disjoint cores are refused: trials sharing
//! cores and memory bandwidth measure each other.

use super::super::run_setup;
use crate::cli::RunArgs;
use crate::exit;
use crate::runner::child::ChildRunner;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// How many workers, and what each is pinned to.
#[derive(Debug, Clone, PartialEq)]
pub enum Pin {
    /// An accelerator, by its index among llama.cpp's GPUs.
    Gpu(usize),
    /// A set of CPUs.
    Cpus(Vec<usize>),
}

/// Parses `--cpus`: sets separated by `/`, each a list of CPUs and ranges
/// (`0-7/8-15`, `0,2/1,3`).
pub fn parse_cpu_sets(text: &str) -> Result<Vec<Vec<usize>>, String> {
    let sets: Vec<Vec<usize>> = text
        .split('/')
        .map(|set| {
            let mut cpus = Vec::new();
            for part in set.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (a, b) = part.split_once('-').unwrap_or((part, part));
                let (a, b): (usize, usize) = (
                    a.trim()
                        .parse()
                        .map_err(|_| format!("{part:?} is not a CPU or range"))?,
                    b.trim()
                        .parse()
                        .map_err(|_| format!("{part:?} is not a CPU or range"))?,
                );
                if a > b {
                    return Err(format!("{part:?}: the range runs backwards"));
                }
                cpus.extend(a..=b);
            }
            if cpus.is_empty() {
                return Err("an empty CPU set".into());
            }
            Ok(cpus)
        })
        .collect::<Result<_, _>>()?;
    for (i, a) in sets.iter().enumerate() {
        for b in &sets[i + 1..] {
            if let Some(c) = a.iter().find(|c| b.contains(c)) {
                return Err(format!("CPU {c} is in two sets: the sets must be disjoint"));
            }
        }
    }
    Ok(sets)
}

/// The workers to start for `--workers` (`per-gpu` or a number) and
/// `--cpus`, given the GPUs llama.cpp sees; or why not.
pub fn pins(workers: &str, cpus: Option<&str>, gpus: usize) -> Result<Vec<Pin>, String> {
    if let Some(cpus) = cpus {
        let sets = parse_cpu_sets(cpus).map_err(|e| format!("--cpus: {e}"))?;
        if workers != "per-gpu" && workers.parse::<usize>().ok() != Some(sets.len()) {
            return Err(format!(
                "--workers {workers} with {} CPU sets in --cpus: give one set per worker",
                sets.len()
            ));
        }
        return Ok(sets.into_iter().map(Pin::Cpus).collect());
    }
    let n = match workers {
        "per-gpu" => gpus.max(1),
        n => n
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("--workers {n:?}: per-gpu or a number of workers"))?,
    };
    if gpus == 0 && n > 1 {
        return Err(format!(
            "{n} workers on a machine without a GPU would run CPU trials side by side, sharing \
             cores and memory bandwidth, and each would measure the others: give each worker its \
             own cores with --cpus (e.g. --cpus 0-7/8-15), or run one"
        ));
    }
    if n > gpus.max(1) {
        return Err(format!(
            "{n} workers for {gpus} GPU(s): one worker per GPU at most (--workers per-gpu)"
        ));
    }
    Ok((0..n).map(Pin::Gpu).collect())
}

/// Starts the workers and waits for them. `Ok(None)`: go on with the run;
/// `Ok(Some(status))`: stop with that status.
pub(super) fn spread(args: &RunArgs, workers: &str) -> anyhow::Result<Option<u8>> {
    let mut children = ChildRunner::current()?;
    let (probe, log) = run_setup::probe(&mut children)?;
    let _ = std::fs::remove_file(log);
    let gpus = probe.devices.iter().filter(|d| d.kind == "gpu").count();
    let pins = match pins(workers, args.cpus.as_deref(), gpus) {
        Ok(pins) => pins,
        Err(why) => {
            eprintln!("error: {why}");
            return Ok(Some(exit::BAD_INPUT));
        }
    };
    if pins == [Pin::Gpu(0)] && gpus <= 1 {
        eprintln!(
            "llama-sweep: {} GPU here: one worker, this run",
            if gpus == 0 { "no" } else { "one" }
        );
        return Ok(None);
    }
    // Per-GPU workers get their own CPUs too: the placements swept here
    // (experts and layers on the CPU) run on cores and memory bandwidth
    // that would otherwise be shared.
    let gpu_cpus = match pins.first() {
        Some(Pin::Gpu(_)) => {
            let sets = split_cpus(&allowed_cpus(), &numa_nodes(), pins.len());
            match &sets {
                Some(sets) => eprintln!(
                    "llama-sweep: each GPU worker on its own CPUs: {}",
                    sets.iter()
                        .enumerate()
                        .map(|(i, set)| format!("gpu{i} on {}", cpu_list(set)))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => eprintln!(
                    "warning: fewer CPUs than GPU workers: the workers share cores, and trials \
                     that put work on the CPU measure each other (each row's machine says so)"
                ),
            }
            sets
        }
        _ => None,
    };
    let exe = std::env::current_exe()?;
    let host = crate::machine::Machine::detect().hostname;
    let mut running = Vec::new();
    for (n, pin) in pins.iter().enumerate() {
        let mut command = Command::new(&exe);
        command.arg("worker").arg(&args.sweep);
        if matches!(pin, Pin::Gpu(_)) && gpu_cpus.is_none() {
            command.arg("--shares-cores");
        }
        let name = match pin {
            Pin::Gpu(i) => {
                for (var, value) in device_env(*i) {
                    command.env(var, value);
                }
                if let Some(cpus) = gpu_cpus.as_ref().map(|sets| sets[n].clone()) {
                    // SAFETY: as for Pin::Cpus below.
                    unsafe {
                        command.pre_exec(move || pin_to(&cpus));
                    }
                }
                format!("{host}-gpu{i}")
            }
            Pin::Cpus(cpus) => {
                let cpus = cpus.clone();
                // SAFETY: sched_setaffinity on the child before exec, with a
                // set built before the fork.
                unsafe {
                    command.pre_exec(move || pin_to(&cpus));
                }
                format!("{host}-cpus{}", cpus_label(pin))
            }
        };
        command.args(["--name", &name]);
        eprintln!("llama-sweep: starting worker {name}");
        running.push((name, command.spawn()?));
    }
    let mut failed = Vec::new();
    for (name, mut child) in running {
        let status = child.wait()?;
        if !status.success() {
            failed.push(format!("{name} ({status})"));
        }
    }
    if crate::interrupt::requested() {
        return Ok(Some(exit::INTERRUPTED));
    }
    if !failed.is_empty() {
        eprintln!(
            "llama-sweep: workers ended badly: {}; finishing with what they recorded",
            failed.join(", ")
        );
    }
    // The finishing run measures where the first worker did (its device,
    // its cores), so that it is the same machine (fingerprint) as that
    // worker's and a trial it measures is not split over every GPU.
    let (device, cpus) = finishing_place(&pins, gpu_cpus.as_deref());
    if let Some(i) = device {
        for (var, value) in device_env(i) {
            // SAFETY: no other thread of this process reads the environment
            // now: the workers are done and no trial is running.
            unsafe { std::env::set_var(var, value) };
        }
        eprintln!("llama-sweep: finishing on GPU {i} (the first worker's)");
    }
    if let Some(cpus) = cpus {
        pin_to(&cpus)?;
        eprintln!(
            "llama-sweep: finishing on CPUs {} (the first worker's)",
            cpu_list(&cpus)
        );
    }
    Ok(None)
}

/// CUDA's, ROCm's and Vulkan's own device selection: only GPU `i` is seen.
fn device_env(i: usize) -> [(&'static str, String); 3] {
    [
        ("CUDA_VISIBLE_DEVICES", i.to_string()),
        ("HIP_VISIBLE_DEVICES", i.to_string()),
        ("GGML_VK_VISIBLE_DEVICES", i.to_string()),
    ]
}

/// Where the finishing run measures: the first worker's GPU and CPUs.
fn finishing_place(
    pins: &[Pin],
    gpu_cpus: Option<&[Vec<usize>]>,
) -> (Option<usize>, Option<Vec<usize>>) {
    match pins.first() {
        Some(Pin::Gpu(i)) => (Some(*i), gpu_cpus.and_then(|sets| sets.first().cloned())),
        Some(Pin::Cpus(cpus)) => (None, Some(cpus.clone())),
        None => (None, None),
    }
}

/// `n` disjoint CPU sets of equal size from `allowed`, filled NUMA node by
/// NUMA node (`nodes`: each node's CPUs), so that a set stays on one node
/// where the sizes allow; `None` when there are fewer CPUs than sets.
/// CPUs left over by the division are not used (equal sets keep the
/// workers the same machine).
pub fn split_cpus(allowed: &[usize], nodes: &[Vec<usize>], n: usize) -> Option<Vec<Vec<usize>>> {
    let mut ordered: Vec<usize> = nodes
        .iter()
        .flat_map(|node| node.iter().copied().filter(|c| allowed.contains(c)))
        .collect();
    let rest: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|c| !ordered.contains(c))
        .collect();
    ordered.extend(rest);
    let size = ordered.len().checked_div(n)?;
    if size == 0 {
        return None;
    }
    Some(
        ordered
            .chunks(size)
            .take(n)
            .map(<[usize]>::to_vec)
            .collect(),
    )
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is valid; sched_getaffinity fills it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Each NUMA node's CPUs, from sysfs (empty where it says nothing).
fn numa_nodes() -> Vec<Vec<usize>> {
    let Ok(entries) = std::fs::read_dir("/sys/devices/system/node") else {
        return Vec::new();
    };
    let mut nodes: Vec<(usize, Vec<usize>)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let index: usize = name.strip_prefix("node")?.parse().ok()?;
            let list = std::fs::read_to_string(e.path().join("cpulist")).ok()?;
            let cpus = parse_cpu_sets(list.trim()).ok()?.into_iter().next()?;
            Some((index, cpus))
        })
        .collect();
    nodes.sort();
    nodes.into_iter().map(|(_, cpus)| cpus).collect()
}

/// `0-3` for a contiguous set, else the CPUs separated by commas.
fn cpu_list(cpus: &[usize]) -> String {
    match (cpus.first(), cpus.last()) {
        (Some(a), Some(b)) if b - a + 1 == cpus.len() && cpus.len() > 1 => format!("{a}-{b}"),
        _ => cpus
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Pins this process (and what it starts) to `cpus`.
fn pin_to(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity
    // only touch it and this process.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn cpus_label(pin: &Pin) -> String {
    match pin {
        Pin::Cpus(cpus) => format!(
            "{}-{}",
            cpus.first().copied().unwrap_or(0),
            cpus.last().copied().unwrap_or(0)
        ),
        Pin::Gpu(i) => i.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finishing_run_measures_on_the_first_workers_gpu_and_cpus() {
        let sets = vec![vec![0, 1], vec![2, 3]];
        assert_eq!(
            finishing_place(&[Pin::Gpu(0), Pin::Gpu(1)], Some(&sets)),
            (Some(0), Some(vec![0, 1]))
        );
        assert_eq!(
            finishing_place(&[Pin::Cpus(vec![4, 5]), Pin::Cpus(vec![6, 7])], None),
            (None, Some(vec![4, 5]))
        );
        assert_eq!(device_env(0)[0], ("CUDA_VISIBLE_DEVICES", "0".to_string()));
    }

    #[test]
    fn gpu_workers_get_equal_disjoint_cpu_sets_node_by_node() {
        let all: Vec<usize> = (0..8).collect();
        // Two nodes numbered alternately: each worker stays on one node.
        let nodes = vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]];
        assert_eq!(
            split_cpus(&all, &nodes, 2),
            Some(vec![vec![0, 2, 4, 6], vec![1, 3, 5, 7]])
        );
        // No node information: contiguous sets; leftovers unused.
        assert_eq!(
            split_cpus(&(0..7).collect::<Vec<_>>(), &[], 3),
            Some(vec![vec![0, 1], vec![2, 3], vec![4, 5]])
        );
        // Only the CPUs this process may use.
        assert_eq!(split_cpus(&[2, 3], &nodes, 2), Some(vec![vec![2], vec![3]]));
        // Fewer CPUs than workers: they cannot have their own.
        assert_eq!(split_cpus(&[0], &[], 2), None);
        assert_eq!(cpu_list(&[0, 1, 2, 3]), "0-3");
        assert_eq!(cpu_list(&[0, 2]), "0,2");
    }

    #[test]
    fn parallel_cpu_workers_need_disjoint_cores() {
        assert_eq!(pins("per-gpu", None, 0), Ok(vec![Pin::Gpu(0)]));
        assert_eq!(pins("per-gpu", None, 3).unwrap().len(), 3);
        let refused = pins("4", None, 0).unwrap_err();
        assert!(
            refused.contains("--cpus") && refused.contains("memory bandwidth"),
            "{refused}"
        );
        assert!(
            pins("9", None, 8)
                .unwrap_err()
                .contains("one worker per GPU")
        );
        assert_eq!(
            pins("2", Some("0-1/2,3"), 0),
            Ok(vec![Pin::Cpus(vec![0, 1]), Pin::Cpus(vec![2, 3])])
        );
        assert!(
            pins("2", Some("0-2/2-3"), 0)
                .unwrap_err()
                .contains("CPU 2 is in two sets")
        );
        assert!(
            pins("3", Some("0/1"), 0)
                .unwrap_err()
                .contains("one set per worker")
        );
        assert!(pins("many", None, 0).is_err());
    }
}
