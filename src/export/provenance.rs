//! The comment header every exported file with comments starts with: where
//! the numbers came from (sweep, trial, measured speeds with their spread,
//! objective, constraints, how to reproduce), one line each, without the
//! comment marker, so every format writes them its own way.

use super::ExportContext;
use crate::knobs;
use crate::objective::{Measured, Metric, Speed};
use crate::store::row::TrialRow;

fn mean_sd(row: &TrialRow, metric: Metric) -> String {
    match (row.mean_of(metric), row.sd_of(metric)) {
        (Some(m), Some(sd)) => format!("{m:.1} ± {sd:.1} {}", metric.unit()),
        (Some(m), None) => format!("{m:.1} {}", metric.unit()),
        _ => "not measured".into(),
    }
}

/// What the app feels, first: `in your app's request of 256 prompt + 64
/// generated tokens: first token 939 ± 12 ms, then 56.0 ± 1.2 t/s (17.9 ms
/// a token; between tokens p50 17.5, p95 24.1 ms), 2.07 s in all (mean ±
/// sd of 3 runs)`.
fn request_line(row: &TrialRow, n: u32) -> String {
    let users = match row.params.int(knobs::N_PARALLEL) {
        n if n > 1 => format!(", {n} users at once"),
        _ => String::new(),
    };
    let between = match (row.itl_ms_p50, row.itl_ms_p95) {
        (Some(p50), Some(p95)) => format!("; between tokens p50 {p50:.1}, p95 {p95:.1} ms"),
        _ => String::new(),
    };
    let per_token = row
        .tpot_ms_mean
        .map(|t| format!(" ({t:.1} ms a token{between})"))
        .unwrap_or_default();
    let e2e = match (row.e2e_ms_mean, row.e2e_ms_sd) {
        (Some(m), Some(sd)) => format!("{:.2} ± {:.2} s", m / 1000.0, sd / 1000.0),
        (Some(m), None) => format!("{:.2} s", m / 1000.0),
        _ => "not measured".into(),
    };
    format!(
        "in your app's request of {} prompt + {} generated tokens{users}: first token {}, then \
         {}{per_token}, {e2e} in all (mean ± sd of {n} runs)",
        row.request_prompt_tokens,
        row.request_max_tokens,
        mean_sd(row, Metric::TtftMs),
        mean_sd(row, Metric::RequestTps),
    )
}

/// The provenance of `row`, one line per item. A line never holds a line
/// break (a model named with one cannot escape its comment).
pub fn lines(row: &TrialRow, ctx: &ExportContext) -> Vec<String> {
    raw_lines(row, ctx)
        .into_iter()
        .map(|l| l.replace(['\n', '\r'], " "))
        .collect()
}

/// What a row's tg and pp figures are: llama-bench's tests into an empty
/// cache in llama-sweep's own child; in an app's runtime, that runtime's
/// own timing of the request's prompt and tokens.
pub fn kernel_figures(row: &TrialRow) -> String {
    match row.runtime.as_deref() {
        None => "llama-bench's figures, into an empty cache".into(),
        Some(runtime) => format!("{runtime}'s own timing of the request's tokens and prompt"),
    }
}

fn raw_lines(row: &TrialRow, ctx: &ExportContext) -> Vec<String> {
    let n = row.n_samples.unwrap_or(0);
    let mut lines = vec![
        format!(
            "Recommended by llama-sweep {} from measurements, not guesses.",
            env!("CARGO_PKG_VERSION")
        ),
        format!(
            "sweep {:?}, trial {}, measured {}",
            row.sweep, row.trial_id, row.finished_at
        ),
        format!(
            "model: {} {} ({})",
            row.model_name,
            row.model_variant,
            row.model_description.as_deref().unwrap_or("?")
        ),
        request_line(row, n),
        format!(
            "{}: generation {}, prompt processing {}",
            kernel_figures(row),
            mean_sd(row, Metric::TgTps),
            mean_sd(row, Metric::PpTps)
        ),
        format!("objective: {}", ctx.objective),
    ];
    if let Some(h) = row.request_history_tokens.filter(|&h| h > 0) {
        lines.push(format!(
            "the request is a follow-up: {h} tokens of conversation already in the cache"
        ));
    }
    for at in &row.at_depth.0 {
        let d = at.depth;
        lines.push(format!(
            "with {d} tokens in the cache: generation {}, prompt processing {}",
            mean_sd(row, Metric::AtDepth(Speed::Tg, d)),
            mean_sd(row, Metric::AtDepth(Speed::Pp, d))
        ));
    }
    let n_parallel = row.params.int(knobs::N_PARALLEL);
    if n_parallel > 1 {
        let ms = |v: Option<f64>| v.map_or("?".into(), |v| format!("{v:.1}"));
        lines.push(format!(
            "measured with {n_parallel} sequences decoding together (llama-server -np \
             {n_parallel}, kv_unified {}): {} for all users' requests; first token p50 {} / \
             p95 {} ms, between tokens p50 {} / p95 {} ms",
            row.params.flag(knobs::KV_UNIFIED),
            mean_sd(row, Metric::OutputTps),
            ms(row.ttft_ms_p50),
            ms(row.ttft_ms_p95),
            ms(row.itl_ms_p50),
            ms(row.itl_ms_p95),
        ));
    }
    if let (Some(kld), Some(top1), Some(ppl), Some(inc)) =
        (row.kld, row.top1_pct, row.ppl, row.ppl_increase_pct)
    {
        lines.push(format!(
            "quality: KL divergence {kld:.4} from the sweep's most precise variant, same top token {top1:.1}%, perplexity {ppl:.2} ({inc:+.2}%)"
        ));
    }
    if let Some(verdict) = ctx.confirmation {
        lines.push(format!("confirmed: {verdict}"));
    }
    if let Some(app) = ctx.app {
        lines.push(app.to_string());
    }
    if !ctx.objective.constraints.is_empty() {
        // Judged by the objective in force now, not when the row was written.
        let status = if ctx.objective.violations(row).is_empty() {
            "all met"
        } else {
            "NOT all met"
        };
        lines.push(format!("constraints: {status}"));
    }
    if !row.forced.is_empty() {
        lines.push(format!(
            "forced by the backend self-test: {}{}",
            row.forced,
            ctx.backend.map(|b| format!(" ({b})")).unwrap_or_default()
        ));
    }
    if let (Some(done), Some(total)) = (row.layers_offloaded, row.layers_total) {
        lines.push(format!(
            "layers offloaded to a GPU when measured: {done}/{total}"
        ));
    }
    lines.push(format!(
        "reproduce: llama-sweep run {} (trial {})",
        ctx.sweep_file, row.trial_id
    ));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::{Bound, Constraint, Objective};
    use crate::runner::mock;

    #[test]
    fn the_quality_of_the_variant_and_its_bound_are_stated() {
        let mut row = crate::test_support::row("t", &mock::measured(180.0, 500.0));
        let objective = Objective {
            constraints: vec![Constraint {
                metric: Metric::Kld,
                bound: Bound::AtMost(0.05),
            }],
            ..Objective::default()
        };
        let ctx = ExportContext {
            objective: &objective,
            temperature: 0.7,
            sweep_file: "sweep.toml",
            confirmation: None,
            backend: None,
            app: None,
        };
        let text = lines(&row, &ctx).join("\n");
        assert!(
            !text.contains("quality:"),
            "unknown quality is not invented"
        );
        assert!(text.contains("constraints: NOT all met"), "{text}");
        (row.kld, row.top1_pct, row.ppl, row.ppl_increase_pct) =
            (Some(0.006), Some(95.4), Some(45.64), Some(0.04));
        let text = lines(&row, &ctx).join("\n");
        assert!(
            text.contains("quality: KL divergence 0.0060 from the sweep's most precise variant, same top token 95.4%, perplexity 45.64 (+0.04%)"),
            "{text}"
        );
        assert!(text.contains("constraints: all met"), "{text}");
    }
}
