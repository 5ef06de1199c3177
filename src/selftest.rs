//! The backend self-test. llama.cpp's kernels can crash or compute garbage
//! on some CPUs and GPUs (its AMX kernels segfault on some Xeons), and a
//! sweep that trusts llama.cpp's default code path gets nothing but crashed
//! rows there. So before any quality job or trial, one short child per
//! model variant loads it with the sweep's settings and decodes a prompt in
//! one batch and a few single tokens, checking the logits are numbers. When
//! that fails, it is tried again with fallbacks (repack off first) on knobs
//! the sweep leaves at llama.cpp's default; the first that works is forced
//! on every trial and quality job of that variant, and said in one plain
//! line, the manifest, the report and the exports. When nothing works the
//! sweep stops before its trials.

use crate::knobs::{self, FlashAttn, KnobId, Params, Value};
use crate::protocol::{BufferUse, ChildJob, ChildReply, ModelVariant, SelfTestJob};
use crate::runner::outcome::mentions_oom;
use crate::runner::{ChildEnding, Children, crash_site};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;

/// Tokens of the one-batch prompt and single-token decodes of a test.
pub const PROMPT_TOKENS: u32 = 64;
pub const GEN_TOKENS: u32 = 4;
/// A test still running after this is a hang.
const TIMEOUT: Duration = Duration::from_secs(180);

/// Whether a fallback setting may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// The sweep leaves the knob at llama.cpp's default: the fallback can be
    /// forced on its trials.
    Force,
    /// The sweep measures this value itself: a fallback that works shows the
    /// variant is usable, and forces nothing.
    Measured,
    /// The sweep sets the knob to other values only.
    No,
}

/// One try of the self-test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The settings tried on top of the sweep's (none: the sweep's own).
    pub fallback: Params,
    /// Whether the fallback is forced on the variant's trials when it works
    /// (false: the sweep measures it itself).
    #[serde(default = "yes")]
    pub forceable: bool,
    /// `ok`, `crashed`, `garbage`, `failed`, `oom` or `timeout`.
    pub status: String,
    /// What happened, in words (`None` when it worked).
    pub detail: Option<String>,
    pub pp_tps: Option<f64>,
    pub tg_tps: Option<f64>,
    /// Where llama.cpp put the weights.
    pub buffers: Vec<BufferUse>,
    /// The child's log, relative to the sweep folder.
    pub log: String,
}

fn yes() -> bool {
    true
}

impl Attempt {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    /// Whether it failed the way broken kernels fail (a crash, a hang,
    /// garbage), which a fallback may route around. A model llama.cpp
    /// cannot load, or memory that runs out, is not the kernels' doing: the
    /// trials record it themselves.
    pub fn is_kernel_failure(&self) -> bool {
        matches!(self.status.as_str(), "crashed" | "garbage" | "timeout")
    }
}

/// What the self-test found for one model variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantCheck {
    pub model: String,
    pub identity: String,
    pub attempts: Vec<Attempt>,
}

impl VariantCheck {
    /// The settings its trials must run with: those of the attempt that
    /// worked (empty when the sweep's own did, or nothing did).
    pub fn forced(&self) -> Params {
        self.attempts
            .iter()
            .find(|a| a.is_ok())
            .filter(|a| a.forceable)
            .map(|a| a.fallback.clone())
            .unwrap_or_default()
    }

    pub fn works(&self) -> bool {
        self.attempts.iter().any(Attempt::is_ok)
    }

    /// The attempt with the sweep's own settings.
    fn first(&self) -> &Attempt {
        &self.attempts[0]
    }
}

/// The self-test of every variant of a sweep (kept in manifest.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackendCheck {
    pub variants: Vec<VariantCheck>,
}

/// Whose code the failure points at: a known llama.cpp bug, the extra
/// buffer type the weights were in, or llama.cpp's kernels in general.
fn culprit(attempt: &Attempt) -> String {
    let site = attempt
        .detail
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let extra: Vec<&str> = attempt
        .buffers
        .iter()
        .map(|b| b.name.as_str())
        .filter(|n| !matches!(*n, "CPU" | "CPU_Mapped") && !n.contains("Host"))
        .collect();
    if site.contains("amx") || extra.iter().any(|n| n.eq_ignore_ascii_case("AMX")) {
        return "llama.cpp's AMX kernels (a known llama.cpp bug: ggml-org/llama.cpp#20824)".into();
    }
    match extra.first() {
        Some(name) => format!("llama.cpp's kernels for its {name} weight buffers"),
        None => "llama.cpp's kernels".into(),
    }
}

impl BackendCheck {
    /// The settings forced on the trials of the variant `identity`.
    pub fn forced_for(&self, identity: &str) -> Params {
        self.variants
            .iter()
            .find(|v| v.identity == identity)
            .map(VariantCheck::forced)
            .unwrap_or_default()
    }

    /// The line [`lines`](Self::lines) says of the variant `identity`, if
    /// any.
    pub fn line_for(&self, identity: &str) -> Option<String> {
        BackendCheck {
            variants: self
                .variants
                .iter()
                .filter(|v| v.identity == identity)
                .cloned()
                .collect(),
        }
        .lines()
        .into_iter()
        .next()
    }

    /// The variants whose kernels failed with every setting tried.
    pub fn broken(&self) -> Vec<&VariantCheck> {
        self.variants
            .iter()
            .filter(|v| v.attempts.iter().all(Attempt::is_kernel_failure))
            .collect()
    }

    /// One plain line per variant the sweep's own settings failed for:
    /// what failed, whose code, what runs instead, the key that overrides
    /// it.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in self
            .variants
            .iter()
            .filter(|v| v.first().is_kernel_failure())
        {
            let first = v.first();
            let what = first.detail.clone().unwrap_or_else(|| first.status.clone());
            let fix = match v.attempts.iter().find(|a| a.is_ok()) {
                Some(a) if !a.forceable => format!(
                    "it works with {}, which the sweep measures too: its trials with the sweep's \
                     other values will fail the same way",
                    a.fallback
                ),
                Some(a) => {
                    let forced = a.fallback.to_string();
                    let keys: Vec<&str> = a.fallback.iter().map(|(k, _)| k.name()).collect();
                    format!(
                        "it works with {forced}, so every trial and quality job of it runs with \
                         {forced} (set {} in [space] to measure otherwise)",
                        keys.join(" and ")
                    )
                }
                None => format!(
                    "no fallback worked ({}); see {}",
                    v.attempts[1..]
                        .iter()
                        .map(|a| format!("{}: {}", a.fallback, a.status))
                        .collect::<Vec<_>>()
                        .join(", "),
                    first.log
                ),
            };
            out.push(format!(
                "backend self-test: {} {what}, in {}; {fix}",
                v.model,
                culprit(first)
            ));
        }
        out
    }
}

/// The fallbacks to try, in order; each only where the sweep leaves all its
/// knobs at llama.cpp's default.
fn fallbacks() -> Vec<Params> {
    let no_repack = (knobs::REPACK, Value::Bool(false));
    let no_flash = (knobs::FLASH_ATTN, FlashAttn::Off.into());
    vec![
        [no_repack.clone()].into_iter().collect(),
        [no_flash.clone()].into_iter().collect(),
        [no_repack, no_flash].into_iter().collect(),
    ]
}

/// What one test child's ending says.
fn attempt_of(
    ending: ChildEnding,
    fallback: Params,
    forceable: bool,
    log: &Path,
    log_name: String,
) -> Attempt {
    let log_end = crate::runner::outcome::log_end(log);
    let buffers = crate::llama_log::model_buffers(&log_end);
    let died = |exit: &dyn std::fmt::Display| {
        let site = crash_site::find(&log_end)
            .and_then(|s| s.describe())
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        format!("crashed ({exit}){site}")
    };
    let (status, detail, pp, tg) = match ending.reply {
        Ok(ChildReply::SelfTested(r)) => ("ok", None, Some(r.pp_tps), Some(r.tg_tps)),
        Ok(ChildReply::Failed { reason }) if reason.contains(crate::protocol::GARBAGE) => (
            "garbage",
            Some(crate::runner::outcome::first_line(Some(&reason)).to_string()),
            None,
            None,
        ),
        Ok(ChildReply::Failed { reason }) if mentions_oom(&reason) => {
            ("oom", Some(reason), None, None)
        }
        Ok(ChildReply::Failed { reason }) => ("failed", Some(reason), None, None),
        _ if ending.timed_out => (
            "timeout",
            Some(format!("hung (no answer within {} s)", TIMEOUT.as_secs())),
            None,
            None,
        ),
        _ => ("crashed", Some(died(&ending.exit)), None, None),
    };
    Attempt {
        fallback,
        forceable,
        status: status.into(),
        detail,
        pp_tps: pp,
        tg_tps: tg,
        buffers,
        log: log_name,
    }
}

/// One self-test of `variant` with `params`, its log at `log_name` under
/// `folder`. `None` when a stop was asked for.
pub fn try_once(
    children: &mut dyn Children,
    variant: &ModelVariant,
    params: &Params,
    folder: &Path,
    log_name: String,
) -> anyhow::Result<Option<Attempt>> {
    let log = folder.join(&log_name);
    let job = ChildJob::SelfTest(SelfTestJob {
        model: variant.clone(),
        params: params.clone(),
        prompt_tokens: PROMPT_TOKENS,
        gen_tokens: GEN_TOKENS,
        seed: 0,
    });
    let ending = children.run(&job, &log, TIMEOUT)?;
    if ending.interrupted {
        return Ok(None);
    }
    Ok(Some(attempt_of(
        ending,
        Params::default(),
        true,
        &log,
        log_name,
    )))
}

/// Tests every variant (with the settings of its first trial) and, where
/// that fails, the fallbacks `usable` allows (see [`Use`]). Logs go to
/// `logs/selftest-<n>.log` under `folder`. `None` when a stop was asked
/// for.
pub fn check(
    children: &mut dyn Children,
    variants: &[(ModelVariant, Params)],
    usable: &dyn Fn(KnobId, &Value) -> Use,
    folder: &Path,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<Option<BackendCheck>> {
    let mut result = BackendCheck::default();
    let mut n = 0;
    for (variant, params) in variants {
        let mut attempts: Vec<Attempt> = Vec::new();
        let candidates = std::iter::once((Params::default(), true)).chain(
            fallbacks().into_iter().filter_map(|f| {
                let uses: Vec<Use> = f.iter().map(|(k, v)| usable(k, v)).collect();
                if uses.contains(&Use::No) {
                    return None;
                }
                Some((f, uses.iter().all(|u| *u == Use::Force)))
            }),
        );
        for (fallback, forceable) in candidates {
            // Only a kernel failure is worth a fallback.
            if attempts.last().is_some_and(|a| !a.is_kernel_failure()) {
                break;
            }
            n += 1;
            let log_name = format!("{}/selftest-{n}.log", crate::store::LOGS);
            let Some(attempt) = try_once(
                children,
                variant,
                &params.overlaid(&fallback),
                folder,
                log_name,
            )?
            else {
                return Ok(None);
            };
            let attempt = Attempt {
                fallback,
                forceable,
                ..attempt
            };
            if !attempt.is_ok() || !attempts.is_empty() {
                say(format!(
                    "  self-test {} {}{}: {}",
                    variant.name,
                    variant.variant,
                    match attempt.fallback.to_string() {
                        s if s.is_empty() => String::new(),
                        s => format!(" with {s}"),
                    },
                    attempt.detail.as_deref().unwrap_or("works")
                ));
            }
            attempts.push(attempt);
        }
        result.variants.push(VariantCheck {
            model: format!("{} {}", variant.name, variant.variant),
            identity: variant.identity.clone(),
            attempts,
        });
    }
    Ok(Some(result))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::SelfTestReport;
    use crate::runner::mock::{self, MockChildren};

    fn variant(v: &str) -> ModelVariant {
        ModelVariant {
            name: "m".into(),
            variant: v.into(),
            path: format!("m-{v}.gguf").into(),
            identity: format!("id-{v}"),
        }
    }

    fn works() -> ChildEnding {
        mock::ended(ChildReply::SelfTested(SelfTestReport {
            pp_tps: 300.0,
            tg_tps: 100.0,
            buffers: vec![],
            seconds: 0.5,
        }))
    }

    fn run(
        answer: impl FnMut(&ChildJob) -> ChildEnding,
        usable: &dyn Fn(KnobId, &Value) -> Use,
    ) -> (BackendCheck, Vec<ChildJob>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("logs")).unwrap();
        let mut children = MockChildren::new(answer);
        let variants = [
            (variant("Q4_1"), Params::default()),
            (variant("Q8_0"), Params::default()),
        ];
        let check = check(&mut children, &variants, usable, dir.path(), &mut |_| {})
            .unwrap()
            .unwrap();
        (check, children.jobs)
    }

    fn repacks(job: &ChildJob) -> bool {
        match job {
            ChildJob::SelfTest(t) => t.params.flag(knobs::REPACK) != Some(false),
            _ => panic!("only self-tests: {job:?}"),
        }
    }

    #[test]
    fn a_machine_where_the_default_works_runs_one_test_per_variant_and_forces_nothing() {
        let (check, jobs) = run(|_| works(), &|_, _| Use::Force);
        assert_eq!(jobs.len(), 2);
        assert!(
            check
                .variants
                .iter()
                .all(|v| v.works() && v.forced().is_empty())
        );
        assert!(check.lines().is_empty());
        assert!(check.broken().is_empty());
    }

    #[test]
    fn a_crash_with_repacking_is_routed_around_with_repack_off_and_said_in_one_line() {
        let (check, jobs) = run(
            |job| {
                if repacks(job) {
                    mock::died(libc::SIGSEGV)
                } else {
                    works()
                }
            },
            &|_, _| Use::Force,
        );
        assert_eq!(jobs.len(), 4, "each variant: the default, then repack off");
        let forced = check.forced_for("id-Q4_1");
        assert_eq!(forced.flag(knobs::REPACK), Some(false));
        let lines = check.lines();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].contains("m Q4_1 crashed (signal 11 (SIGSEGV))"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("repack=false"), "{}", lines[0]);
        assert!(lines[0].contains("set repack in [space]"), "{}", lines[0]);
    }

    #[test]
    fn garbage_is_a_failure_too_and_a_knob_the_sweep_sets_is_not_a_fallback() {
        let nan = || {
            mock::ended(ChildReply::Failed {
                reason: format!(
                    "llama.cpp returned {} after a prompt",
                    crate::protocol::GARBAGE
                ),
            })
        };
        // The sweep sets repack itself: only the flash attention fallback.
        let (check, jobs) = run(
            |job| match job {
                ChildJob::SelfTest(t) if t.params.flash_attn() == Some(FlashAttn::Off) => works(),
                _ => nan(),
            },
            &|k, _| {
                if k == knobs::REPACK {
                    Use::No
                } else {
                    Use::Force
                }
            },
        );
        assert_eq!(jobs.len(), 4);
        assert_eq!(check.variants[0].attempts[0].status, "garbage");
        assert_eq!(
            check.forced_for("id-Q8_0").flash_attn(),
            Some(FlashAttn::Off)
        );
        assert!(check.forced_for("id-Q8_0").get(knobs::REPACK).is_none());
    }

    #[test]
    fn a_value_the_sweep_measures_itself_shows_the_variant_works_and_forces_nothing() {
        let (check, _) = run(
            |job| {
                if repacks(job) {
                    mock::died(libc::SIGSEGV)
                } else {
                    works()
                }
            },
            &|k, v| {
                if k == knobs::REPACK && *v == Value::Bool(false) {
                    Use::Measured
                } else {
                    Use::No
                }
            },
        );
        assert!(check.broken().is_empty());
        assert!(check.forced_for("id-Q4_1").is_empty());
        assert!(
            check.lines()[0].contains("which the sweep measures too"),
            "{}",
            check.lines()[0]
        );
    }

    #[test]
    fn a_model_llama_cpp_cannot_load_is_not_a_kernel_failure() {
        let (check, jobs) = run(
            |_| {
                mock::ended(ChildReply::Failed {
                    reason: "cannot load model m.gguf: invalid magic".into(),
                })
            },
            &|_, _| Use::Force,
        );
        assert_eq!(jobs.len(), 2, "no fallback for a model that does not load");
        assert!(check.broken().is_empty(), "its trials say why themselves");
        assert!(check.lines().is_empty());
        assert!(check.forced_for("id-Q4_1").is_empty());
    }

    #[test]
    fn when_nothing_works_the_variant_is_broken_and_the_line_names_the_log() {
        let (check, _) = run(|_| mock::died(libc::SIGILL), &|_, _| Use::Force);
        assert_eq!(check.broken().len(), 2);
        let line = &check.lines()[0];
        assert!(
            line.contains("no fallback worked") && line.contains("logs/selftest-1.log"),
            "{line}"
        );
    }

    #[test]
    fn an_amx_buffer_names_the_known_llama_cpp_bug() {
        let attempt = Attempt {
            fallback: Params::default(),
            forceable: true,
            status: "crashed".into(),
            detail: Some("crashed (signal 11 (SIGSEGV))".into()),
            pp_tps: None,
            tg_tps: None,
            buffers: vec![BufferUse {
                name: "AMX".into(),
                mib: 51.3,
            }],
            log: "logs/selftest-1.log".into(),
        };
        assert!(culprit(&attempt).contains("ggml-org/llama.cpp#20824"));
        let repack = Attempt {
            buffers: vec![BufferUse {
                name: "CPU_REPACK".into(),
                mib: 10.0,
            }],
            ..attempt
        };
        assert!(culprit(&repack).contains("CPU_REPACK"));
    }
}
