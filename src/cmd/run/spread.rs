//! `run --workers`: one worker per GPU on this node (each pinned to its
//! device), or N workers pinned to disjoint CPU sets, started as
//! `llama-sweep worker` children; when they are done, the run itself goes
//! on as usual and finishes (leftovers, confirmation, report, config.yaml).
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
    let exe = std::env::current_exe()?;
    let host = crate::machine::Machine::detect().hostname;
    let mut running = Vec::new();
    for pin in &pins {
        let mut command = Command::new(&exe);
        command.arg("worker").arg(&args.sweep);
        let name = match pin {
            Pin::Gpu(i) => {
                // CUDA's, ROCm's and Vulkan's own device selection.
                command
                    .env("CUDA_VISIBLE_DEVICES", i.to_string())
                    .env("HIP_VISIBLE_DEVICES", i.to_string())
                    .env("GGML_VK_VISIBLE_DEVICES", i.to_string());
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
    // The finishing run measures on the cores a worker had, so that it is
    // the same machine (fingerprint) as theirs.
    if let Some(Pin::Cpus(cpus)) = pins.first() {
        pin_to(cpus)?;
        eprintln!(
            "llama-sweep: finishing on CPUs {} (the first worker's)",
            cpus_label(&pins[0])
        );
    }
    Ok(None)
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
