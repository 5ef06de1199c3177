//! What else the machine is doing while llama-sweep measures. A trial's
//! threads lose much of their speed when another process takes a core (two
//! threads on two cores lose half), so a figure measured while the machine
//! was busy must never decide anything. This module reads, from /proc, the
//! CPU time every process but the measuring one used over a window (the
//! machine's busy time less the measurer's own), the time the hypervisor
//! stole, and, when asked, which other process used the most; where the
//! kernel exposes them, the CPU frequency. Pure arithmetic over two
//! snapshots, so the rules are tested on recorded /proc text.

use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The machine's CPU counters (/proc/stat's `cpu` line), in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// user + nice + system + irq + softirq (guest time is inside user).
    pub busy: u64,
    /// Time the hypervisor gave to other guests while this one was ready.
    pub steal: u64,
}

impl CpuTimes {
    /// The counters of /proc/stat's text.
    pub fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|x| x.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal guest guest_nice
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        (v.len() >= 4).then(|| CpuTimes {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            steal: at(7),
        })
    }

    pub fn read() -> Option<CpuTimes> {
        CpuTimes::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }
}

/// A process's own CPU time, every thread (utime + stime of its
/// /proc/PID/stat), in clock ticks.
pub fn process_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields start after
    // the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state(0) ppid ... utime is field 14 of the line, the
    // 12th after the state; stime the 13th.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// The command name of a /proc/PID/stat text.
fn process_name(stat: &str) -> Option<&str> {
    Some(&stat[stat.find('(')? + 1..stat.rfind(')')?])
}

/// A measurer's CPU time: its own and that of its children it has waited
/// for (cutime, cstime), so that a process a trial runs and waits for
/// (the app's interpreter, `measure::python_trial`) counts as the trial's
/// once it has ended.
fn measurer_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let children: u64 =
        fields.get(13)?.parse::<u64>().ok()? + fields.get(14)?.parse::<u64>().ok()?;
    Some(process_ticks(stat)? + children)
}

fn ticks_of(pid: u32) -> Option<u64> {
    measurer_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The CPUs this process may run on.
fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Clock ticks per second (USER_HZ).
fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// The counters at one moment: the machine's, and those of the processes
/// that measure (whose CPU time is not "another process").
#[derive(Debug, Clone)]
pub struct Snapshot {
    at: Instant,
    cpu: CpuTimes,
    measurers: u64,
}

/// What the machine did between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    pub seconds: f64,
    /// Cores' worth of CPU time used by processes other than the measuring
    /// ones (1.0: one whole core all the time).
    pub other_cores: f64,
    /// Cores' worth of time stolen by the hypervisor.
    pub steal_cores: f64,
}

impl Load {
    /// Whether others used more than `cores_max` cores (stolen time counts:
    /// it is a core the trial did not get).
    pub fn busy(&self, cores_max: f64) -> bool {
        self.other_cores + self.steal_cores > cores_max
    }

    /// `another process used 0.9 of a core for 40 s`, naming the busiest
    /// when known.
    pub fn describe(&self, busiest: Option<&str>) -> String {
        let who = busiest.map_or("other processes".to_string(), |n| format!("{n} and others"));
        let over = if self.seconds < 10.0 {
            format!("{:.1} s", self.seconds)
        } else {
            format!("{:.0} s", self.seconds)
        };
        let mut text = format!("{who} used {:.1} of a core for {over}", self.other_cores);
        if self.steal_cores >= 0.05 {
            text += &format!(
                ", and the hypervisor took {:.1} of a core",
                self.steal_cores
            );
        }
        text
    }
}

impl Snapshot {
    /// Now, with `measurers` (process ids) counted as the measurement.
    pub fn take(measurers: &[u32]) -> Snapshot {
        Snapshot {
            at: Instant::now(),
            cpu: CpuTimes::read().unwrap_or_default(),
            measurers: measurers.iter().filter_map(|&p| ticks_of(p)).sum(),
        }
    }

    /// From counters read elsewhere (tests).
    pub fn of(at: Instant, cpu: CpuTimes, measurers: u64) -> Snapshot {
        Snapshot { at, cpu, measurers }
    }

    /// The load from `self` to `later`.
    pub fn until(&self, later: &Snapshot) -> Load {
        let seconds = later.at.duration_since(self.at).as_secs_f64();
        if seconds <= 0.0 {
            return Load::default();
        }
        let hz = ticks_per_second();
        let busy = later.cpu.busy.saturating_sub(self.cpu.busy) as f64;
        let own = later.measurers.saturating_sub(self.measurers) as f64;
        let steal = later.cpu.steal.saturating_sub(self.cpu.steal) as f64;
        // The kernel counts CPU time in whole ticks, per CPU, sampled: the
        // machine's count and the measurers' own can each be a tick apart
        // per CPU at either end of a window, which over a window of a few
        // milliseconds would read as whole cores of "others".
        let slack = 2.0 * cpus() as f64;
        Load {
            seconds,
            other_cores: ((busy - own - slack).max(0.0) / hz / seconds).max(0.0),
            steal_cores: ((steal - slack).max(0.0) / hz / seconds).max(0.0),
        }
    }
}

/// When a measurement counts: processes other than the measuring ones may
/// use at most `cores_max` cores beside it (stolen time included). A run
/// taken while they used more is not used; the measurer waits, up to
/// `wait_s`, for a quiet window, and measures it again.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct QuietRule {
    pub cores_max: f64,
    pub wait_s: f64,
}

impl Default for QuietRule {
    fn default() -> Self {
        QuietRule {
            cores_max: DEFAULT_BUSY_CORES,
            wait_s: DEFAULT_BUSY_WAIT_S,
        }
    }
}

/// Others may use a quarter of a core: the background of an idle VM (its
/// agents, the kernel's threads) stays below it, a compile or a second
/// benchmark does not.
pub const DEFAULT_BUSY_CORES: f64 = 0.25;
/// How long a measurer waits for the machine to be quiet again.
pub const DEFAULT_BUSY_WAIT_S: f64 = 600.0;
/// The window a wait looks at the machine through.
const QUIET_WINDOW: std::time::Duration = std::time::Duration::from_secs(2);

impl QuietRule {
    /// Waits until others used at most `cores_max` over a whole window, at
    /// most `wait_s`; `say` hears once what keeps the machine busy. `Ok`
    /// with the seconds waited, or `Err` with the last busy window's load
    /// and the busiest other process found when it never got quiet (or a
    /// stop was asked for).
    pub fn wait_until_quiet(
        &self,
        measurers: &[u32],
        say: &mut dyn FnMut(&str),
    ) -> Result<f64, StillBusy> {
        let started = Instant::now();
        let mut busiest = None;
        let mut told = false;
        loop {
            let before = Snapshot::take(measurers);
            std::thread::sleep(QUIET_WINDOW);
            let load = before.until(&Snapshot::take(measurers));
            if !load.busy(self.cores_max) {
                return Ok(started.elapsed().as_secs_f64());
            }
            if !told {
                busiest = busiest_other(measurers, 1.0).map(|(name, _)| name);
                say(&format!(
                    "the machine is busy: {}; waiting (at most {:.0} s) for it to be quiet",
                    load.describe(busiest.as_deref()),
                    self.wait_s
                ));
                told = true;
            }
            if crate::interrupt::requested() || started.elapsed().as_secs_f64() >= self.wait_s {
                return Err(StillBusy { load, busiest });
            }
        }
    }
}

/// A machine that did not get quiet within the wait.
#[derive(Debug, Clone, PartialEq)]
pub struct StillBusy {
    /// The last busy window's load.
    pub load: Load,
    /// The other process that used the most CPU while it waited.
    pub busiest: Option<String>,
}

impl StillBusy {
    /// `stress-ng-cpu and others used 1.0 of a core for 2.0 s`.
    pub fn describe(&self) -> String {
        self.load.describe(self.busiest.as_deref())
    }
}

/// Every process's CPU time now, by pid, with its name.
fn all_processes() -> Vec<(u32, String, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        Some((pid, process_name(&stat)?.to_string(), process_ticks(&stat)?))
    })
    .collect()
}

/// The process other than `measurers` that used the most CPU over about
/// `seconds` from now (it waits that long), with the cores it used.
pub fn busiest_other(measurers: &[u32], seconds: f64) -> Option<(String, f64)> {
    let before = all_processes();
    std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
    busiest_between(&before, &all_processes(), measurers, seconds)
}

/// Of two readings of every process `seconds` apart, the one other than
/// `measurers` (and this process) that used the most CPU.
fn busiest_between(
    before: &[(u32, String, u64)],
    after: &[(u32, String, u64)],
    measurers: &[u32],
    seconds: f64,
) -> Option<(String, f64)> {
    let hz = ticks_per_second();
    let seconds = seconds.max(1e-3);
    after
        .iter()
        .filter(|(pid, _, _)| !measurers.contains(pid) && *pid != std::process::id())
        .filter_map(|(pid, name, ticks)| {
            let was = before.iter().find(|(p, _, _)| p == pid)?.2;
            Some((
                name.clone(),
                ticks.saturating_sub(was) as f64 / hz / seconds,
            ))
        })
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, cores)| *cores > 0.0)
}

/// The machine's noise at rest, as `doctor` measures it: what other
/// processes used over a short window, and how much the same fixed piece
/// of CPU work varies from run to run while nothing else of ours runs.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleNoise {
    pub load: Load,
    /// The other process that used the most, with its cores.
    pub busiest: Option<(String, f64)>,
    /// sd / mean of the fixed work's run times.
    pub spread: f64,
    pub runs: usize,
    /// The CPU frequency, where the kernel exposes it.
    pub mhz: Option<f64>,
}

/// Measures [`IdleNoise`] in about `runs` × 40 ms, one thread.
pub fn idle_noise(runs: usize) -> IdleNoise {
    let me = [std::process::id()];
    let before = Snapshot::take(&me);
    let before_all = all_processes();
    let times: Vec<f64> = (0..runs.max(2))
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(fixed_work(40_000_000));
            started.elapsed().as_secs_f64()
        })
        .collect();
    let load = before.until(&Snapshot::take(&me));
    let busiest = busiest_between(&before_all, &all_processes(), &me, load.seconds);
    let summary = crate::stats::Summary::of(&times);
    IdleNoise {
        load,
        busiest,
        spread: summary.map_or(0.0, |s| s.stddev / s.mean),
        runs: times.len(),
        mhz: cpu_mhz(),
    }
}

/// Work whose length depends on nothing but `n`: a chain of multiplies.
fn fixed_work(n: u64) -> u64 {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..n {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
    }
    x
}

/// The CPU frequency now, MHz, averaged over the cores that expose it;
/// `None` where the kernel does not (most virtual machines).
pub fn cpu_mhz() -> Option<f64> {
    let dir = std::fs::read_dir("/sys/devices/system/cpu").ok()?;
    let khz: Vec<f64> = dir
        .filter_map(|e| {
            let path = e.ok()?.path().join("cpufreq/scaling_cur_freq");
            std::fs::read_to_string(path).ok()?.trim().parse().ok()
        })
        .collect();
    (!khz.is_empty()).then(|| khz.iter().sum::<f64>() / khz.len() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_machines_counters_are_read_from_proc_stat() {
        let stat =
            "cpu  93451 10 6679 9598 338 5 77 42 0 0\ncpu0 46524 0 3076 5363 78 0 9 21 0 0\n";
        let t = CpuTimes::parse(stat).unwrap();
        assert_eq!(t.busy, 93451 + 10 + 6679 + 5 + 77);
        assert_eq!(t.steal, 42);
        assert_eq!(CpuTimes::parse("intr 1 2 3"), None);
        assert!(CpuTimes::read().is_some(), "this machine has /proc/stat");
    }

    #[test]
    fn a_process_time_is_read_past_a_name_with_spaces() {
        let stat =
            "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0 55269";
        assert_eq!(process_ticks(stat), Some(325));
        assert_eq!(process_name(stat), Some("my (odd) name"));
        assert!(ticks_of(std::process::id()).is_some());
        // A measurer's ended children (cutime 40, cstime 8) are its own.
        let stat =
            "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 40 8 20 0 4 0 55269";
        assert_eq!(measurer_ticks(stat), Some(373));
    }

    #[test]
    fn a_child_waited_for_counts_as_its_measurers_time() {
        let before = ticks_of(std::process::id()).unwrap();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let after = ticks_of(std::process::id()).unwrap();
        assert!(after > before, "{before} -> {after}");
    }

    #[test]
    fn others_are_the_machines_busy_time_less_the_measurers() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(10);
        let hz = ticks_per_second();
        let ticks = |seconds: f64| (seconds * hz) as u64;
        let before = Snapshot::of(t0, CpuTimes { busy: 0, steal: 0 }, 0);
        // 10 s: the trial used 2 cores (20 core-seconds), the machine 29
        // core-seconds busy and 1 stolen: others used 0.9 of a core.
        let after = Snapshot::of(
            t1,
            CpuTimes {
                busy: ticks(29.0),
                steal: ticks(1.0),
            },
            ticks(20.0),
        );
        let load = before.until(&after);
        assert!((load.other_cores - 0.9).abs() < 0.02, "{load:?}");
        assert!((load.steal_cores - 0.1).abs() < 0.02, "{load:?}");
        assert!(load.busy(0.5));
        assert!(!load.busy(1.5));
        assert_eq!(
            load.describe(Some("cc1plus")),
            "cc1plus and others used 0.9 of a core for 10 s, and the hypervisor took 0.1 of a core"
        );
        // A quiet machine: nothing but the trial.
        let quiet = Snapshot::of(
            t1,
            CpuTimes {
                busy: ticks(20.0),
                steal: 0,
            },
            ticks(20.0),
        );
        assert_eq!(before.until(&quiet).other_cores, 0.0);
        // A run of 3 ms: the machine's count a tick ahead of the trial's
        // (the kernel samples them apart) is no other process.
        let short = Snapshot::of(
            t0 + Duration::from_millis(3),
            CpuTimes { busy: 1, steal: 0 },
            0,
        );
        assert_eq!(before.until(&short).other_cores, 0.0);
    }

    #[test]
    fn a_process_spinning_beside_us_is_seen() {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spin = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    x = x.wrapping_add(1);
                }
                x
            })
        };
        // This process spins a thread: counted as ours, it is not another's;
        // counted as nobody's, the machine is busy by about a core.
        let before_ours = Snapshot::take(&[std::process::id()]);
        let before_none = Snapshot::take(&[]);
        std::thread::sleep(Duration::from_millis(500));
        let ours = before_ours.until(&Snapshot::take(&[std::process::id()]));
        let none = before_none.until(&Snapshot::take(&[]));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        spin.join().unwrap();
        assert!(
            none.other_cores > ours.other_cores + 0.2,
            "{none:?} {ours:?}"
        );
    }
}
