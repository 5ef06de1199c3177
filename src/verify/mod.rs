//! Verification: the recommended configuration and the baseline, replayed
//! in the runtimes the app really uses (llama-cpp-python, llama-server)
//! exactly as exported, beside llama-sweep's own runtime in the same
//! rounds. A round runs every configuration once in every runtime, in a
//! rotating order, each session with its own unique prompts; the app's
//! generation t/s over llama-sweep's is taken within each round (a slow
//! minute of the machine hits both) and its 95% interval over the rounds
//! (`stats::paired_ratio`). Where the app differs beyond the noise,
//! `diagnose` names the likeliest cause from the evidence. Everything,
//! raw sessions included, goes to `verify.json` in the sweep folder.

pub mod diagnose;
pub mod record;
pub mod render;

use crate::config::AppRuntimes;
use crate::plan::references::Role;
use crate::runtime::{Runtime, RuntimeError, RuntimeInfo, RuntimeKind, Session, SessionJob};
use crate::stats::Summary;
use crate::store::row::TrialRow;
pub use record::{Outcome, SessionRecord, Verification};
use std::path::Path;
use std::time::Duration;

/// How a verification runs.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifySettings {
    /// Rounds: every configuration once in every runtime each.
    pub rounds: usize,
    /// Measured requests per session (after one warmup request).
    pub repetitions: u32,
    /// A session, model load included, must end within this.
    pub timeout: Duration,
    pub seed: u64,
}

/// A configuration to verify.
pub struct Subject<'a> {
    /// `None` for the recommended configuration.
    pub role: Option<Role>,
    pub row: &'a TrialRow,
}

impl Subject<'_> {
    pub fn label(&self) -> &'static str {
        match self.role {
            None => "recommended",
            Some(Role::Baseline) => "baseline",
            Some(Role::Defaults) => "llama-server's defaults",
            Some(Role::Fit) => "--fit",
        }
    }
}

/// Runs the verification of `subjects` in `apps`, beside `sweep` (llama-sweep's
/// own runtime), with logs and `verify.json` in `folder`. `say` gets one
/// line per step. Errors only when nothing can be written; a runtime that
/// fails is recorded with its reason.
pub fn verify(
    subjects: &[Subject],
    sweep: &dyn Runtime,
    apps: &[Box<dyn Runtime>],
    settings: &VerifySettings,
    temperature: f64,
    folder: &Path,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<Verification> {
    let logs = folder.join("verify");
    std::fs::create_dir_all(&logs)?;
    let mut runtimes: Vec<&dyn Runtime> = Vec::new();
    let mut infos = Vec::new();
    let mut failures = Vec::new();
    for runtime in std::iter::once(sweep).chain(apps.iter().map(|a| a.as_ref())) {
        let log = logs.join(format!("{}-probe.log", runtime.kind()));
        match runtime.probe(&log) {
            Ok(info) => {
                say(&format!("runtime: {}", info.describe()));
                infos.push(info);
                runtimes.push(runtime);
            }
            Err(e) => {
                say(&format!(
                    "{} ({}) cannot be used: {e}",
                    runtime.kind(),
                    runtime.program()
                ));
                failures.push(record::Failure::of(runtime.kind(), &runtime.program(), &e));
            }
        }
    }
    let mut sessions = Vec::new();
    if runtimes.len() > 1 && runtimes[0].kind() == RuntimeKind::Sweep {
        sessions = rounds(subjects, &runtimes, settings, temperature, &logs, say)?;
    }
    let first = subjects.first().map(|s| s.row);
    let mut verification = Verification {
        verified_at: crate::clock::now_rfc3339(),
        rounds: settings.rounds,
        repetitions: settings.repetitions,
        request: first.map_or_else(String::new, |r| {
            format!(
                "{} prompt + {} generated tokens, temperature {temperature}",
                r.request_prompt_tokens, r.request_max_tokens
            )
        }),
        runtimes: infos,
        failures,
        results: Vec::new(),
        sessions,
    };
    verification.results = record::results(&verification, subjects);
    record::write(folder, &verification)?;
    Ok(verification)
}

/// The rounds: per round, per subject, every runtime in a rotating order.
fn rounds(
    subjects: &[Subject],
    runtimes: &[&dyn Runtime],
    settings: &VerifySettings,
    temperature: f64,
    logs: &Path,
    say: &mut dyn FnMut(&str),
) -> anyhow::Result<Vec<SessionRecord>> {
    let mut sessions: Vec<SessionRecord> = Vec::new();
    // A runtime that failed a configuration in its first round is not
    // asked again: its failure is deterministic more often than not.
    let mut given_up: Vec<(String, RuntimeKind)> = Vec::new();
    for round in 0..settings.rounds {
        for (s, subject) in subjects.iter().enumerate() {
            let row = subject.row;
            let n_vocab = crate::runtime::prompts::vocabulary_size(Path::new(&row.model_path))?;
            let seed = settings.seed.wrapping_add((round * 1000 + s) as u64);
            // As many users at once as the configuration serves: a round of
            // them is one repetition, after one warm-up round.
            let concurrent = row.n_parallel() as usize;
            let job = SessionJob {
                row,
                prompts: crate::runtime::prompts::random_prompts(
                    seed,
                    n_vocab,
                    (1 + settings.repetitions as usize) * concurrent,
                    row.request_prompt_tokens,
                ),
                warmup: concurrent,
                concurrent,
                max_tokens: row.request_max_tokens,
                temperature,
                seed,
                timeout: settings.timeout,
            };
            for k in 0..runtimes.len() {
                let runtime = runtimes[(k + round) % runtimes.len()];
                let key = (row.trial_id.clone(), runtime.kind());
                if given_up.contains(&key) {
                    continue;
                }
                if crate::interrupt::requested() {
                    return Ok(sessions);
                }
                let log = logs.join(format!(
                    "r{}-{}-{}.log",
                    round + 1,
                    row.trial_id,
                    runtime.kind()
                ));
                let result = runtime.session(&job, &log);
                say(&line(
                    round,
                    settings.rounds,
                    subject,
                    runtime.kind(),
                    &result,
                ));
                if result.is_err() && round == 0 {
                    given_up.push(key);
                }
                sessions.push(SessionRecord {
                    round: round + 1,
                    trial_id: row.trial_id.clone(),
                    runtime: runtime.kind(),
                    log: log.display().to_string(),
                    outcome: match result {
                        Ok(session) => Outcome::Measured(session),
                        Err(e) => Outcome::Failed(e.reason),
                    },
                });
            }
        }
    }
    Ok(sessions)
}

/// `round 2/5, recommended 7bdd53add21f in llama-cpp-python: generation 96.1 t/s, first token 612 ms`.
fn line(
    round: usize,
    rounds: usize,
    subject: &Subject,
    kind: RuntimeKind,
    result: &Result<Session, RuntimeError>,
) -> String {
    let what = format!(
        "round {}/{rounds}, {} {} in {kind}",
        round + 1,
        subject.label(),
        subject.row.trial_id
    );
    match result {
        Ok(s) => format!(
            "{what}: generation {}, first token {}",
            mean(&s.gen_tps).map_or("?".into(), |v| format!("{v:.1} t/s")),
            mean(&s.ttft_ms).map_or("?".into(), |v| format!("{v:.0} ms")),
        ),
        Err(e) => format!("{what}: failed: {e}"),
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    Summary::of(values).map(|s| s.mean)
}

/// The pairs (app, sweep) of one configuration's figure per round, where
/// both runtimes measured it.
pub fn pairs(
    sessions: &[SessionRecord],
    trial_id: &str,
    app: RuntimeKind,
    figure: impl Fn(&Session) -> Option<f64>,
) -> Vec<(f64, f64)> {
    let value = |round: usize, kind: RuntimeKind| {
        sessions
            .iter()
            .find(|s| s.round == round && s.trial_id == trial_id && s.runtime == kind)
            .and_then(|s| match &s.outcome {
                Outcome::Measured(session) => figure(session),
                Outcome::Failed(_) => None,
            })
    };
    let last = sessions.iter().map(|s| s.round).max().unwrap_or(0);
    (1..=last)
        .filter_map(|r| Some((value(r, app)?, value(r, RuntimeKind::Sweep)?)))
        .collect()
}

/// The runtime infos of a verification, by kind.
pub fn info_of(infos: &[RuntimeInfo], kind: RuntimeKind) -> Option<&RuntimeInfo> {
    infos.iter().find(|i| i.kind == kind)
}

/// What to verify among `rows`: the recommended trial (`recommended`, else
/// the best feasible row by `objective`) and the baseline's row when it
/// completed and is another trial.
pub fn subjects<'a>(
    rows: &'a [TrialRow],
    objective: &crate::objective::Objective,
    recommended: Option<&str>,
    baseline: Option<&str>,
) -> anyhow::Result<Vec<Subject<'a>>> {
    let best = crate::export::choose(rows, objective, recommended)?;
    let mut subjects = vec![Subject {
        role: None,
        row: best,
    }];
    if let Some(id) = baseline.filter(|id| *id != best.trial_id) {
        if let Some(row) = rows.iter().rev().find(|r| r.trial_id == id && r.is_ok()) {
            subjects.push(Subject {
                role: Some(Role::Baseline),
                row,
            });
        }
    }
    Ok(subjects)
}

/// The app's runtimes a verification can still learn from, and why the
/// others are left out. When the recommended trial ran in an app's runtime
/// (`[sweep] runtime`, `trial_runtime`): that runtime measured every trial
/// with the app's requests already and is not asked again; another
/// llama-server would be paired with llama-sweep's own child, which has
/// none of llama-server's own knobs, and so would llama-cpp-python, which
/// cannot run them either.
pub fn left_to_verify(
    recommended: &TrialRow,
    runtimes: &AppRuntimes,
    trial_runtime: &crate::config::TrialRuntime,
) -> (AppRuntimes, Vec<String>) {
    let mut left = runtimes.clone();
    let mut why = Vec::new();
    // Llama() decodes one sequence at a time: a configuration that serves
    // several users at once cannot be run there as it was measured.
    let users = recommended.n_parallel() as u32;
    if users > 1 {
        if let Some(python) = left.python.take() {
            why.push(format!(
                "not verified in llama-cpp-python ({}): its Llama() serves one request at a \
                 time, and this configuration serves {users} at once (n_parallel); llama-server \
                 runs it with {users} concurrent clients",
                python.display()
            ));
        }
    }
    match recommended.runtime.as_deref() {
        None => return (left, why),
        Some(name) if name == crate::runtime::RuntimeKind::Python.name() => {
            if let Some(python) = left.python.take() {
                why.push(if trial_runtime.python() == Some(python.as_path()) {
                    format!(
                        "llama-cpp-python ({}) is not asked again: every trial of this sweep ran \
                         in it, with the app's requests, so the sweep's figures are its own",
                        python.display()
                    )
                } else {
                    format!(
                        "llama-cpp-python ({}) is not verified: the sweep's trials ran in another \
                         interpreter's; sweep in this one instead ([app] python)",
                        python.display()
                    )
                });
            }
            // verify pairs a runtime with llama-sweep's own build, which
            // measured none of these trials (and runs none of the settings
            // its backend self-test would force on them).
            if let Some(server) = left.server.take() {
                why.push(format!(
                    "llama-server ({}) is not verified: the sweep's trials ran in \
                     llama-cpp-python; to rank them in llama-server, sweep with runtime = \
                     \"server\"",
                    server.display()
                ));
            }
            return (left, why);
        }
        Some(_) => {}
    }
    if let Some(server) = left.server.take() {
        why.push(if trial_runtime.server() == Some(server.as_path()) {
            format!(
                "llama-server ({}) is not asked again: every trial of this sweep ran in it, with \
                 the app's requests, so the sweep's figures are its own",
                server.display()
            )
        } else {
            format!(
                "llama-server ({}) is not verified: the sweep's trials ran through another \
                 llama-server; sweep through this one instead ([app] server)",
                server.display()
            )
        });
    }
    let server_only: Vec<&str> = recommended
        .params
        .iter()
        .filter(|(knob, _)| knob.knob().server_only() && !recommended.is_defaulted(*knob))
        .map(|(knob, _)| knob.name())
        .collect();
    if !server_only.is_empty()
        && let Some(python) = left.python.take()
    {
        why.push(format!(
            "llama-cpp-python ({}) is not verified: the recommendation sets {}, which only \
             llama-server has",
            python.display(),
            server_only.join(", ")
        ));
    }
    (left, why)
}

/// The baseline's trial id, from the folder's plan.
pub fn baseline_of(folder: &Path) -> Option<String> {
    crate::store::plan_file::read(folder)
        .ok()
        .flatten()?
        .references
        .into_iter()
        .find(|r| r.role == Role::Baseline)
        .map(|r| r.trial_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_made_in_the_apps_python_is_not_verified_there_again() {
        let mut row = crate::test_support::row("t", &crate::runner::mock::measured(100.0, 400.0));
        row.runtime = Some("llama-cpp-python".into());
        let apps = AppRuntimes {
            python: Some("/app/bin/python".into()),
            server: Some("/usr/bin/llama-server".into()),
        };
        let swept_in = crate::config::TrialRuntime::Python("/app/bin/python".into());
        let (left, why) = left_to_verify(&row, &apps, &swept_in);
        assert_eq!(left, AppRuntimes::default(), "{why:?}");
        assert!(why[0].contains("is not asked again"), "{why:?}");
        assert!(why[1].contains("runtime = \"server\""), "{why:?}");
        let elsewhere = crate::config::TrialRuntime::Python("/other/bin/python".into());
        let (left, why) = left_to_verify(&row, &apps, &elsewhere);
        assert_eq!(left.python, None);
        assert!(why[0].contains("another interpreter's"), "{why:?}");
    }

    /// Issue 36, item 1: llama-cpp-python's Llama() serves one request at a
    /// time; a configuration of several users is not verified there, and
    /// the reason says where it can be.
    #[test]
    fn several_users_are_not_verified_in_a_runtime_that_serves_one() {
        let mut row = crate::test_support::row("t", &crate::runner::mock::measured(100.0, 400.0));
        let apps = AppRuntimes {
            python: Some("/app/bin/python".into()),
            server: Some("/usr/bin/llama-server".into()),
        };
        let (left, why) = left_to_verify(&row, &apps, &Default::default());
        assert_eq!(left, apps);
        assert!(why.is_empty());
        row.params
            .set(crate::knobs::N_PARALLEL, crate::knobs::Value::Int(4));
        let (left, why) = left_to_verify(&row, &apps, &Default::default());
        assert_eq!(left.python, None);
        assert_eq!(left.server, apps.server);
        assert!(
            why[0].contains("serves one request at a time") && why[0].contains("serves 4 at once"),
            "{why:?}"
        );
    }
}
