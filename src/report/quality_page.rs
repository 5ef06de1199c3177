//! The page's parts about what a configuration costs in quality and how
//! close it gets to the machine's limit: the winner card's generation and
//! quality lines, and the "Quality of each variant" section (quality.csv
//! beside the best speed each variant reached). All outside text goes
//! through [`esc`].

use super::ceiling::{ABOVE_CEILING, megabytes};
use super::data::ReportData;
use super::page::esc;
use super::plots::format_value;
use crate::objective::{Measured, Metric};
use crate::quality::record::QualityRow;
use crate::store::row::TrialRow;
use std::fmt::Write;

/// A KL divergence in nats, to the digits quantization damage needs.
pub fn kld(v: f64) -> String {
    format!("{v:.4}")
}

/// A share of the ceiling: `42%`.
pub fn percent(pct: f64) -> String {
    format!("{pct:.0}%")
}

/// The winner card's lines: its generation speed against the ceiling (or
/// why there is none), and its quality with the quality constraints.
pub fn winner_lines(h: &mut String, data: &ReportData, winner: &TrialRow) {
    if let Some(tg) = winner.mean_of(Metric::TgTps) {
        let ceiling = data.ceiling(winner);
        match ceiling.percent_of(winner) {
            Some(pct) => {
                let _ = write!(
                    h,
                    "<p>Generation: {} t/s = <b>{}</b> of this machine's ceiling ({})",
                    format_value(tg),
                    percent(pct),
                    esc(&ceiling.describe())
                );
                if pct > 100.0 {
                    let _ = write!(h, " — {}", esc(ABOVE_CEILING));
                }
                h.push_str("</p>\n");
            }
            None => {
                let _ = writeln!(
                    h,
                    "<p>Generation: {} t/s (ceiling {})</p>",
                    format_value(tg),
                    esc(&ceiling.describe())
                );
            }
        }
    }
    if let Some(line) = quality_line(data, winner) {
        let _ = writeln!(h, "<p>Quality: {line}</p>");
    }
}

/// `KLD 0.0120 vs Q8_0 (top-1 95.0%, PPL +1.2%) — meets kld ≤ 0.05 nats`,
/// as HTML; none when the sweep measured no quality.
fn quality_line(data: &ReportData, winner: &TrialRow) -> Option<String> {
    let figures = match data.quality_of(winner) {
        Some(q) if q.is_ok() && q.is_reference => format!(
            "the reference, the most precise variant measured (PPL {})",
            esc(&ppl(q))
        ),
        Some(q) if q.is_ok() => format!(
            "KLD {} vs {} (top-1 {}, PPL {})",
            q.kld_mean.map_or("?".into(), kld),
            esc(&reference_name(q)),
            q.top1_pct.map_or("?".into(), |t| format!("{t:.1}%")),
            q.ppl_increase_pct
                .map_or("?".into(), |p| format!("{p:+.1}%"))
        ),
        Some(q) => format!(
            "<span class=\"bad\">not measured</span> ({})",
            esc(&failure(q))
        ),
        None => match winner.kld {
            Some(k) => format!(
                "KLD {} vs the most precise variant (top-1 {}, PPL {})",
                kld(k),
                winner.top1_pct.map_or("?".into(), |t| format!("{t:.1}%")),
                winner
                    .ppl_increase_pct
                    .map_or("?".into(), |p| format!("{p:+.1}%"))
            ),
            None if data.quality.is_empty() => return None,
            None => "not measured for this variant".into(),
        },
    };
    let objective = data.objective();
    let bounds: Vec<String> = objective
        .constraints
        .iter()
        .filter(|c| c.metric.is_quality())
        .map(|c| c.to_string())
        .collect();
    if bounds.is_empty() {
        return Some(figures);
    }
    let broken: Vec<String> = objective
        .violations(winner)
        .into_iter()
        .filter(|v| bounds.iter().any(|b| v.starts_with(b.as_str())))
        .collect();
    Some(if broken.is_empty() {
        format!(
            "{figures} — <span class=\"ok\">meets</span> {}",
            esc(&bounds.join(", "))
        )
    } else {
        format!(
            "{figures} — <span class=\"bad\">breaks</span> {}",
            esc(&broken.join("; "))
        )
    })
}

/// `Q8_0`, or `Q8_0 (KV cache f16/f16)` when the reference's cache types
/// differ from the row's.
fn reference_name(q: &QualityRow) -> String {
    if (q.reference_type_k, q.reference_type_v) == (q.type_k, q.type_v) {
        q.reference_variant.clone()
    } else {
        format!(
            "{} (KV cache {}/{})",
            q.reference_variant, q.reference_type_k, q.reference_type_v
        )
    }
}

fn ppl(q: &QualityRow) -> String {
    match (q.ppl, q.ppl_se) {
        (Some(p), Some(se)) => format!("{} ± {}", format_value(p), format_value(se)),
        (Some(p), None) => format_value(p),
        _ => "—".into(),
    }
}

/// `failed: the first line of the error`, shortened.
fn failure(q: &QualityRow) -> String {
    let line = crate::runner::outcome::first_line(q.error.as_deref());
    let line: String = if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else {
        line.to_string()
    };
    format!("{}: {line}", q.status)
}

/// The best measured trial of a quality row's model file and KV types.
fn best_trial<'a>(data: &'a ReportData, q: &QualityRow) -> Option<&'a TrialRow> {
    let objective = data.objective();
    data.rows
        .iter()
        .filter(|r| {
            r.model_identity == q.model_identity
                && r.params.kv_type(crate::knobs::TYPE_K) == q.type_k
                && r.params.kv_type(crate::knobs::TYPE_V) == q.type_v
        })
        .filter_map(|r| objective.score(r).map(|s| (r, s)))
        .min_by(|a, b| objective.compare(a.1, b.1))
        .map(|(r, _)| r)
}

/// Distinct values of `f` over `rows`, in order of appearance.
fn distinct(rows: &[QualityRow], f: impl Fn(&QualityRow) -> Option<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in rows.iter().filter_map(f) {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// "Quality of each variant": one table row per quality measurement; none
/// when the sweep has no quality.csv.
/// Who measured the quality when the speed trials ran in an app's runtime:
/// llama-sweep's own child, always.
fn measured_by(data: &ReportData) -> String {
    match data.winner().and_then(|w| w.runtime.as_deref()) {
        Some(runtime) => format!(
            " The speed trials ran in {runtime}; the quality is measured by llama-sweep's own \
             build of llama.cpp, on the same model files and KV-cache types."
        ),
        None => String::new(),
    }
}

pub fn section(h: &mut String, data: &ReportData) {
    if data.quality.is_empty() {
        return;
    }
    let objective = data.objective();
    let references = distinct(&data.quality, |q| {
        Some(format!("{} {}", q.model_name, reference_name_kv(q)))
    });
    let texts = distinct(&data.quality, |q| {
        q.is_ok().then(|| {
            format!(
                "{}, {} chunks of {} tokens ({} tokens scored)",
                q.text,
                q.chunks.map_or("?".into(), |c| c.to_string()),
                q.n_ctx,
                q.tokens_scored.map_or("?".into(), |t| t.to_string())
            )
        })
    });
    let _ = write!(
        h,
        "<h2 id=\"quality\">Quality of each variant</h2>\n<p>What each model variant, with its KV-cache types, changes in the \
         model's predictions against the reference — the most precise variant in this sweep ({}). \
         <b>KLD</b> is the mean Kullback–Leibler divergence of its next-token probabilities from the reference's, in nats \
         (0 = the same predictions); <b>top-1</b> is how often both pick the same most likely token; <b>PPL</b> is the \
         perplexity of the text (lower is better). Measured on {}. The reference is not the original model: a \
         quantization derived from an already-quantized file keeps that file's damage, so differences can understate \
         the damage against the original model.{}{}</p>\n",
        esc(&references.join("; ")),
        if texts.is_empty() {
            "the evaluation text (no measurement completed)".to_string()
        } else {
            esc(&texts.join("; "))
        },
        esc(&derived_notes(data).concat()),
        esc(&measured_by(data))
    );
    let best: Vec<Option<&TrialRow>> = data.quality.iter().map(|q| best_trial(data, q)).collect();
    let pcts: Vec<Option<f64>> = best
        .iter()
        .map(|b| b.and_then(|r| data.ceiling_pct(r)))
        .collect();
    let show_pct = pcts.iter().any(Option::is_some);
    let _ = writeln!(
        h,
        "<table class=\"data\"><tr><th>model</th><th>variant</th><th>KV K/V</th><th>file size</th><th>PPL</th>\
         <th>PPL vs reference</th><th>KLD (nats)</th><th>KLD p99</th><th>top-1</th><th>best {}</th>{}<th>note</th></tr>",
        esc(&format!(
            "{} ({})",
            objective.metric.name(),
            objective.metric.unit()
        )),
        if show_pct {
            "<th>% of ceiling</th>"
        } else {
            ""
        }
    );
    for ((q, best), pct) in data.quality.iter().zip(&best).zip(&pcts) {
        let class = if q.is_ok() { "" } else { " class=\"failed\"" };
        let tag = if q.is_reference {
            "<span class=\"tag\">reference</span>"
        } else {
            ""
        };
        let measured = q.is_ok() && !q.is_reference;
        let dash = || "—".to_string();
        let kld_cell = match (measured, q.kld_mean, q.kld_se) {
            (true, Some(m), Some(se)) => format!("{} ± {}", kld(m), kld(se)),
            (true, Some(m), None) => kld(m),
            _ => dash(),
        };
        let _ = write!(
            h,
            "<tr{class}><td>{}</td><td>{}{tag}</td><td>{}/{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            esc(&q.model_name),
            esc(&q.model_variant),
            q.type_k,
            q.type_v,
            q.model_size_bytes
                .map_or_else(dash, |b| format!("{} MB", megabytes(b))),
            if q.is_ok() { esc(&ppl(q)) } else { dash() },
            q.ppl_increase_pct
                .filter(|_| measured)
                .map_or_else(dash, |p| format!("{p:+.2}%")),
            kld_cell,
            q.kld_p99.filter(|_| measured).map_or_else(dash, kld),
            q.top1_pct
                .filter(|_| measured)
                .map_or_else(dash, |t| format!("{t:.1}%")),
            best.and_then(|r| objective.score(r))
                .map_or_else(dash, format_value),
        );
        if show_pct {
            let _ = write!(
                h,
                "<td class=\"num\">{}</td>",
                pct.map_or_else(dash, percent)
            );
        }
        let note = if q.is_ok() { String::new() } else { failure(q) };
        let _ = writeln!(h, "<td>{}</td></tr>", esc(&note));
    }
    h.push_str("</table>\n");
    if pcts.iter().flatten().any(|p| *p > 100.0) {
        let _ = writeln!(
            h,
            "<p class=\"muted\">A share of the ceiling above 100% is {}.</p>",
            esc(ABOVE_CEILING)
        );
    }
}

/// For each reference llama-sweep quantized itself from the model file the
/// sweep was given: that it carries the file's damage, naming the file's
/// variant when the sweep measured it too.
fn derived_notes(data: &ReportData) -> Vec<String> {
    let mut notes = distinct(&data.quality, |q| {
        let reference = data.quality.iter().find(|r| {
            r.is_reference && r.model_name == q.model_name && r.model_variant == q.reference_variant
        })?;
        let fingerprint = reference
            .model_identity
            .strip_prefix("derived:")?
            .split(':')
            .next()?;
        let source = format!("file:{fingerprint}");
        let name = &reference.model_variant;
        Some(
            match data
                .rows
                .iter()
                .map(|r| (&r.model_identity, &r.model_variant))
                .chain(
                    data.quality
                        .iter()
                        .map(|r| (&r.model_identity, &r.model_variant)),
                )
                .find(|(identity, _)| **identity == source)
            {
                Some((_, from)) => format!(
                    " Here the reference {name} was made from the {from} file the sweep was given, so it carries \
                     {from}'s damage: KLD against it measures the change from {from}'s predictions."
                ),
                None => format!(
                    " Here the reference {name} was made by llama-sweep from the model file the sweep was given, \
                     and keeps whatever damage that file has."
                ),
            },
        )
    });
    notes.dedup();
    notes
}

/// `Q8_0 with f16/f16 KV cache`.
fn reference_name_kv(q: &QualityRow) -> String {
    format!(
        "{} with {}/{} KV cache",
        q.reference_variant, q.reference_type_k, q.reference_type_v
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::record::example;
    use crate::report::data::fixture;

    /// The demo grid with quality for its Q4_K_M rows (against Q8_0) and a
    /// failed measurement of a hostile variant.
    fn with_quality() -> ReportData {
        let mut data = fixture();
        let q4 = data
            .rows
            .iter()
            .find(|r| r.model_variant == "Q4_K_M")
            .unwrap()
            .clone();
        let mut reference = example("r", "Q8_0", Some(0.0));
        reference.model_identity = "id-q8".into();
        let mut measured = example("a", "Q4_K_M", Some(0.0123));
        measured.model_identity = q4.model_identity.clone();
        measured.type_k = q4.params.kv_type(crate::knobs::TYPE_K);
        measured.type_v = q4.params.kv_type(crate::knobs::TYPE_V);
        measured.reference_type_k = q4.params.kv_type(crate::knobs::TYPE_K);
        measured.reference_type_v = q4.params.kv_type(crate::knobs::TYPE_V);
        measured.text = "moby <dick>".into();
        let mut failed = example("b", "<script>alert(1)</script>", None);
        failed.model_name = "<img src=x onerror=alert(2)>".into();
        failed.status = "crashed".into();
        failed.error = Some("signal 11 <b>boom</b>\nsecond line".into());
        data.quality = vec![reference, measured, failed];
        data
    }

    #[test]
    fn the_quality_table_shows_each_measurement_and_escapes_outside_text() {
        let data = with_quality();
        let mut h = String::new();
        section(&mut h, &data);
        assert!(h.contains("<h2 id=\"quality\">Quality of each variant</h2>"));
        assert_eq!(h.matches("<tr").count(), 1 + 3, "{h}");
        assert!(h.contains("<span class=\"tag\">reference</span>"));
        assert!(h.contains("0.0123 ± 0.0010"), "{h}");
        assert!(h.contains("moby &lt;dick&gt;, 8 chunks of 512 tokens (2040 tokens scored)"));
        assert!(h.contains("already-quantized file keeps that file's damage"));
        assert!(!h.contains("Here the reference"), "a file of its own");
        // The Q4_K_M row has the best speed of its trials; no bandwidth, so
        // no ceiling column.
        let best = best_trial(&data, &data.quality[1]).unwrap();
        assert!(h.contains(&format_value(data.objective().score(best).unwrap())));
        assert!(!h.contains("% of ceiling"));
        // Failures: the status and the first line of the error, escaped.
        assert!(
            h.contains("crashed: signal 11 &lt;b&gt;boom&lt;/b&gt;"),
            "{h}"
        );
        assert!(!h.contains("second line"));
        for raw in ["<script", "<img", "<b>boom"] {
            assert!(!h.contains(raw), "{raw} got through");
        }
        assert!(h.contains("&lt;img src=x onerror=alert(2)&gt;"));
    }

    #[test]
    fn the_table_shows_the_share_of_the_ceiling_and_explains_above_it() {
        let mut data = with_quality();
        data.manifest.memory_bandwidth = Some(crate::report::ceiling::bandwidth(1.0));
        for row in &mut data.rows {
            row.bytes_per_token = Some(10_000_000);
        }
        // 1 GB/s ÷ 10 MB = 100 t/s: the grid's best Q4_K_M trials pass it.
        let mut h = String::new();
        section(&mut h, &data);
        assert!(h.contains("<th>% of ceiling</th>"), "{h}");
        assert!(h.contains("part of the weights is served from CPU caches"));
    }

    #[test]
    fn a_reference_quantized_from_a_lesser_file_is_named() {
        let mut data = with_quality();
        let source = data.rows[0].clone();
        data.quality[0].model_identity = format!(
            "derived:{}:Q8_0",
            source.model_identity.strip_prefix("file:").unwrap()
        );
        let mut h = String::new();
        section(&mut h, &data);
        assert!(
            h.contains(&format!(
                "Here the reference Q8_0 was made from the {} file",
                source.model_variant
            )),
            "{h}"
        );
    }

    #[test]
    fn an_old_folder_has_no_quality_section() {
        let mut h = String::new();
        section(&mut h, &fixture());
        assert!(h.is_empty());
    }

    #[test]
    fn the_winner_card_states_the_ceiling_and_the_quality() {
        let mut data = with_quality();
        let winner_index = data
            .rows
            .iter()
            .position(|r| r.model_identity == data.quality[1].model_identity && r.is_ok())
            .unwrap();
        data.winner = Some(winner_index);
        data.manifest.sweep.objective.constraints = vec![crate::objective::Constraint {
            metric: Metric::Kld,
            bound: crate::objective::Bound::AtMost(0.05),
        }];
        let winner = data.rows[winner_index].clone();
        let mut h = String::new();
        winner_lines(&mut h, &data, &data.rows[winner_index].clone());
        assert!(
            h.contains("ceiling not known: this sweep did not measure the memory bandwidth"),
            "{h}"
        );
        assert!(
            h.contains("Quality: KLD 0.0123 vs Q8_0 (top-1 95.0%, PPL +1.0%)"),
            "{h}"
        );
        // The row carries no kld of its own here: the bound is broken.
        assert!(h.contains("breaks</span> kld ≤ 0.05 nats"), "{h}");

        data.manifest.memory_bandwidth = Some(crate::report::ceiling::bandwidth(10.0));
        let mut winner = winner;
        winner.bytes_per_token = Some(100_000_000);
        winner.tg_tps_mean = Some(50.0);
        winner.kld = Some(0.0123);
        let mut h = String::new();
        winner_lines(&mut h, &data, &winner);
        assert!(
            h.contains(
                "Generation: 50.00 t/s = <b>50%</b> of this machine's ceiling \
                 (100.0 t/s: 10.0 GB/s memory bandwidth ÷ 100 MB read per token)"
            ),
            "{h}"
        );
        assert!(h.contains("meets</span> kld ≤ 0.05 nats"), "{h}");
    }
}
