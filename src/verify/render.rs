//! A verification in words: the terminal's lines, the one line config.yaml's
//! header and the other exports carry, and the line that says how to verify
//! when nothing was.

use super::diagnose::Verdict;
use super::record::{Ratio, Verification, VerifyResult};
use crate::runtime::RuntimeKind;
use crate::stats::RatioInterval;

fn interval(r: &Ratio, rounds: usize) -> String {
    let i = RatioInterval::from(*r);
    match (i.low, i.high) {
        (Some(l), Some(h)) => format!("{:.2}× (95% CI {l:.2}–{h:.2}×, {rounds} rounds)", i.ratio),
        _ => format!("{:.2}× (one round: no interval)", i.ratio),
    }
}

fn runtime_name(v: &Verification, kind: RuntimeKind) -> String {
    super::info_of(&v.runtimes, kind).map_or_else(|| kind.to_string(), |i| i.version.clone())
}

/// `recommended 7bdd53add21f`, `baseline 2c9dd07d91f8`.
fn subject(r: &VerifyResult) -> String {
    let label = match r.role {
        None => "recommended",
        Some(crate::plan::references::Role::Baseline) => "baseline",
        Some(_) => "reference",
    };
    format!("{label} {}", r.trial_id)
}

/// One result as a sentence.
fn sentence(v: &Verification, r: &VerifyResult) -> String {
    let name = runtime_name(v, r.runtime);
    match (&r.ratio, r.app_gen_tps, r.sweep_gen_tps) {
        (Some(ratio), Some(app), Some(sweep)) => {
            let ttft = r
                .ttft_ratio
                .map(|t| format!("; first token {}", interval(&t, r.rounds_paired)))
                .unwrap_or_default();
            format!(
                "{} in {name}: generation {app:.1} t/s, {} llama-sweep's {sweep:.1} t/s in the same \
                 rounds: {}{ttft}",
                subject(r),
                interval(ratio, r.rounds_paired),
                r.verdict
                    .unwrap_or(Verdict::Unclear)
                    .reading(ratio.low.zip(ratio.high))
            )
        }
        _ => format!(
            "{} in {name}: not measured: {}",
            subject(r),
            r.error.as_deref().unwrap_or("no session completed")
        ),
    }
}

/// The terminal's account: what each runtime is, each result with its
/// causes and fixes, and the runtimes that could not be used.
pub fn lines(v: &Verification) -> Vec<String> {
    let mut out = Vec::new();
    for info in &v.runtimes {
        out.push(format!("runtime: {}", info.describe()));
    }
    for r in &v.results {
        out.push(sentence(v, r));
        for (i, cause) in r.causes.iter().enumerate() {
            let lead = if i == 0 { "likeliest cause" } else { "also" };
            out.push(format!("  {lead}: {}", cause.what));
            out.push(format!("  fix: {}", cause.fix));
        }
    }
    for f in &v.failures {
        out.push(format!(
            "{} ({}) could not be used: {}{}",
            f.runtime,
            f.program,
            f.reason,
            f.log
                .as_ref()
                .map(|l| format!(" (log: {l})"))
                .unwrap_or_default()
        ));
    }
    out
}

/// config.yaml's line for `trial_id`: its figure in each app runtime, the
/// verdict and the likeliest cause; `None` when the verification did not
/// cover the trial.
pub fn header_line(v: &Verification, trial_id: &str) -> Option<String> {
    let parts: Vec<String> = v
        .results
        .iter()
        .filter(|r| r.trial_id == trial_id)
        .map(|r| {
            let name = runtime_name(v, r.runtime);
            match (&r.ratio, r.app_gen_tps) {
                (Some(ratio), Some(app)) => {
                    let cause = r
                        .causes
                        .first()
                        .map(|c| format!("; likeliest cause: {}; fix: {}", c.what, c.fix))
                        .unwrap_or_default();
                    format!(
                        "{name} {app:.1} t/s, {} of llama-sweep's, {}{cause}",
                        interval(ratio, r.rounds_paired),
                        r.verdict
                            .unwrap_or(Verdict::Unclear)
                            .reading(ratio.low.zip(ratio.high))
                    )
                }
                _ => format!(
                    "{name} could not run it: {}",
                    r.error.as_deref().unwrap_or("no session completed")
                ),
            }
        })
        .collect();
    let sweep = v
        .results
        .iter()
        .filter(|r| r.trial_id == trial_id)
        .find_map(|r| r.sweep_gen_tps)
        .map(|t| format!("llama-sweep's own runtime generated {t:.1} t/s in the same rounds (after the prompt, so not the empty-cache tg figure above); "))
        .unwrap_or_default();
    (!parts.is_empty()).then(|| {
        format!(
            "verified in your app ({}, {}): {sweep}{}",
            v.request,
            v.verified_at,
            parts.join("; ")
        )
    })
}

/// The line on how `row` fared in the app's runtimes: `folder`'s
/// verification when it covers the trial; for a trial measured through
/// llama-server, that it was; else how to verify it.
pub fn app_line(folder: &std::path::Path, row: &crate::store::row::TrialRow) -> String {
    super::record::read(folder)
        .ok()
        .flatten()
        .and_then(|v| header_line(&v, &row.trial_id))
        .or_else(|| row.runtime.as_deref().map(measured_in))
        .unwrap_or_else(|| not_verified_line(&folder.display().to_string()))
}

/// The line for a trial measured in the app's runtime `runtime` (`[sweep]
/// runtime`): llama-server or llama-cpp-python.
pub fn measured_in(runtime: &str) -> String {
    if runtime == crate::runtime::RuntimeKind::Python.name() {
        "measured in llama-cpp-python itself: every figure of this trial came from the \
         interpreter the sweep names ([app] python), which loaded Llama() with these keyword \
         arguments and sent it the app's requests"
            .into()
    } else {
        format!(
            "measured in {runtime} itself: every figure of this trial came from the \
             llama-server the sweep names ([app] server), started with these arguments and sent \
             the app's requests"
        )
    }
}

/// The line for a configuration that was not verified: how to do it.
pub fn not_verified_line(folder: &str) -> String {
    format!(
        "not verified in your app: llama-sweep verify {folder} --python /path/to/app/venv/bin/python \
         (or --server /path/to/llama-server) measures it there, or name them under [app] in the \
         sweep file"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RuntimeInfo;
    use crate::verify::diagnose::Cause;

    fn verification() -> Verification {
        let info = |kind, version: &str| RuntimeInfo {
            kind,
            program: "p".into(),
            version: version.into(),
            llama_cpp: "b1".into(),
            backends: Vec::new(),
            supports_gpu_offload: false,
            devices: Vec::new(),
            system_info: String::new(),
        };
        Verification {
            verified_at: "2026-12-03T10:00:00Z".into(),
            rounds: 5,
            repetitions: 3,
            request: "256 prompt + 64 generated tokens, temperature 0.7".into(),
            runtimes: vec![
                info(RuntimeKind::Sweep, "llama-sweep 0.1.0"),
                info(RuntimeKind::Python, "llama-cpp-python 0.3.36"),
            ],
            failures: Vec::new(),
            results: vec![VerifyResult {
                role: None,
                trial_id: "abc".into(),
                runtime: RuntimeKind::Python,
                sweep_gen_tps: Some(110.0),
                app_gen_tps: Some(55.0),
                recorded_tg_tps: Some(112.0),
                ratio: Some(Ratio {
                    ratio: 0.5,
                    low: Some(0.45),
                    high: Some(0.55),
                }),
                ttft_ratio: None,
                rounds_paired: 5,
                verdict: Some(Verdict::Slower),
                error: None,
                causes: vec![Cause {
                    kind: "fewer-cpus".into(),
                    what: "it could run on 1 CPU".into(),
                    fix: "give it 2".into(),
                }],
            }],
            sessions: Vec::new(),
        }
    }

    #[test]
    fn the_header_line_gives_the_ratio_its_interval_and_the_cause() {
        let v = verification();
        assert_eq!(
            header_line(&v, "abc").unwrap(),
            "verified in your app (256 prompt + 64 generated tokens, temperature 0.7, \
             2026-12-03T10:00:00Z): llama-sweep's own runtime generated 110.0 t/s in the same \
             rounds (after the prompt, so not the empty-cache tg figure above); llama-cpp-python \
             0.3.36 55.0 t/s, 0.50× (95% CI 0.45–0.55×, 5 rounds) of llama-sweep's, slower than \
             the sweep measured; likeliest cause: it could run on 1 CPU; fix: give it 2"
        );
        assert!(header_line(&v, "other").is_none());
        let text = lines(&v).join("\n");
        assert!(
            text.contains("recommended abc in llama-cpp-python 0.3.36: generation 55.0 t/s, 0.50×"),
            "{text}"
        );
        assert!(
            text.contains("  likeliest cause: it could run on 1 CPU\n  fix: give it 2"),
            "{text}"
        );
    }
}
