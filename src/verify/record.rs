//! `verify.json`: what a verification measured (every session of every
//! round, raw), what it concluded per configuration and app runtime (the
//! paired ratio with its interval, the verdict, the causes), and which
//! runtimes could not be used and why. Written atomically; read by export,
//! report and status.

use super::diagnose::{self, Cause, Facts, Verdict};
use super::{Subject, info_of, pairs};
use crate::knobs;
use crate::plan::references::Role;
use crate::runtime::{RuntimeError, RuntimeInfo, RuntimeKind, Session};
use crate::stats::{self, RatioInterval, paired_ratio};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const VERIFY_JSON: &str = "verify.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub verified_at: String,
    pub rounds: usize,
    /// Measured requests per session.
    pub repetitions: u32,
    /// The request shape, e.g. `256 prompt + 64 generated tokens,
    /// temperature 0.7`.
    pub request: String,
    /// The runtimes that could be used, llama-sweep's first.
    pub runtimes: Vec<RuntimeInfo>,
    /// The runtimes that could not, and why.
    pub failures: Vec<Failure>,
    pub results: Vec<VerifyResult>,
    pub sessions: Vec<SessionRecord>,
}

impl Verification {
    /// The result of `trial_id` in `kind`.
    pub fn result(&self, trial_id: &str, kind: RuntimeKind) -> Option<&VerifyResult> {
        self.results
            .iter()
            .find(|r| r.trial_id == trial_id && r.runtime == kind)
    }

    /// The app runtimes that measured something.
    pub fn verified_in(&self) -> Vec<RuntimeKind> {
        let mut kinds: Vec<RuntimeKind> = self
            .results
            .iter()
            .filter(|r| r.ratio.is_some())
            .map(|r| r.runtime)
            .collect();
        kinds.dedup();
        kinds
    }
}

/// A runtime that could not be used at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub runtime: RuntimeKind,
    pub program: String,
    pub reason: String,
    pub log: Option<String>,
}

impl Failure {
    pub fn of(runtime: RuntimeKind, program: &str, e: &RuntimeError) -> Failure {
        Failure {
            runtime,
            program: program.to_string(),
            reason: e.reason.clone(),
            log: e.log.as_ref().map(|l| l.display().to_string()),
        }
    }
}

/// One session: a configuration loaded and measured once in one runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// From 1.
    pub round: usize,
    pub trial_id: String,
    pub runtime: RuntimeKind,
    pub log: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Measured(Session),
    Failed(String),
}

/// A ratio and its 95% interval, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Ratio {
    pub ratio: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

impl From<RatioInterval> for Ratio {
    fn from(r: RatioInterval) -> Ratio {
        Ratio {
            ratio: r.ratio,
            low: r.low,
            high: r.high,
        }
    }
}

impl From<Ratio> for RatioInterval {
    fn from(r: Ratio) -> RatioInterval {
        RatioInterval {
            ratio: r.ratio,
            low: r.low,
            high: r.high,
        }
    }
}

/// One configuration in one app runtime, against llama-sweep's runtime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyResult {
    /// `None`: the recommended configuration.
    pub role: Option<Role>,
    pub trial_id: String,
    pub runtime: RuntimeKind,
    /// Geometric means over the rounds both measured, t/s.
    pub sweep_gen_tps: Option<f64>,
    pub app_gen_tps: Option<f64>,
    /// The sweep phase's own figure for the trial (tg t/s), for reference.
    pub recorded_tg_tps: Option<f64>,
    /// App over sweep generation t/s, paired by round.
    pub ratio: Option<Ratio>,
    /// App over sweep time to first token, paired by round.
    pub ttft_ratio: Option<Ratio>,
    pub rounds_paired: usize,
    pub verdict: Option<Verdict>,
    /// Why the app's runtime could not measure it, when it could not.
    pub error: Option<String>,
    pub causes: Vec<Cause>,
}

fn mean(values: &[f64]) -> Option<f64> {
    stats::Summary::of(values).map(|s| s.mean)
}

/// The geometric mean of positive values.
fn geomean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let logs: Vec<f64> = values.filter(|v| *v > 0.0).map(f64::ln).collect();
    stats::Summary::of(&logs).map(|s| s.mean.exp())
}

/// The results per subject and app runtime, from the sessions.
pub fn results(v: &Verification, subjects: &[Subject]) -> Vec<VerifyResult> {
    let Some(sweep) = info_of(&v.runtimes, RuntimeKind::Sweep) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for subject in subjects {
        let row = subject.row;
        let of = |kind: RuntimeKind| -> Vec<&Session> {
            v.sessions
                .iter()
                .filter(|s| s.trial_id == row.trial_id && s.runtime == kind)
                .filter_map(|s| match &s.outcome {
                    Outcome::Measured(session) => Some(session),
                    Outcome::Failed(_) => None,
                })
                .collect()
        };
        let sweep_sessions = of(RuntimeKind::Sweep);
        for app in v.runtimes.iter().filter(|i| i.kind != RuntimeKind::Sweep) {
            let app_sessions = of(app.kind);
            let gen_pairs = pairs(&v.sessions, &row.trial_id, app.kind, |s| mean(&s.gen_tps));
            let ttft = pairs(&v.sessions, &row.trial_id, app.kind, |s| mean(&s.ttft_ms));
            let ratio = paired_ratio(&gen_pairs);
            let error = v
                .sessions
                .iter()
                .filter(|s| s.trial_id == row.trial_id && s.runtime == app.kind)
                .find_map(|s| match &s.outcome {
                    Outcome::Failed(reason) => Some(reason.clone()),
                    Outcome::Measured(_) => None,
                });
            let last = |sessions: &[&Session], f: fn(&Session) -> Option<(u32, u32)>| {
                sessions.iter().rev().find_map(|s| f(s))
            };
            let layers = |s: &Session| s.layers_offloaded.map(|n| (n, s.layers_total.unwrap_or(0)));
            let client_share = {
                let client = geomean(app_sessions.iter().flat_map(|s| s.gen_tps.iter().copied()));
                let counter = geomean(
                    app_sessions
                        .iter()
                        .flat_map(|s| s.runtime_gen_tps.iter().copied()),
                );
                client.zip(counter).map(|(c, r)| c / r)
            };
            let facts = Facts {
                app,
                sweep,
                ratio,
                asked_gpu_layers: row.params.int(knobs::N_GPU_LAYERS),
                sweep_layers: last(&sweep_sessions, layers)
                    .or(row.layers_offloaded.zip(row.layers_total)),
                app_layers: last(&app_sessions, layers),
                config_threads: row.params.int(knobs::N_THREADS),
                app_threads: app_sessions.iter().rev().find_map(|s| s.n_threads),
                sweep_cpus: sweep_sessions.iter().rev().find_map(|s| s.cpus_allowed),
                app_cpus: app_sessions.iter().rev().find_map(|s| s.cpus_allowed),
                app_client_share: client_share,
            };
            out.push(VerifyResult {
                role: subject.role,
                trial_id: row.trial_id.clone(),
                runtime: app.kind,
                sweep_gen_tps: geomean(gen_pairs.iter().map(|p| p.1)),
                app_gen_tps: geomean(gen_pairs.iter().map(|p| p.0)),
                recorded_tg_tps: row.tg_tps_mean,
                ratio: ratio.map(Ratio::from),
                ttft_ratio: paired_ratio(&ttft).map(Ratio::from),
                rounds_paired: gen_pairs.len(),
                verdict: ratio.as_ref().map(Verdict::of),
                error,
                causes: diagnose::diagnose(&facts),
            });
        }
    }
    out
}

pub fn write(folder: &Path, v: &Verification) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(v)?;
    crate::store::write_atomically(&folder.join(VERIFY_JSON), json.as_bytes())
}

/// The folder's verification, if it has one that can be read.
pub fn read(folder: &Path) -> anyhow::Result<Option<Verification>> {
    let path = folder.join(VERIFY_JSON);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .with_context(|| format!("{} is not a llama-sweep verification", path.display()))
}
