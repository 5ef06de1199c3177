//! Warnings a sweep's user must not miss, each with what to do about it. The
//! first is the one whose absence started this project: GPU layers asked
//! for, none offloaded.

use crate::protocol::ProbeReport;
use crate::store::row::TrialRow;

/// Coefficient of variation of generation speed above which a trial's mean
/// is too noisy to rank against close neighbours.
pub const NOISY_CV: f64 = 0.05;

pub fn warnings(rows: &[TrialRow], probe: Option<&ProbeReport>) -> Vec<String> {
    let mut out = Vec::new();
    let asked_gpu: Vec<&TrialRow> = rows
        .iter()
        .filter(|r| {
            r.is_ok() && r.n_gpu_layers != 0 && !r.defaulted.split(';').any(|d| d == "n_gpu_layers")
        })
        .collect();
    let short: Vec<&&TrialRow> = asked_gpu
        .iter()
        .filter(|r| {
            let wanted = if r.n_gpu_layers < 0 {
                r.layers_total.unwrap_or(0)
            } else {
                (r.n_gpu_layers as u32).min(r.layers_total.unwrap_or(u32::MAX))
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
            example.n_gpu_layers,
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
    let noisy = rows
        .iter()
        .filter(|r| match (r.tg_tps_mean, r.tg_tps_sd) {
            (Some(m), Some(sd)) if m > 0.0 => sd / m > NOISY_CV,
            _ => false,
        })
        .count();
    if noisy > 0 {
        out.push(format!(
            "{noisy} trial(s) had a generation-speed spread above {:.0}% of the mean: the machine was busy or \
             throttling; differences that small between trials are not real. Use more repetitions or a quieter machine",
            NOISY_CV * 100.0
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
            defaults: defaults(),
        }
    }

    #[test]
    fn warns_when_gpu_layers_were_asked_for_but_not_offloaded() {
        let mut r = row("a", &mock::measured(100.0, 400.0));
        r.n_gpu_layers = 99;
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
    fn warns_about_noisy_trials() {
        let mut r = row("a", &mock::measured(100.0, 400.0));
        r.tg_tps_sd = Some(10.0);
        let w = warnings(&[r], None);
        assert!(w[0].contains("spread above 5%"), "{w:?}");
    }
}
