//! Host memory read bandwidth, measured in pure Rust: one thread per logical
//! core sums its slice of a buffer far larger than the CPU caches. Token
//! generation reads every weight once per token, so this figure divided by
//! the bytes a token reads is a ceiling on generation speed that no setting
//! can beat: the yardstick for the speeds a sweep measures.

use serde::{Deserialize, Serialize};
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A measurement of host RAM read bandwidth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// 10⁹ bytes per second, best run.
    pub gb_per_s: f64,
    pub median_gb_per_s: f64,
    pub threads: usize,
    pub buffer_mib: u64,
    pub runs: usize,
}

impl Bandwidth {
    /// How it was measured, in one line.
    pub fn method(&self) -> String {
        format!(
            "parallel sum of a {} MiB buffer, {} thread{}, best of {}",
            self.buffer_mib,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            self.runs
        )
    }
}

const MIB: u64 = 1 << 20;
/// Large next to any CPU's last-level cache.
const MAX_BUFFER: u64 = 1024 * MIB;
const MIN_BUFFER: u64 = 64 * MIB;
const MAX_RUNS: usize = 7;
const MIN_RUNS: usize = 3;
/// Timed runs stop after this, once `MIN_RUNS` are done.
const TIME_BUDGET: Duration = Duration::from_secs(2);

/// Measures this machine with one thread per logical core and a buffer of
/// 1 GiB (less when little memory is available). Takes about a second or
/// two, mostly to fill the buffer.
pub fn measure_host() -> Bandwidth {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let buffer = buffer_size(crate::machine::memory_available());
    measure(buffer, threads, MAX_RUNS, TIME_BUDGET)
}

/// The generation speed (tokens/s) that memory bandwidth allows: generating
/// a token reads every weight once, so tokens/s ≤ bandwidth ÷ bytes per
/// token. Infinite when a token reads nothing.
pub fn generation_ceiling_tps(bandwidth_gb_per_s: f64, bytes_per_token: u64) -> f64 {
    if bytes_per_token == 0 {
        return f64::INFINITY;
    }
    bandwidth_gb_per_s * 1e9 / bytes_per_token as f64
}

/// 1 GiB, or a quarter of the available memory when that is less (at least
/// 64 MiB), in whole MiB.
fn buffer_size(available: Option<u64>) -> u64 {
    let quarter = available.map_or(MAX_BUFFER, |a| a / 4);
    quarter.clamp(MIN_BUFFER, MAX_BUFFER) / MIB * MIB
}

fn measure(buffer_bytes: u64, threads: usize, max_runs: usize, budget: Duration) -> Bandwidth {
    let threads = threads.max(1);
    let words = (buffer_bytes / 8) as usize;
    let mut data = Vec::<u64>::with_capacity(words);
    // Written, not just allocated: untouched pages all map to the one zero
    // page, which would be read from cache.
    let chunk = words.div_ceil(threads).max(1);
    {
        let spare = &mut data.spare_capacity_mut()[..words];
        std::thread::scope(|s| {
            for (i, part) in spare.chunks_mut(chunk).enumerate() {
                s.spawn(move || {
                    for (j, w) in part.iter_mut().enumerate() {
                        w.write((i * chunk + j) as u64 | 1);
                    }
                });
            }
        });
    }
    // SAFETY: every element up to `words` was written just above.
    unsafe { data.set_len(words) };

    let seconds = timed_runs(&data, threads, max_runs, budget);
    let gb = |s: f64| buffer_bytes as f64 / s / 1e9;
    let best = seconds.iter().copied().fold(f64::INFINITY, f64::min);
    let mut sorted = seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let buffer_mib = buffer_bytes / MIB;
    Bandwidth {
        gb_per_s: gb(best),
        median_gb_per_s: gb(median),
        threads,
        buffer_mib,
        runs: seconds.len(),
    }
}

/// Seconds each run took for all threads to sum their slices. The threads
/// live across runs and start each one together at a barrier.
fn timed_runs(data: &[u64], threads: usize, max_runs: usize, budget: Duration) -> Vec<f64> {
    let slices: Vec<&[u64]> = data.chunks(data.len().div_ceil(threads).max(1)).collect();
    let start = Barrier::new(slices.len() + 1);
    let done = Barrier::new(slices.len() + 1);
    let go_on = AtomicBool::new(true);
    let mut seconds = Vec::new();
    std::thread::scope(|s| {
        for part in slices {
            let (start, done, go_on) = (&start, &done, &go_on);
            s.spawn(move || {
                loop {
                    start.wait();
                    if !go_on.load(Ordering::Acquire) {
                        return;
                    }
                    std::hint::black_box(sum(std::hint::black_box(part)));
                    done.wait();
                }
            });
        }
        let began = Instant::now();
        loop {
            start.wait();
            let t0 = Instant::now();
            done.wait();
            seconds.push(t0.elapsed().as_secs_f64());
            if seconds.len() >= max_runs
                || (seconds.len() >= MIN_RUNS.min(max_runs) && began.elapsed() > budget)
            {
                break;
            }
        }
        go_on.store(false, Ordering::Release);
        start.wait();
    });
    seconds
}

/// Wrapping sum, written as a plain fold: LLVM vectorizes it for any
/// target. (A hand-unrolled eight-accumulator loop, built with this
/// project's `target-cpu=native` on a Zen 4 CPU, ran at a fifth of the
/// memory's speed and reported 5 GB/s for 30.)
fn sum(words: &[u64]) -> u64 {
    words.iter().fold(0u64, |a, w| a.wrapping_add(*w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_a_gib_or_a_quarter_of_what_is_available() {
        assert_eq!(buffer_size(None), 1024 * MIB);
        assert_eq!(buffer_size(Some(64 << 30)), 1024 * MIB);
        assert_eq!(buffer_size(Some(2 << 30)), 512 * MIB);
        assert_eq!(buffer_size(Some(100 * MIB)), 64 * MIB);
        assert_eq!(buffer_size(Some(1000 * MIB + 3)) % MIB, 0);
    }

    #[test]
    fn the_ceiling_is_bandwidth_over_bytes_per_token() {
        assert_eq!(generation_ceiling_tps(10.0, 100_000_000), 100.0);
        assert_eq!(generation_ceiling_tps(1.0, 0), f64::INFINITY);
    }

    #[test]
    fn sum_wraps_and_counts_every_word() {
        assert_eq!(sum(&[1, 2, 3]), 6);
        assert_eq!(sum(&(1..=17).collect::<Vec<u64>>()), 153);
        assert_eq!(sum(&[u64::MAX, 2]), 1);
    }

    #[test]
    fn a_small_measurement_reports_what_it_did() {
        let b = measure(8 * MIB, 3, 3, Duration::ZERO);
        assert_eq!((b.threads, b.runs, b.buffer_mib), (3, 3, 8));
        assert!(
            b.gb_per_s >= b.median_gb_per_s && b.median_gb_per_s > 0.0,
            "{b:?}"
        );
        assert_eq!(
            b.method(),
            "parallel sum of a 8 MiB buffer, 3 threads, best of 3"
        );
        let one = measure(MIB, 1, 5, Duration::ZERO);
        assert_eq!(one.runs, 3, "stops after the minimum once over budget");
        assert!(one.method().contains("1 thread,"), "{}", one.method());
    }
}
