//! llama.cpp's `--fit` as a reference. llama-server fits n_gpu_layers, the
//! tensor split and MoE overrides to the devices' free memory by itself
//! (on by default), so a recommendation has to beat what fit picks. A child
//! asks fit (no weights are loaded); where it changes llama-server's
//! defaults, those settings become a third reference trial. Where it
//! changes nothing — a CPU-only machine has nothing to place — the reason
//! is recorded instead of measuring a copy of the defaults.

use crate::knobs::Params;
use crate::protocol::{ChildJob, ChildReply, FitJob, FitReport, ModelVariant};
use crate::runner::{ChildEnding, Children};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Fit loads no weights; a minute covers reading a large model's header.
const TIMEOUT: Duration = Duration::from_secs(120);

/// What came of asking fit, as the manifest and the report keep it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitSummary {
    /// The settings fit changed (empty: none), measured as the `fit`
    /// reference when not empty.
    pub changed: Params,
    /// What fit did, in a sentence.
    pub note: String,
    /// The child's log, relative to the sweep folder.
    pub log: String,
}

impl FitSummary {
    pub fn measured(&self) -> bool {
        !self.changed.is_empty()
    }

    /// What a sweep does with it, in a sentence.
    pub fn in_sweep(&self) -> String {
        if self.measured() {
            format!("{}: measured as a reference", self.note)
        } else {
            format!(
                "{}; not measured as a reference (llama-server's defaults are)",
                self.note
            )
        }
    }
}

/// Asks fit about `variant` started from `params` (llama-server's
/// defaults). `None` when a stop was asked for.
pub fn ask(
    children: &mut dyn Children,
    variant: &ModelVariant,
    params: &Params,
    folder: &Path,
) -> anyhow::Result<Option<FitSummary>> {
    let log = "logs/fit.log".to_string();
    let job = ChildJob::Fit(FitJob {
        model: variant.clone(),
        params: params.clone(),
    });
    let ending = children.run(&job, &folder.join(&log), TIMEOUT)?;
    if ending.interrupted {
        return Ok(None);
    }
    Ok(Some(summarize(&ending, log)))
}

fn describe_changes(changed: &Params) -> String {
    changed
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The summary of fit's answer.
pub fn summarize(ending: &ChildEnding, log: String) -> FitSummary {
    let nothing = |note: String| FitSummary {
        changed: Params::default(),
        note,
        log: log.clone(),
    };
    let report: &FitReport = match &ending.reply {
        Ok(ChildReply::Fitted(report)) => report,
        Ok(ChildReply::Failed { reason }) => {
            return nothing(format!("llama.cpp's fit failed: {reason}"));
        }
        Ok(_) | Err(_) => {
            return nothing(format!(
                "the fit child ended without an answer ({}; see {log})",
                ending.exit
            ));
        }
    };
    let gpus = report.devices.iter().filter(|d| d.kind != "cpu").count();
    if report.status != "success" {
        return nothing(format!(
            "it found no placement that fits the free memory ({}); llama-server would start \
             anyway and may run out of memory",
            report.status
        ));
    }
    if report.changed.is_empty() {
        return nothing(if gpus == 0 {
            "it changes nothing: this llama.cpp offers no GPU, so --fit has nothing to place \
             and llama-server runs its defaults"
                .into()
        } else {
            "it changes nothing: the model and its context fit the GPU memory as they are".into()
        });
    }
    FitSummary {
        note: format!(
            "it chose {} for the free memory of {} GPU device(s)",
            describe_changes(&report.changed),
            gpus
        ),
        changed: report.changed.clone(),
        log,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{self, Value};
    use crate::protocol::DeviceInfo;
    use crate::runner::mock;

    fn device(kind: &str) -> DeviceInfo {
        DeviceInfo {
            name: if kind == "cpu" { "CPU" } else { "CUDA0" }.into(),
            description: String::new(),
            backend: String::new(),
            kind: kind.into(),
            memory_total_bytes: 24 << 30,
            memory_free_bytes: 20 << 30,
        }
    }

    fn fitted(changed: Params, status: &str, devices: Vec<DeviceInfo>) -> ChildEnding {
        mock::ended(ChildReply::Fitted(FitReport {
            status: status.into(),
            changed,
            devices,
        }))
    }

    #[test]
    fn a_cpu_only_machine_says_why_nothing_is_measured() {
        let s = summarize(
            &fitted(Params::default(), "success", vec![device("cpu")]),
            "logs/fit.log".into(),
        );
        assert!(!s.measured());
        assert!(s.note.contains("no GPU"), "{}", s.note);
    }

    #[test]
    fn what_fit_changed_is_the_reference() {
        let changed = Params::default()
            .with(knobs::N_GPU_LAYERS, Value::Int(20))
            .with(
                knobs::OVERRIDE_TENSOR,
                Value::Text("blk\\.20\\.ffn_(up|gate)_exps=CPU".into()),
            );
        let s = summarize(
            &fitted(
                changed.clone(),
                "success",
                vec![device("gpu"), device("cpu")],
            ),
            "l".into(),
        );
        assert!(s.measured());
        assert_eq!(s.changed, changed);
        assert!(s.note.contains("n_gpu_layers=20"), "{}", s.note);
        let unchanged = summarize(
            &fitted(Params::default(), "success", vec![device("gpu")]),
            "l".into(),
        );
        assert!(
            unchanged.note.contains("changes nothing"),
            "{}",
            unchanged.note
        );
        let failed = summarize(&fitted(changed, "failure", vec![device("gpu")]), "l".into());
        assert!(!failed.measured() && failed.note.contains("no placement"));
    }

    #[test]
    fn a_crashed_fit_is_a_note_not_an_error() {
        let s = summarize(&mock::died(11), "logs/fit.log".into());
        assert!(
            !s.measured() && s.note.contains("logs/fit.log"),
            "{}",
            s.note
        );
    }
}
