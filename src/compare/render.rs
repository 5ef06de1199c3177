//! How a [`Comparison`] is shown: a table of the most changed
//! configurations with a summary for people, or CSV (one line per
//! configuration in either sweep) for scripts.

use super::{Basis, Comparison, ConfigKey, Failure, Measurement, Verdict};
use crate::stats::RatioInterval;
use crate::store::csv_file::defuse_formula;
use std::fmt::Write;

fn interval(r: &RatioInterval) -> String {
    match (r.low, r.high) {
        (Some(l), Some(h)) => format!("{l:.3}–{h:.3}×"),
        _ => "no interval".into(),
    }
}

/// The first line of a failure's reason, cut to a readable length.
fn short(failure: &Failure) -> String {
    let line = failure.reason.lines().next().unwrap_or("").trim();
    let cut: String = line.chars().take(100).collect();
    let ellipsis = if cut.len() < line.len() { "…" } else { "" };
    format!("{}: {cut}{ellipsis}", failure.status)
}

fn verdict_word(c: &Comparison, v: Verdict) -> &'static str {
    let (better, worse) = c.words();
    match v {
        Verdict::Better => better,
        Verdict::Worse => worse,
        Verdict::Unchanged => "–",
    }
}

/// Up to `top` labels, and a count of the rest.
fn listed(keys: &[&ConfigKey], c: &Comparison, top: usize) -> String {
    let mut text: Vec<String> = keys.iter().take(top).map(|k| k.label(&c.varying)).collect();
    if keys.len() > top {
        text.push(format!("and {} more", keys.len() - top));
    }
    text.join("; ")
}

/// The table (`top` rows at most) and the summary.
pub fn render(c: &Comparison, top: usize, a_name: &str, b_name: &str) -> String {
    let unit = c.metric.unit();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "B / A of {} ({unit}), per configuration with its 95% CI; A = {a_name}, B = {b_name}",
        c.metric
    );
    let count = |basis: Basis| c.changes.iter().filter(|x| x.basis == basis).count();
    let _ = writeln!(
        out,
        "The interval of a configuration is over separate runs of it where both sweeps have them \
         (confirmation rounds, drift anchors: {}), else over the run-to-run spread pooled from \
         those ({}); where neither sweep ran anything twice it covers only the repetitions inside \
         one run ({}): that shows their precision, not whether a change is real, so no change is \
         called on it.",
        count(Basis::Runs),
        count(Basis::PooledRuns),
        count(Basis::Repetitions)
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>8}  {:<15} {:>10} {:>10}  {:<8} {:<11} configuration",
        "B/A",
        "95% CI",
        format!("A {unit}"),
        format!("B {unit}"),
        "change",
        "interval of"
    );
    for change in c.changes.iter().take(top) {
        let _ = writeln!(
            out,
            "{:>7.3}×  {:<15} {:>10.1} {:>10.1}  {:<8} {:<11} {}",
            change.ratio.ratio,
            interval(&change.ratio),
            change.a.mean,
            change.b.mean,
            verdict_word(c, change.verdict),
            change.basis.name(),
            change.key.label(&c.varying)
        );
    }
    if c.changes.len() > top {
        let _ = writeln!(
            out,
            "  ... and {} more (--top {} shows all)",
            c.changes.len() - top,
            c.changes.len()
        );
    }
    if !c.failed_in_one.is_empty() {
        let _ = writeln!(out, "\nCompleted in one sweep only:");
        for one in c.failed_in_one.iter().take(top) {
            let measured_in = if one.failed_in == 'A' { 'B' } else { 'A' };
            let _ = writeln!(
                out,
                "  failed in {} ({}); {measured_in} measured {:.1} {unit} — {}",
                one.failed_in,
                short(&one.failure),
                one.measured.mean,
                one.key.label(&c.varying)
            );
        }
        if c.failed_in_one.len() > top {
            let _ = writeln!(out, "  ... and {} more", c.failed_in_one.len() - top);
        }
    }
    let (better, worse) = c.words();
    let _ = writeln!(out, "\nSummary:");
    let in_both = c.changes.len() + c.failed_in_one.len() + c.failed_in_both.len();
    let _ = writeln!(
        out,
        "  {in_both} configurations in both sweeps, {} measured in both",
        c.changes.len()
    );
    if let Some(overall) = &c.overall {
        let direction_word = |ratio: f64| match c.direction {
            crate::objective::Direction::Maximize if ratio > 1.0 => better,
            crate::objective::Direction::Minimize if ratio < 1.0 => better,
            _ => worse,
        };
        let verdict = if overall.significant() {
            format!("B is {}", direction_word(overall.ratio))
        } else {
            "no change the configurations agree on".into()
        };
        let _ = writeln!(
            out,
            "  geometric mean B/A {:.3}× (95% CI {} over {} configurations): {verdict}",
            overall.ratio,
            interval(overall),
            c.changes.len()
        );
    }
    let _ = writeln!(
        out,
        "  significantly {better}: {}, significantly {worse}: {}, no significant change: {}",
        c.count(Verdict::Better),
        c.count(Verdict::Worse),
        c.count(Verdict::Unchanged)
    );
    let failed_in = |side: char| {
        c.failed_in_one
            .iter()
            .filter(|o| o.failed_in == side)
            .count()
    };
    let _ = writeln!(
        out,
        "  failed only in A: {}, only in B: {}, in both: {}",
        failed_in('A'),
        failed_in('B'),
        c.failed_in_both.len()
    );
    for (name, keys) in [("A", &c.only_in_a), ("B", &c.only_in_b)] {
        let refs: Vec<&ConfigKey> = keys.iter().collect();
        let list = if refs.is_empty() {
            String::new()
        } else {
            format!(": {}", listed(&refs, c, top.min(5)))
        };
        let _ = writeln!(out, "  only in {name}: {}{list}", keys.len());
    }
    out
}

/// A cell for a CSV file: numbers as they are, text defused against
/// spreadsheet formulas.
fn cell(value: &str) -> String {
    if value.parse::<f64>().is_ok() {
        value.to_string()
    } else {
        defuse_formula(value).into_owned()
    }
}

/// One line per configuration in either sweep: the key columns, then both
/// statuses and values, the ratio with its interval, and what changed.
pub fn render_csv(c: &Comparison) -> anyhow::Result<String> {
    let key_columns: Vec<String> = c
        .changes
        .iter()
        .map(|x| &x.key)
        .chain(c.failed_in_one.iter().map(|x| &x.key))
        .chain(c.failed_in_both.iter().map(|x| &x.0))
        .chain(&c.only_in_a)
        .chain(&c.only_in_b)
        .next()
        .map(|k| k.pairs().iter().map(|(name, _)| name.clone()).collect())
        .unwrap_or_default();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = key_columns;
    header.extend(
        [
            "a_status",
            "b_status",
            "a_value",
            "b_value",
            "ratio",
            "ratio_low",
            "ratio_high",
            "significant",
            "interval_of",
            "change",
            "reason",
        ]
        .map(String::from),
    );
    writer.write_record(&header)?;
    let num = |x: Option<f64>| x.map(|v| format!("{v:.6}")).unwrap_or_default();
    let (better, worse) = c.words();
    let mut line = |key: &ConfigKey,
                    statuses: [&str; 2],
                    values: [Option<&Measurement>; 2],
                    ratio: Option<(&RatioInterval, Basis)>,
                    change: &str,
                    reason: &str|
     -> anyhow::Result<()> {
        let mut record: Vec<String> = key.pairs().iter().map(|(_, v)| cell(v)).collect();
        record.extend([
            cell(statuses[0]),
            cell(statuses[1]),
            num(values[0].map(|m| m.mean)),
            num(values[1].map(|m| m.mean)),
            num(ratio.map(|r| r.0.ratio)),
            num(ratio.and_then(|r| r.0.low)),
            num(ratio.and_then(|r| r.0.high)),
            ratio
                .map(|(r, basis)| (basis != Basis::Repetitions && r.significant()).to_string())
                .unwrap_or_default(),
            ratio.map(|r| r.1.name()).unwrap_or_default().to_string(),
            change.to_string(),
            cell(reason),
        ]);
        writer.write_record(&record)?;
        Ok(())
    };
    for x in &c.changes {
        let change = match x.verdict {
            Verdict::Better => better,
            Verdict::Worse => worse,
            Verdict::Unchanged => "unchanged",
        };
        line(
            &x.key,
            ["ok", "ok"],
            [Some(&x.a), Some(&x.b)],
            Some((&x.ratio, x.basis)),
            change,
            "",
        )?;
    }
    for x in &c.failed_in_one {
        let (statuses, values, change) = if x.failed_in == 'A' {
            (
                [x.failure.status.as_str(), "ok"],
                [None, Some(&x.measured)],
                "failed_in_a",
            )
        } else {
            (
                ["ok", x.failure.status.as_str()],
                [Some(&x.measured), None],
                "failed_in_b",
            )
        };
        line(&x.key, statuses, values, None, change, &x.failure.reason)?;
    }
    for (key, fa, fb) in &c.failed_in_both {
        let reason = format!("A: {}; B: {}", fa.reason, fb.reason);
        line(
            key,
            [&fa.status, &fb.status],
            [None, None],
            None,
            "failed_in_both",
            &reason,
        )?;
    }
    for key in &c.only_in_a {
        line(key, ["", ""], [None, None], None, "only_in_a", "")?;
    }
    for key in &c.only_in_b {
        line(key, ["", ""], [None, None], None, "only_in_b", "")?;
    }
    Ok(String::from_utf8(writer.into_inner()?)?)
}
