//! Warnings a sweep's user must not miss, each with what to do about it. The
//! first is the one whose absence started this project: GPU layers asked
//! for, none offloaded.

use crate::protocol::ProbeReport;
use crate::store::row::TrialRow;

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
