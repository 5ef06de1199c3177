//! Warnings a sweep's user must not miss, each with what to do about it. The
//! first is the one whose absence started this project: GPU layers asked
//! for, none offloaded. Another: generation far below the ceiling the
//! machine's memory bandwidth allows.

use super::ceiling::Ceiling;
use crate::protocol::ProbeReport;
use crate::store::manifest::Manifest;
use crate::store::row::TrialRow;

/// Below this share of its ceiling, a CPU trial is limited by something
/// other than memory.
pub const FAR_BELOW_CEILING_PCT: f64 = 25.0;

/// A warning when `winner` (the recommended or best feasible trial) ran on
/// the CPU and generates at less than a quarter of the speed the machine's
/// memory bandwidth allows. Above the ceiling is no warning: the page
/// explains it (CPU caches).
pub fn ceiling_warning(winner: &TrialRow, manifest: &Manifest) -> Option<String> {
    let ceiling = Ceiling::in_sweep(winner, manifest);
    let pct = ceiling.percent_of(winner)?;
    let Ceiling::Known {
        tps,
        gb_per_s,
        bytes_per_token,
    } = ceiling
    else {
        return None;
    };
    if pct >= FAR_BELOW_CEILING_PCT {
        return None;
    }
    let cores = manifest
        .machine
        .physical_cores
        .map_or("the physical cores".to_string(), |n| {
            format!("the physical cores ({n})")
        });
    Some(format!(
        "generation speed far below the ceiling: the recommended trial {} generates {:.1} t/s, which \
         reaches only {pct:.0}% of the {tps:.1} t/s this machine's memory bandwidth allows \
         ({gb_per_s:.1} GB/s ÷ {} MB read per token): something other than memory limits it — try \
         n_threads = {cores} (it ran with {}), check for other load; on a GPU build check that \
         layers are offloaded",
        winner.trial_id,
        winner.tg_tps_mean.unwrap_or(f64::NAN),
        super::ceiling::megabytes(bytes_per_token),
        winner.params.int(crate::knobs::N_THREADS)
    ))
}

/// The recommendation depends on settings llama-cpp-python's `Llama()`
/// cannot be given: config.yaml alone does not reproduce it.
pub fn inexpressible_warning(winner: &TrialRow) -> Option<String> {
    let missing = crate::export::kwargs::inexpressible(winner);
    (!missing.is_empty()).then(|| {
        format!(
            "the recommended configuration depends on what llama-cpp-python's Llama() cannot be \
             given ({}): an app loading config.yaml runs without it and may be slower; run \
             llama-server with the arguments below to get what was measured",
            missing.join("; ")
        )
    })
}

/// When at least half the trials failed, that comes first: how many, and
/// how the most common failure ended (with the log of its first trial).
pub fn failure_warning(rows: &[TrialRow]) -> Option<String> {
    let failed: Vec<&TrialRow> = rows.iter().filter(|r| !r.status.ran()).collect();
    if failed.is_empty() || failed.len() * 2 < rows.len() {
        return None;
    }
    let key = |r: &TrialRow| {
        format!(
            "{}{} — {}",
            r.status,
            r.exit
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default(),
            crate::runner::outcome::first_line(r.error.as_deref())
        )
    };
    let mut counts: Vec<(String, usize, &TrialRow)> = Vec::new();
    for r in &failed {
        let k = key(r);
        match counts.iter_mut().find(|(c, _, _)| *c == k) {
            Some(entry) => entry.1 += 1,
            None => counts.push((k, 1, r)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    let (common, n, first) = &counts[0];
    let all = if *n == rows.len() {
        format!(
            "every one of the {} trials failed, and all ended the same way",
            rows.len()
        )
    } else {
        format!(
            "{} of {} trials failed; {n} ended the same way",
            failed.len(),
            rows.len()
        )
    };
    Some(format!(
        "{all}: {common}. Look at {} first; a cause they share (the llama.cpp build, this machine, \
         the model files) is more likely than their settings — `llama-sweep doctor` checks llama.cpp \
         on this machine",
        first.log_file
    ))
}

pub fn warnings(rows: &[TrialRow], probe: Option<&ProbeReport>) -> Vec<String> {
    let mut out: Vec<String> = failure_warning(rows).into_iter().collect();
    let faked = rows.iter().filter(|r| r.is_test_fault()).count();
    if faked > 0 {
        out.push(format!(
            "{faked} row(s) were made under a test fault (llama-sweep run --test-fault): their children \
             misbehaved on purpose, and their figures are not measurements"
        ));
    }
    let asked_gpu: Vec<&TrialRow> = rows
        .iter()
        .filter(|r| {
            r.is_ok()
                && r.params.int(crate::knobs::N_GPU_LAYERS) != 0
                && !r.is_defaulted(crate::knobs::N_GPU_LAYERS)
        })
        .collect();
    let short: Vec<&&TrialRow> = asked_gpu
        .iter()
        .filter(|r| {
            let wanted = if r.params.int(crate::knobs::N_GPU_LAYERS) < 0 {
                r.layers_total.unwrap_or(0)
            } else {
                (r.params.int(crate::knobs::N_GPU_LAYERS) as u32)
                    .min(r.layers_total.unwrap_or(u32::MAX))
            };
            r.layers_offloaded.unwrap_or(0) < wanted
        })
        .collect();
    if !short.is_empty() {
        let no_gpu = probe.is_some_and(|p| !p.supports_gpu_offload);
        let example = short[0];
        let mut w = format!(
            "{} of {} trials asked for GPU layers (n_gpu_layers = {}) but llama.cpp offloaded {}/{} layers",
            short.len(),
            asked_gpu.len(),
            example.params.int(crate::knobs::N_GPU_LAYERS),
            example.layers_offloaded.unwrap_or(0),
            example.layers_total.unwrap_or(0)
        );
        if no_gpu {
            w.push_str(
                ": this build of llama-sweep has no GPU backend, so everything ran on the CPU. \
                 Rebuild with `cargo build --release --features cuda` (or vulkan, metal) to measure the GPU",
            );
        } else {
            w.push_str(": the GPU has too little free memory for all layers, or the model has layers the backend cannot run");
        }
        out.push(w);
    }
    let noisy = rows.iter().filter(|r| r.noisy).count();
    if noisy > 0 {
        out.push(format!(
            "{noisy} trial(s) are flagged noisy: the spread of their repetitions is above the sweep's \
             noise limit ([drift] noise_cv_max), so the machine was busy or throttling and small \
             differences to them are not real. Use more repetitions or a quieter machine"
        ));
    }
    let drifted = rows.iter().filter(|r| !r.drift.is_empty()).count();
    if drifted > 0 {
        out.push(format!(
            "{drifted} trial(s) were measured while the drift anchor had moved (see the drift column and \
             anchors.csv): the machine's speed changed during the sweep; compare them with care"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::{defaults, row};

    fn probe(gpu: bool) -> ProbeReport {
        ProbeReport {
            llama_cpp_build: "b".into(),
            system_info: String::new(),
            supports_gpu_offload: gpu,
            supports_mmap: true,
            backends: vec!["CPU".into()],
            devices: vec![],
            cpu_extra_buffer_types: vec![],
            defaults: defaults(),
        }
    }

    #[test]
    fn warns_when_gpu_layers_were_asked_for_but_not_offloaded() {
        let mut r = row("a", &mock::measured(100.0, 400.0));
        r.params.set(crate::knobs::N_GPU_LAYERS, (99).into());
        r.defaulted = String::new();
        let w = warnings(&[r.clone()], Some(&probe(false)));
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("offloaded 0/5") && w[0].contains("--features cuda"),
            "{w:?}"
        );
        // Left at the default (-1), it is not the user's request: no warning.
        let quiet = row("b", &mock::measured(100.0, 400.0));
        assert!(warnings(&[quiet], Some(&probe(false))).is_empty());
        // Fully offloaded: no warning.
        r.layers_offloaded = Some(5);
        assert!(warnings(&[r], Some(&probe(true))).is_empty());
    }

    #[test]
    fn warns_when_generation_is_far_below_the_ceiling() {
        let mut manifest = crate::report::data::fixture().manifest;
        manifest.memory_bandwidth = Some(crate::report::ceiling::bandwidth(10.0));
        let mut r = row("a", &mock::measured(40.0, 400.0));
        r.tg_tps_mean = Some(40.0);
        r.layers_offloaded = Some(0);
        r.bytes_per_token = Some(50_000_000);
        // Ceiling 200 t/s: 40 t/s is 20%.
        let w = ceiling_warning(&r, &manifest).expect("a warning");
        assert!(
            w.contains("only 20% of the 200.0 t/s") && w.contains("physical cores (2)"),
            "{w}"
        );
        // 60 t/s is 30%: no warning; nor above 100% (CPU caches).
        r.tg_tps_mean = Some(60.0);
        assert_eq!(ceiling_warning(&r, &manifest), None);
        r.tg_tps_mean = Some(260.0);
        assert_eq!(ceiling_warning(&r, &manifest), None);
        // Offloaded, or no bandwidth measured: no ceiling, no warning.
        r.tg_tps_mean = Some(10.0);
        r.layers_offloaded = Some(5);
        assert_eq!(ceiling_warning(&r, &manifest), None);
        r.layers_offloaded = Some(0);
        manifest.memory_bandwidth = None;
        assert_eq!(ceiling_warning(&r, &manifest), None);
    }

    #[test]
    fn a_sweep_of_failures_leads_with_them_and_their_common_cause() {
        let crashed = |id: &str| {
            let mut r = row(
                id,
                &mock::failed(crate::runner::TrialStatus::Crashed, "died of SIGSEGV in f"),
            );
            r.exit = Some("signal 11 (SIGSEGV)".into());
            r
        };
        let rows = [crashed("a"), crashed("b"), crashed("c")];
        let w = warnings(&rows, None);
        assert!(
            w[0].starts_with("every one of the 3 trials failed, and all ended the same way: crashed (signal 11 (SIGSEGV)) — died of SIGSEGV in f"),
            "{w:?}"
        );
        assert!(w[0].contains("logs/a.log"), "{w:?}");
        let mixed = [
            crashed("a"),
            row("b", &mock::measured(1.0, 1.0)),
            row("c", &mock::measured(1.0, 1.0)),
        ];
        assert_eq!(
            failure_warning(&mixed),
            None,
            "one failure in three is not the story"
        );
        let mut fake = row("d", &mock::measured(1.0, 1.0));
        fake.build
            .push_str(" [test fault instant injected: not a measurement]");
        assert!(warnings(&[fake], None)[0].contains("not measurements"));
    }

    #[test]
    fn warns_about_noisy_and_drifted_trials() {
        let mut r = row("a", &mock::measured(100.0, 400.0));
        assert!(warnings(&[r.clone()], None).is_empty());
        r.noisy = true;
        r.drift = "anchor moved".into();
        let w = warnings(&[r], None);
        assert!(w[0].contains("flagged noisy"), "{w:?}");
        assert!(w[1].contains("drift anchor"), "{w:?}");
    }
}
