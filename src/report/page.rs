//! report.html: one self-contained page (inline CSS and SVG, no scripts, no
//! fonts or files from elsewhere) that answers, top to bottom: what should I
//! run, how much faster is it than what I have, which knobs matter (and
//! were the guides right), and what happened during the sweep.
//!
//! Everything that comes from outside — model names, paths, metadata, error
//! text, log lines — goes through [`esc`]; plot text is escaped by plotters'
//! SVG backend.

use super::data::{Gain, ReportData, metric_noun};
use super::effects::{Claim, Effect, Verdict};
use super::pareto;
use super::plots::format_value;
use super::summary::param_columns;
use crate::objective::{Direction, Measured, Metric};
use crate::plan::references::Role;
use crate::store::row::TrialRow;
use std::fmt::Write;

/// Rows shown in the trials table; the rest are in results.csv.
pub const MAX_TABLE_ROWS: usize = 500;

/// HTML-escapes text for element content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A rendered chart for the page.
pub struct Figure {
    pub name: String,
    pub caption: String,
    pub svg: String,
}

/// What the page is made of besides the data.
pub struct PageParts<'a> {
    pub effects: &'a [Effect],
    pub claims: &'a [Claim],
    pub gains: &'a [Gain],
    /// What the page leads with when most trials failed.
    pub lead: Option<&'a str>,
    pub warnings: &'a [String],
    pub figures: &'a [Figure],
    /// The yaml export of the winner, shown as is.
    pub config_yaml: Option<&'a str>,
    /// The same as a llama-server command line (`#` lines are left out).
    pub server_args: Option<&'a str>,
    pub generated_at: &'a str,
}

const STYLE: &str = r#"
:root { --ink:#1d2330; --muted:#5b6475; --line:#dde2ea; --good:#1a7f37; --bad:#b42318; --accent:#1f77b4; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #f6f7f9; }
main { max-width: 1240px; margin: 0 auto; padding: 14px 20px 40px; }
h1 { font-size: 22px; margin: 4px 0 2px; }
h2 { font-size: 18px; margin: 26px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.sub { color: var(--muted); margin: 0 0 12px; }
.cards { display: grid; grid-template-columns: 1fr 1fr 1.1fr; gap: 14px; }
.cards > * { min-width: 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
.big { font-size: 20px; font-weight: 600; margin: 2px 0 6px; }
.huge { font-size: 44px; font-weight: 700; color: var(--good); line-height: 1.1; margin: 4px 0; }
.huge.worse { color: var(--bad); }
.kv { border-collapse: collapse; font-size: 14px; }
.kv td { padding: 1px 12px 1px 0; vertical-align: top; }
.kv td:first-child { color: var(--muted); white-space: nowrap; }
pre, code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; }
pre { background: #f0f2f5; padding: 6px 8px; border-radius: 6px; margin: 4px 0; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 12px; line-height: 1.35; }
.ok { color: var(--good); } .bad { color: var(--bad); } .muted { color: var(--muted); }
.warn { background: #fff8e6; border: 1px solid #f0c36d; border-radius: 6px; padding: 6px 10px; margin: 6px 0; }
.warn.lead { background: #fdecea; border-color: #e06c5f; font-size: 16px; padding: 10px 14px; }
table.data { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 3px 6px; text-align: left; vertical-align: top; }
table.data th { background: #eef1f5; position: sticky; top: 0; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.failed td { color: var(--bad); }
tr.dropped td { color: var(--muted); }
tr.winner td { background: #e9f7ee; font-weight: 600; }
.figs { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
figure.plot { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px; }
figure.plot svg { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.tag { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 9px; background: #e8eefb; color: #1f4fa0; margin-left: 4px; }
footer { color: var(--muted); font-size: 12px; margin-top: 30px; }
"#;

/// The whole page.
pub fn render(data: &ReportData, parts: &PageParts) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let objective = data.objective();
    let sweep = &data.manifest.sweep;
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>llama-sweep report: {}</title><style>{STYLE}</style></head>\n\
         <body data-plots=\"{}\"><main>\n",
        esc(&sweep.name),
        parts.figures.len()
    );
    let ok = data.rows.iter().filter(|r| r.is_ok()).count();
    let dropped = data
        .rows
        .iter()
        .filter(|r| r.status == crate::runner::TrialStatus::Dropped)
        .count();
    let ok = match dropped {
        0 => format!("{ok} completed"),
        n => format!("{ok} completed, {n} dropped early"),
    };
    let feasible = data.rows.iter().filter(|r| r.feasible).count();
    let _ = write!(
        h,
        "<h1>llama-sweep report: {}</h1>\n<p class=\"sub\">{} · {} trials ({ok}, {feasible} within the constraints) · {} search · {} · {}</p>\n",
        esc(&sweep.name),
        esc(&objective.to_string()),
        data.rows.len(),
        esc(&sweep.strategy),
        esc(&data.manifest.machine.cpu_model),
        esc(parts.generated_at),
    );
    if let Some(lead) = parts.lead {
        let _ = writeln!(h, "<div class=\"warn lead\">⚠ {}</div>", esc(lead));
    }
    headline(&mut h, data, parts);
    super::app_page::section(&mut h, data);
    machine(&mut h, data, parts);
    knobs(&mut h, data, parts);
    shapes(&mut h, data);
    super::quality_page::section(&mut h, data);
    figures_section(&mut h, parts);
    trials_table(&mut h, data);
    let _ = write!(
        h,
        "<footer>Generated by llama-sweep {} from {} ({} rows) and manifest.json. Every figure on this page was measured; \
         intervals are 95% confidence intervals. Plots are also under plots/ as PNG and SVG.</footer>\n</main></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&data
            .folder
            .join(crate::store::RESULTS_CSV)
            .display()
            .to_string()),
        data.rows.len()
    );
    h
}

pub(super) fn mean_sd(row: &TrialRow, metric: Metric) -> String {
    match (row.mean_of(metric), row.sd_of(metric)) {
        (Some(m), Some(sd)) => format!(
            "{} ± {} {}",
            format_value(m),
            format_value(sd),
            metric.unit()
        ),
        (Some(m), None) => format!("{} {}", format_value(m), metric.unit()),
        _ => "—".into(),
    }
}

/// The first two questions: what to run, and how much better it is.
fn headline(h: &mut String, data: &ReportData, parts: &PageParts) {
    let objective = data.objective();
    h.push_str("<div class=\"cards\">\n<section class=\"card\" id=\"winner\"><h3>Run this</h3>\n");
    let Some(winner) = data.winner() else {
        let ok = data.rows.iter().any(|r| r.is_ok());
        let why = if ok {
            "No completed trial meets the constraints; relax them in sweep.toml (the table below shows what each trial broke)."
        } else {
            "No trial completed; the table below gives each trial's reason."
        };
        let _ = writeln!(
            h,
            "<p class=\"big bad\">Nothing to recommend</p><p>{why}</p></section>"
        );
        h.push_str("<section class=\"card\"><h3>Compared with what you have</h3><p>—</p></section><section class=\"card\"><h3>Paste this</h3><p>—</p></section></div>\n");
        return;
    };
    let _ = write!(
        h,
        "<p class=\"big\">{} {} <span class=\"muted\">trial {}</span></p>\n<table class=\"kv\">",
        esc(&winner.model_name),
        esc(&winner.model_variant),
        esc(&winner.trial_id)
    );
    let _ = write!(
        h,
        "<tr><td>{}</td><td><b>{}</b></td></tr>",
        esc(&metric_noun(objective.metric)),
        esc(&mean_sd(winner, objective.metric))
    );
    let _ = write!(
        h,
        "<tr><td>the app's request</td><td>{} prompt + {} generated tokens{}</td></tr>",
        winner.request_prompt_tokens,
        winner.request_max_tokens,
        match winner.n_parallel() as u32 {
            1 => String::new(),
            n => format!(", {n} users at once"),
        }
    );
    for metric in [
        Metric::RequestTps,
        Metric::TtftMs,
        Metric::E2eMs,
        Metric::TgTps,
        Metric::PpTps,
    ] {
        if metric != objective.metric {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td></tr>",
                metric_noun(metric),
                esc(&mean_sd(winner, metric))
            );
        }
    }
    if let Some(m) = pareto::memory_mib(winner) {
        let _ = write!(h, "<tr><td>memory</td><td>{m:.0} MiB</td></tr>");
    }
    let constraints = if objective.constraints.is_empty() {
        "none set".to_string()
    } else if objective.violations(winner).is_empty() {
        format!(
            "<span class=\"ok\">all met</span>: {}",
            esc(&objective
                .constraints
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", "))
        )
    } else {
        format!(
            "<span class=\"bad\">not all met</span>: {}",
            esc(&objective.violations(winner).join("; "))
        )
    };
    let _ = write!(h, "<tr><td>constraints</td><td>{constraints}</td></tr>");
    if let Some(r) = &data.recommendation {
        // The clauses about the references are the next card's headline.
        let verdict: Vec<&str> = r
            .verdict
            .split("; ")
            .filter(|clause| !clause.contains("your baseline") && !clause.contains("defaults ("))
            .collect();
        let _ = write!(
            h,
            "<tr><td>confirmed</td><td class=\"muted\">{}</td></tr>",
            esc(&verdict.join("; "))
        );
    }
    h.push_str("</table>\n");
    super::quality_page::winner_lines(h, data, winner);
    let folder = data.folder.display().to_string();
    let _ = write!(
        h,
        "<p>Reproduce the sweep: <code>llama-sweep run {} --fresh</code></p>\n</section>\n",
        esc(&data.manifest.sweep.file),
    );
    gains_card(h, data, parts.gains);
    h.push_str("<section class=\"card\" id=\"config\"><h3>Paste this</h3>\n");
    if let Some(yaml) = parts.config_yaml {
        let body: String = yaml
            .lines()
            .skip_while(|l| l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let _ = writeln!(
            h,
            "<p class=\"muted\">config.yaml, for <code>Llama(**config[\"llm\"])</code>:</p><pre>{}</pre>",
            esc(&body)
        );
    }
    if let Some(args) = parts.server_args {
        let command: String = args
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        let _ = writeln!(
            h,
            "<p class=\"muted\">or llama-server:</p><pre>{}</pre>",
            esc(command.trim())
        );
    }
    let _ = write!(
        h,
        "<p class=\"muted\">Written by <code>llama-sweep export {} --trial {} [--format yaml|json|server-args|env]</code></p>\n</section>\n",
        esc(&folder),
        esc(&winner.trial_id)
    );
    h.push_str("</div>\n");
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Baseline => "your baseline (the [baseline] of sweep.toml)",
        Role::Defaults => {
            "llama-server's default settings (what `llama-server -m MODEL` runs on this machine)"
        }
        Role::Fit => {
            "what llama.cpp's --fit picks (llama-server's defaults fitted to the free GPU memory)"
        }
    }
}

fn gains_card(h: &mut String, data: &ReportData, gains: &[Gain]) {
    let objective = data.objective();
    let Some(winner) = data.winner() else {
        return;
    };
    let noun = metric_noun(objective.metric);
    h.push_str("<section class=\"card\" id=\"gains\"><h3>Compared with what you have</h3>\n");
    if gains.is_empty() {
        h.push_str("<p>This sweep measured no reference configuration. Add a <code>[baseline]</code> to sweep.toml (your current settings) to see the speed-up against it.</p>\n");
    }
    if let Some(fit) = data.manifest.fit.as_ref().filter(|f| !f.measured()) {
        let _ = writeln!(
            h,
            "<p id=\"fit\">llama.cpp's --fit: {}</p>",
            esc(&fit.in_sweep())
        );
    }
    for (i, gain) in gains.iter().enumerate() {
        if !gain.measured || !gain.ratio.ratio.is_finite() {
            let _ = writeln!(
                h,
                "<p>{}: <span class=\"bad\">could not be measured</span> (trial {}; see the table)</p>",
                esc(role_name(gain.role)),
                esc(&gain.trial_id)
            );
            continue;
        }
        let r = gain.ratio;
        let ci = match (r.low, r.high) {
            (Some(l), Some(hh)) => format!("95% CI {l:.2}–{hh:.2}×"),
            _ => "too few runs for an interval".into(),
        };
        let phrase = match objective.direction {
            Direction::Maximize => format!("the {noun} of {}", role_name(gain.role)),
            Direction::Minimize => format!("better {noun} than {}", role_name(gain.role)),
        };
        let worse = if r.ratio < 1.0 { " worse" } else { "" };
        if i == 0 {
            let _ = write!(h, "<p class=\"huge{worse}\">{:.2}×</p>", r.ratio);
            let _ = writeln!(
                h,
                "<p>Recommended: <b>{:.2}× {}</b> ({ci}; from {}).</p>",
                r.ratio,
                esc(&phrase),
                esc(&gain.source)
            );
        } else {
            let _ = writeln!(
                h,
                "<p><b>{:.2}×</b> {} ({ci}; from {}).</p>",
                r.ratio,
                esc(&phrase),
                esc(&gain.source)
            );
        }
        if let Some(reference) = data.row(&gain.trial_id) {
            let _ = write!(
                h,
                "<p class=\"muted\">{} (trial {}): {} {}, differs in {} — {}",
                gain.role,
                esc(&gain.trial_id),
                esc(&reference.model_name),
                esc(&reference.model_variant),
                esc(&describe_params(reference, winner)),
                esc(&mean_sd(reference, objective.metric))
            );
            if let Some(note) = &gain.note {
                let _ = write!(h, " ({})", esc(note));
            }
            h.push_str("</p>\n");
        }
    }
    h.push_str("</section>\n");
}

/// `n_batch=512, n_threads=4, ...`: every parameter of a row.
/// `n_threads=1, flash_attn=off`: the parameters in which `row` differs
/// from `winner`.
fn describe_params(row: &TrialRow, winner: &TrialRow) -> String {
    let differ: Vec<String> = param_columns()
        .iter()
        .filter(|c| c.name != "model" && c.value(row) != c.value(winner))
        .map(|c| format!("{}={}", c.name, c.value(row)))
        .collect();
    if differ.is_empty() {
        "the recommended settings".into()
    } else {
        differ.join(", ")
    }
}

fn machine(h: &mut String, data: &ReportData, parts: &PageParts) {
    let m = &data.manifest.machine;
    let llama = &data.manifest.llama_cpp;
    h.push_str("<h2 id=\"machine\">Machine, build and warnings</h2>\n<table class=\"kv\">");
    let memory = m.memory_total_bytes.map_or("?".into(), |b| {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    });
    let rows = [
        (
            "CPU",
            format!(
                "{} ({} logical cores{})",
                m.cpu_model,
                m.logical_cores,
                m.physical_cores
                    .map_or(String::new(), |p| format!(", {p} physical"))
            ),
        ),
        ("memory", memory),
        (
            "memory bandwidth",
            data.manifest
                .memory_bandwidth
                .as_ref()
                .map_or("not measured".into(), |b| {
                    format!(
                        "{:.1} GB/s read ({}; median {:.1} GB/s)",
                        b.gb_per_s,
                        b.method(),
                        b.median_gb_per_s
                    )
                }),
        ),
        (
            "system",
            format!("{}, kernel {}, {}", m.os, m.kernel, m.arch),
        ),
        ("llama.cpp", llama.llama_cpp_build.clone()),
        ("backends", llama.backends.join(", ")),
        (
            "devices",
            llama
                .devices
                .iter()
                .map(|d| {
                    format!(
                        "{} ({}, {}, {:.1} GiB)",
                        d.description,
                        d.backend,
                        d.kind,
                        d.memory_total_bytes as f64 / (1u64 << 30) as f64
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        ("backend self-test", backend_check(data)),
        (
            "GPU offload",
            if llama.supports_gpu_offload {
                "supported by this build".into()
            } else {
                "not in this build (CPU only)".into()
            },
        ),
        (
            "llama-sweep",
            format!(
                "{} {}",
                data.manifest.tool.version,
                if data.manifest.tool.features.is_empty() {
                    "(no GPU features)".to_string()
                } else {
                    format!("features: {}", data.manifest.tool.features.join(", "))
                }
            ),
        ),
        (
            "measured",
            format!(
                "{} to {}",
                data.manifest.started_at, data.manifest.updated_at
            ),
        ),
    ];
    for (k, v) in rows {
        let _ = write!(h, "<tr><td>{k}</td><td>{}</td></tr>", esc(&v));
    }
    h.push_str("</table>\n");
    if parts.warnings.is_empty() {
        h.push_str("<p class=\"ok\">No warnings: every requested GPU layer was offloaded, no trial was flagged noisy, no drift was seen.</p>\n");
    }
    for w in parts.warnings {
        let _ = writeln!(h, "<div class=\"warn\">⚠ {}</div>", esc(w));
    }
}

/// What the backend self-test found, per variant, in one cell.
fn backend_check(data: &ReportData) -> String {
    let Some(check) = &data.manifest.backend_check else {
        return "not run (a sweep made before the self-test existed)".into();
    };
    let variant = |v: &crate::selftest::VariantCheck| {
        let first = &v.attempts[0];
        let speeds = |a: &crate::selftest::Attempt| match (a.pp_tps, a.tg_tps) {
            (Some(pp), Some(tg)) => format!(" (pp {pp:.0} t/s, tg {tg:.0} t/s)"),
            _ => String::new(),
        };
        if first.is_ok() {
            return format!("{}: works{}", v.model, speeds(first));
        }
        let what = first.detail.clone().unwrap_or_else(|| first.status.clone());
        match v.attempts.iter().find(|a| a.is_ok()) {
            Some(a) => format!(
                "{}: {what}; works with {}{}",
                v.model,
                a.fallback,
                speeds(a)
            ),
            None => format!("{}: {what}; nothing worked", v.model),
        }
    };
    check
        .variants
        .iter()
        .map(variant)
        .collect::<Vec<_>>()
        .join("; ")
}

fn knobs(h: &mut String, data: &ReportData, parts: &PageParts) {
    let objective = data.objective();
    h.push_str("<h2 id=\"effects\">Which knobs matter</h2>\n");
    if parts.effects.is_empty() {
        h.push_str("<p>No parameter took more than one value among the measured trials.</p>\n");
        return;
    }
    let better = match objective.direction {
        Direction::Maximize => "higher is better",
        Direction::Minimize => "lower is better",
    };
    let _ = write!(
        h,
        "<p>Each parameter moved away from the recommended value with the others held at the recommended values where the data allows \
         ({better}; ratios are {} at that value ÷ at the recommended value, with 95% confidence intervals). Largest effect first.</p>\n\
         <table class=\"data\"><tr><th>parameter</th><th>recommended</th><th>other values measured</th><th>largest effect</th></tr>\n",
        esc(&objective.metric.name())
    );
    for effect in parts.effects {
        let winner_value = effect
            .levels
            .iter()
            .find(|l| l.is_winner)
            .map_or("—".into(), |l| l.value.clone());
        let others: Vec<String> = effect
            .levels
            .iter()
            .filter(|l| !l.is_winner)
            .map(|l| {
                let mut s = match (l.ratio, l.basis) {
                    (Some(r), Some(b)) => {
                        let mut s = format!("{}: {} [{}]", l.value, r.describe(), b.describe());
                        if let Some((across, n)) = l.across {
                            let _ = write!(s, "; over all {n} pairs: {}", across.describe());
                        }
                        s
                    }
                    _ => format!("{}: not measured", l.value),
                };
                if l.failed > 0 {
                    let _ = write!(
                        s,
                        ", {} failed ({})",
                        l.failed,
                        l.failure.as_deref().unwrap_or("?")
                    );
                }
                s
            })
            .collect();
        let _ = writeln!(
            h,
            "<tr><td><b>{}</b></td><td>{}</td><td>{}</td><td class=\"num\">{:.1}%</td></tr>",
            esc(&effect.param.name),
            esc(&winner_value),
            others
                .iter()
                .map(|o| esc(o))
                .collect::<Vec<_>>()
                .join("<br>"),
            (effect.size.exp() - 1.0) * 100.0
        );
    }
    h.push_str("</table>\n");
    if !parts.claims.is_empty() {
        h.push_str("<h3 style=\"margin-top:14px\">What tuning guides claim, and what this sweep measured</h3>\n<ul>\n");
        for claim in parts.claims {
            let class = match claim.verdict {
                Verdict::Supported => "ok",
                Verdict::Contradicted => "bad",
                Verdict::NoMeasurableDifference => "muted",
            };
            let _ = writeln!(
                h,
                "<li>“{}”: <b class=\"{class}\">{}</b> here — {}.</li>",
                esc(claim.claim),
                claim.verdict.word(),
                esc(&claim.finding)
            );
        }
        h.push_str("</ul>\n");
    }
}

/// The best configuration per depth and per number of users, when the
/// sweep measured more than one shape.
fn shapes(h: &mut String, data: &ReportData) {
    let best = super::shapes::best_by_shape(data);
    let load = super::shapes::load_statement(data);
    if best.is_empty() && load.is_none() {
        return;
    }
    h.push_str("<h2 id=\"shapes\">Deep into a conversation, several users at once</h2>\n");
    if !best.is_empty() {
        h.push_str(
            "<table class=\"data\"><tr><th>shape</th><th>best trial</th><th>measured</th></tr>\n",
        );
        for b in &best {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                esc(&b.shape),
                esc(&b.trial_id),
                esc(&b.figure)
            );
        }
        h.push_str("</table>\n");
    }
    if let Some(load) = load {
        let _ = writeln!(h, "<p>{}</p>", esc(&load));
    }
}

fn figures_section(h: &mut String, parts: &PageParts) {
    h.push_str("<h2 id=\"plots\">Plots</h2>\n<div class=\"figs\">\n");
    for figure in parts.figures {
        let _ = writeln!(
            h,
            "<figure class=\"plot\" data-plot=\"{}\">{}<figcaption>{}</figcaption></figure>",
            esc(&figure.name),
            strip_xml_declaration(&figure.svg),
            esc(&figure.caption)
        );
    }
    h.push_str("</div>\n");
}

fn strip_xml_declaration(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// The first line of a failure's reason, shortened.
fn reason(row: &TrialRow) -> String {
    let text = row
        .error
        .as_deref()
        .or(row.violations.as_deref())
        .unwrap_or("");
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line.to_string()
    }
}

fn trials_table(h: &mut String, data: &ReportData) {
    let objective = data.objective();
    let ranked = objective.rank(&data.rows);
    let mut order: Vec<usize> = ranked.clone();
    let rest: Vec<usize> = (0..data.rows.len())
        .filter(|i| !ranked.contains(i))
        .collect();
    // Measured but infeasible next, then those dropped early, failures
    // last.
    let (measured, rest): (Vec<usize>, Vec<usize>) =
        rest.into_iter().partition(|&i| data.rows[i].is_ok());
    let (dropped, failed): (Vec<usize>, Vec<usize>) =
        rest.into_iter().partition(|&i| data.rows[i].status.ran());
    order.extend(measured);
    order.extend(dropped);
    order.extend(failed);
    let swept: Vec<_> = param_columns()
        .iter()
        .filter(|c| {
            c.name == "model" || {
                let mut v: Vec<String> = data.rows.iter().map(|r| c.value(r)).collect();
                v.sort();
                v.dedup();
                v.len() > 1
            }
        })
        .collect();
    let show_kld = data.rows.iter().any(|r| r.kld.is_some());
    let ceiling_pcts: Vec<Option<f64>> = data.rows.iter().map(|r| data.ceiling_pct(r)).collect();
    let show_pct = ceiling_pcts.iter().any(Option::is_some);
    let above = if ceiling_pcts.iter().flatten().any(|p| *p > 100.0) {
        format!(
            " A % of ceiling above 100 is {}.",
            esc(super::ceiling::ABOVE_CEILING)
        )
    } else {
        String::new()
    };
    let _ = write!(
        h,
        "<h2 id=\"trials\">All trials</h2>\n<p>{} trials, best first; then those that break a constraint, those dropped early and the failures, with their reason{}.{above}{}</p>\n<table class=\"data\"><tr><th>#</th><th>trial</th>",
        data.rows.len(),
        if order.len() > MAX_TABLE_ROWS {
            format!(" (the first {MAX_TABLE_ROWS} shown; every row is in results.csv)")
        } else {
            String::new()
        },
        super::summary::drops_line(&data.rows).map_or(String::new(), |line| format!(
            " {}. A trial is dropped when, after 2 runs or more, its best run is more than the \
             [trial] early_drop margin below the slowest run of the best trial so far (or \
             beyond a constraint's limit); it is never recommended.",
            esc(&line)
        ))
    );
    for column in &swept {
        let _ = write!(h, "<th>{}</th>", esc(column.name));
    }
    h.push_str(
        "<th title=\"the app's request: generation speed after its prompt\">request t/s</th>\
         <th>ttft ms</th><th>e2e ms</th><th title=\"llama-bench's, into an empty cache\">tg \
         t/s</th><th>pp t/s</th><th>MiB</th>",
    );
    if show_kld {
        h.push_str("<th>KLD</th>");
    }
    if show_pct {
        h.push_str("<th>% of ceiling</th>");
    }
    h.push_str("<th>status</th><th>reason / note</th></tr>\n");
    for (rank, &i) in order.iter().take(MAX_TABLE_ROWS).enumerate() {
        let row = &data.rows[i];
        let class = if data.winner == Some(i) {
            " class=\"winner\""
        } else if row.status == crate::runner::TrialStatus::Dropped {
            " class=\"dropped\""
        } else if !row.is_ok() {
            " class=\"failed\""
        } else {
            ""
        };
        let position = if rank < ranked.len() {
            (rank + 1).to_string()
        } else {
            String::new()
        };
        let mut tags = String::new();
        for role in data.roles_of(&row.trial_id) {
            let _ = write!(tags, "<span class=\"tag\">{role}</span>");
        }
        if data.winner == Some(i) {
            tags.push_str("<span class=\"tag\">recommended</span>");
        }
        let _ = write!(
            h,
            "<tr{class}><td class=\"num\">{position}</td><td><code>{}</code>{tags}</td>",
            esc(&row.trial_id)
        );
        for column in &swept {
            let _ = write!(h, "<td>{}</td>", esc(&column.value(row)));
        }
        let num = |v: Option<f64>| v.map_or("".into(), format_value);
        let mut note = reason(row);
        if row.noisy {
            note = format!("noisy (cv {:.1}%) {note}", row.cv.unwrap_or(0.0) * 100.0);
        }
        if !row.drift.is_empty() {
            note = format!("{note} drift: {}", row.drift);
        }
        let _ = write!(
            h,
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            num(row.mean_of(Metric::RequestTps)),
            num(row.mean_of(Metric::TtftMs)),
            num(row.mean_of(Metric::E2eMs)),
            num(row.mean_of(Metric::TgTps)),
            num(row.mean_of(Metric::PpTps)),
            pareto::memory_mib(row).map_or("".into(), |m| format!("{m:.0}")),
        );
        if show_kld {
            let _ = write!(
                h,
                "<td class=\"num\">{}</td>",
                row.kld.map_or("".into(), super::quality_page::kld)
            );
        }
        if show_pct {
            let _ = write!(
                h,
                "<td class=\"num\">{}</td>",
                ceiling_pcts[i].map_or("".into(), super::quality_page::percent)
            );
        }
        let _ = writeln!(
            h,
            "<td>{}</td><td>{}</td></tr>",
            esc(row.status.name()),
            esc(note.trim())
        );
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_neutralises_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
        assert_eq!(
            strip_xml_declaration("<?xml version=\"1.0\"?>\n<svg a>"),
            "<svg a>"
        );
    }
}
