//! Knobs a sweep turns that cannot change anything on this machine or
//! model (a tensor split without a GPU, n_cpu_moe on a dense model, poll in
//! an OpenMP build): they are measured and recorded anyway, and the sweep
//! says plainly that their trials differ only by noise.

use super::{KnobId, Needs};

/// What decides whether a knob can act here.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// This llama.cpp build offers a GPU device.
    pub gpu: bool,
    /// ggml's threads wait in OpenMP (llama.cpp's system info says
    /// `OPENMP = 1`).
    pub openmp: bool,
    /// The sweep's models that have no experts (dense models).
    pub dense_models: Vec<String>,
    /// The sweep's models, all of them.
    pub models: usize,
}

impl Facts {
    /// Reads `openmp` from llama.cpp's system info line.
    pub fn openmp_in(system_info: &str) -> bool {
        system_info.contains("OPENMP = 1")
    }
}

/// One sentence per knob of `turned` (the knobs a sweep sets) that has no
/// effect here, and why.
pub fn without_effect(turned: impl IntoIterator<Item = KnobId>, facts: &Facts) -> Vec<String> {
    turned
        .into_iter()
        .filter_map(|knob| {
            let why = match knob.knob().needs {
                Needs::Anything => return None,
                Needs::Gpu if !facts.gpu => {
                    "this llama.cpp build offers no GPU (rebuild with a GPU feature, see \"Building for a GPU\")".to_string()
                }
                Needs::Experts if facts.models > 0 && facts.dense_models.len() == facts.models => {
                    "no model of the sweep is a mixture of experts".to_string()
                }
                Needs::Experts if !facts.dense_models.is_empty() => format!(
                    "{} has no experts, so it has none there",
                    facts.dense_models.join(", ")
                ),
                Needs::ThreadPolling if facts.openmp => {
                    "this llama.cpp is built with OpenMP, whose threads never poll ggml's threadpool".to_string()
                }
                _ => return None,
            };
            Some(format!(
                "{knob} has no effect here: {why}; its trials are measured and recorded, and differ only by noise"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{N_CPU_MOE, N_THREADS, POLL, TENSOR_SPLIT};

    #[test]
    fn knobs_that_cannot_act_here_are_named_with_the_reason() {
        let cpu = Facts {
            gpu: false,
            openmp: true,
            dense_models: vec!["smollm2".into()],
            models: 1,
        };
        let lines = without_effect([TENSOR_SPLIT, N_THREADS, N_CPU_MOE, POLL], &cpu);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines[0]
                .starts_with("tensor_split has no effect here: this llama.cpp build offers no GPU")
        );
        assert!(lines[1].contains("no model of the sweep is a mixture of experts"));
        assert!(lines[2].contains("OpenMP"));
        let gpu_moe = Facts {
            gpu: true,
            openmp: false,
            dense_models: vec![],
            models: 2,
        };
        assert!(without_effect([TENSOR_SPLIT, N_CPU_MOE, POLL], &gpu_moe).is_empty());
        let mixed = Facts {
            dense_models: vec!["dense".into()],
            ..gpu_moe
        };
        assert!(without_effect([N_CPU_MOE], &mixed)[0].contains("dense has no experts"));
    }
}
