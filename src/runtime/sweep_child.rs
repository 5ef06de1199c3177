//! llama.cpp as llama-sweep links it: the trial child, given the stored
//! trial again with the app's request shape, measured in the same rounds as
//! the app's runtimes so that their figures stay paired. Its generation
//! t/s on the client's clock is the request's (tokens after the first over
//! the time from the first to the last, with the app's sampler); its own
//! counter is the sweep's llama-bench-style tg figure.

use super::{Runtime, RuntimeError, RuntimeInfo, RuntimeKind, Session, SessionJob};
use crate::knobs::{self, Params};
use crate::protocol::{
    ChildJob, ChildReply, ModelVariant, ProbeReport, Sampling, TrialSpec, Workload,
};
use crate::runner::child::ChildRunner;
use crate::store::row::TrialRow;
use std::path::{Path, PathBuf};

pub struct SweepChild {
    children: ChildRunner,
    probe: ProbeReport,
}

impl SweepChild {
    pub fn new(children: ChildRunner, probe: ProbeReport) -> SweepChild {
        SweepChild { children, probe }
    }
}

/// The trial `row` records, as a job for the child: the parameters it ran
/// with (those it left at llama.cpp's default stay unset), `repetitions`
/// runs of its tests and of the app's request on an empty cache (the app's
/// runtimes see a fresh request too), sampled as the app samples.
pub fn spec_of(row: &TrialRow, repetitions: u32, temperature: f64, seed: u64) -> TrialSpec {
    let params: Params = row
        .params
        .iter()
        .filter(|(knob, _)| !row.is_defaulted(*knob))
        .map(|(knob, value)| (knob, value.clone()))
        .collect();
    TrialSpec {
        schedule: Default::default(),
        server: None,
        python: None,
        trial_id: row.trial_id.clone(),
        model: ModelVariant {
            name: row.model_name.clone(),
            variant: row.model_variant.clone(),
            path: PathBuf::from(&row.model_path),
            identity: row.model_identity.clone(),
        },
        params,
        workload: Workload {
            prompt_tokens: row.prompt_tokens,
            gen_tokens: row.gen_tokens,
            repetitions,
            warmup: 1,
            request_prompt_tokens: row.request_prompt_tokens,
            request_max_tokens: row.request_max_tokens,
            n_depth: Vec::new(),
            request_history_tokens: 0,
            prompts: Default::default(),
        },
        seed,
        sampling: Sampling::llama_cpp_python(temperature),
        forced: Params::default(),
    }
}

/// llama-sweep's own build as a runtime, from its probe.
pub fn info_of(p: &ProbeReport, program: &str) -> RuntimeInfo {
    RuntimeInfo {
        kind: RuntimeKind::Sweep,
        program: program.to_string(),
        version: format!("llama-sweep {}", env!("CARGO_PKG_VERSION")),
        llama_cpp: p.llama_cpp_build.clone(),
        backends: {
            // The GPU backends compiled in, and those of the devices found
            // (a dynamic-backends build registers them as it loads them).
            let mut b: Vec<String> = p.backends.iter().filter(|b| *b != "CPU").cloned().collect();
            for d in p.accelerators() {
                if !b.contains(&d.backend) {
                    b.push(d.backend.clone());
                }
            }
            b
        },
        supports_gpu_offload: p.supports_gpu_offload,
        devices: p
            .accelerators()
            .map(|d| format!("{}: {}", d.name, d.description))
            .collect(),
        system_info: p.system_info.clone(),
    }
}

impl Runtime for SweepChild {
    fn kind(&self) -> RuntimeKind {
        RuntimeKind::Sweep
    }

    fn program(&self) -> String {
        self.children.exe.display().to_string()
    }

    fn probe(&self, _log: &Path) -> Result<RuntimeInfo, RuntimeError> {
        Ok(info_of(&self.probe, &self.program()))
    }

    fn session(&self, job: &SessionJob, log: &Path) -> Result<Session, RuntimeError> {
        let repetitions = job.repetitions().max(1) as u32;
        let spec = spec_of(job.row, repetitions, job.temperature, job.seed);
        let ending = self
            .children
            .run(&ChildJob::Measure(spec), log, job.timeout)
            .map_err(|e| RuntimeError::new(format!("{e:#}"), Some(log)))?;
        if ending.interrupted {
            return Err(RuntimeError::new("interrupted", Some(log)));
        }
        let metrics = match ending.reply {
            Ok(ChildReply::Measured(m)) => m,
            other => {
                let outcome = crate::runner::outcome::classify(
                    crate::runner::ChildEnding {
                        reply: other,
                        ..ending
                    },
                    &crate::runner::outcome::log_end(log),
                    job.timeout,
                );
                return Err(RuntimeError::new(
                    format!(
                        "{}: {}",
                        outcome.status.name(),
                        crate::runner::outcome::first_line(outcome.error.as_deref())
                    ),
                    Some(log),
                ));
            }
        };
        let max_tokens = job.row.request_max_tokens;
        Ok(Session {
            ttft_ms: metrics.ttft_ms.clone(),
            // The request's generation speed, as every runtime defines it
            // (`crate::request`).
            gen_tps: metrics.request_tps.clone(),
            runtime_gen_tps: metrics.tg_tps.clone(),
            generated: vec![max_tokens; metrics.e2e_ms.len()],
            layers_offloaded: Some(metrics.layers_offloaded),
            layers_total: Some(metrics.layers_total),
            n_threads: Some(job.row.params.int(knobs::N_THREADS) as i32),
            cpus_allowed: super::cpus_allowed(std::process::id()),
            load_ms: Some(metrics.load_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;

    #[test]
    fn the_spec_of_a_row_runs_what_the_row_ran_with_the_apps_request() {
        let mut row = crate::test_support::row("abc", &mock::measured(100.0, 400.0));
        crate::test_support::set(&mut row, knobs::N_THREADS, 2.into());
        let spec = spec_of(&row, 4, 0.7, 9);
        assert_eq!(spec.params.int(knobs::N_THREADS), Some(2));
        assert!(
            !spec.params.is_set(knobs::N_CTX),
            "a defaulted knob stays unset"
        );
        assert_eq!(spec.params.int(knobs::N_BATCH), Some(512));
        assert_eq!(spec.workload.repetitions, 4);
        assert_eq!(spec.workload.request_history_tokens, 0);
        assert!(spec.workload.n_depth.is_empty());
        assert_eq!(spec.sampling, Sampling::llama_cpp_python(0.7));
        assert_eq!(spec.model.path, PathBuf::from(&row.model_path));
    }
}
