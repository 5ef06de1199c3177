//! The terminal summary of a sweep: the best feasible trials ranked by the
//! objective (mean ± sample standard deviation), the parameters that differ
//! between trials, and a count of how the trials ended.

use crate::knobs::{self, KnobId};
use crate::objective::{Measured, Metric, Objective};
use crate::runner::TrialStatus;
use crate::store::row::TrialRow;
use std::fmt::Write;

/// A parameter a table column can show: the model variant, or a knob of
/// the parameter table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ParamColumn {
    pub name: &'static str,
    knob: Option<KnobId>,
}

impl ParamColumn {
    /// The column's value in `row`, as text.
    pub fn value(&self, row: &TrialRow) -> String {
        match self.knob {
            None => format!("{} {}", row.model_name, row.model_variant),
            Some(knob) => row.params.get(knob).to_string(),
        }
    }
}

/// The parameters a table column can show: the model, then the knobs in
/// the grid's nesting order.
pub(crate) fn param_columns() -> &'static [ParamColumn] {
    static COLUMNS: std::sync::OnceLock<Vec<ParamColumn>> = std::sync::OnceLock::new();
    COLUMNS.get_or_init(|| {
        std::iter::once(ParamColumn {
            name: "model",
            knob: None,
        })
        .chain(knobs::nesting_order().into_iter().map(|k| ParamColumn {
            name: k.name,
            knob: Some(k.id),
        }))
        .collect()
    })
}

/// The columns whose value is not the same in every row (the model column is
/// always shown).
fn varying_columns(rows: &[TrialRow]) -> Vec<ParamColumn> {
    param_columns()
        .iter()
        .copied()
        .filter(|c| {
            c.name == "model"
                || rows
                    .iter()
                    .map(|r| c.value(r))
                    .collect::<std::collections::HashSet<_>>()
                    .len()
                    > 1
        })
        .collect()
}

fn cell(row: &TrialRow, metric: Metric) -> String {
    match (row.mean_of(metric), row.sd_of(metric)) {
        (Some(m), Some(sd)) if metric.unit() == "t/s" => format!("{m:.1} ± {sd:.1}"),
        (Some(m), Some(sd)) => format!("{m:.0} ± {sd:.0}"),
        (Some(m), None) => format!("{m:.0}"),
        _ => "-".into(),
    }
}

/// What the table's figures are: the app's request first, llama-bench's
/// kernel figures after it.
fn columns_legend(row: &TrialRow) -> String {
    let users = match row.n_parallel() as u32 {
        1 => String::new(),
        n => format!(", {n} at once"),
    };
    format!(
        "request t/s: the app's request of {} prompt + {} generated tokens{users}, \
         generating after its prompt; ttft, e2e: to its first token, to its end; tg, pp: {}",
        row.request_prompt_tokens,
        row.request_max_tokens,
        crate::export::provenance::kernel_figures(row)
    )
}

/// Renders rows as an aligned text table.
fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut s = String::from(" ");
        for (c, w) in cells.iter().zip(&widths) {
            let _ = write!(s, " {c:<w$} ");
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header);
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// The ranked table of the best `top` feasible trials, the count of endings,
/// and the failures.
pub fn render(rows: &[TrialRow], objective: &Objective, top: usize) -> String {
    let mut out = String::new();
    let ranked = objective.rank(rows);
    let columns = varying_columns(rows);
    if ranked.is_empty() {
        out.push_str("No trial is both measured and within the constraints.\n");
    } else {
        let _ = writeln!(out, "Best trials ({objective}):");
        // The objective's own column first when it is none of the usual
        // ones (aggregate_tps, tg_tps@4096 ...).
        let usual = [
            Metric::RequestTps,
            Metric::TtftMs,
            Metric::E2eMs,
            Metric::TgTps,
            Metric::PpTps,
        ];
        let own = (!usual.contains(&objective.metric)).then_some(objective.metric);
        let mut header: Vec<String> = vec!["#".into(), "trial".into()];
        header.extend(columns.iter().map(|c| c.name.to_string()));
        header.extend(own.map(|m| format!("{m} {}", m.unit())));
        header.extend(
            [
                "request t/s",
                "ttft ms",
                "e2e ms",
                "tg t/s",
                "pp t/s",
                "RSS MiB",
            ]
            .map(String::from),
        );
        let body: Vec<Vec<String>> = ranked
            .iter()
            .take(top)
            .enumerate()
            .map(|(rank, &i)| {
                let r = &rows[i];
                let mut cells = vec![(rank + 1).to_string(), r.trial_id.clone()];
                cells.extend(columns.iter().map(|c| c.value(r)));
                cells.extend(own.map(|m| cell(r, m)));
                cells.extend([
                    cell(r, Metric::RequestTps),
                    cell(r, Metric::TtftMs),
                    cell(r, Metric::E2eMs),
                    cell(r, Metric::TgTps),
                    cell(r, Metric::PpTps),
                    r.peak_rss_mib.map_or("-".into(), |m| format!("{m:.0}")),
                ]);
                cells
            })
            .collect();
        out.push_str(&table(&header, &body));
        let _ = writeln!(out, "  {}", columns_legend(&rows[ranked[0]]));
        if ranked.len() > top {
            let _ = writeln!(
                out,
                "  ... and {} more feasible trials in results.csv",
                ranked.len() - top
            );
        }
    }
    out.push('\n');
    out.push_str(&endings(rows, ranked.len()));
    if let Some(line) = drops_line(rows) {
        let _ = writeln!(out, "  {line} (results.csv's error column says by what)");
    }
    let busy = rows
        .iter()
        .filter(|r| r.status == TrialStatus::Busy)
        .count();
    if busy > 0 {
        let _ = writeln!(
            out,
            "  {busy} trial(s) measured while other processes kept the machine busy: not \
             ranked; run the sweep again when the machine is quiet and they are measured again"
        );
    }
    for r in rows.iter().filter(|r| !r.status.ran()) {
        let reason = crate::runner::outcome::first_line(r.error.as_deref());
        let _ = writeln!(
            out,
            "  {:<8} {}  {} {}: {reason}",
            r.status.name(),
            r.trial_id,
            r.model_name,
            r.model_variant
        );
    }
    out
}

/// "3 trials dropped early, clearly beaten: about 40 s saved": what drops saved, from
/// the rows' wall times (a trial measured to the end against a dropped
/// one, on average); `None` without drops.
pub fn drops_line(rows: &[TrialRow]) -> Option<String> {
    let mean = |status: TrialStatus| {
        let walls: Vec<f64> = rows
            .iter()
            .filter(|r| r.status == status)
            .map(|r| r.wall_s)
            .collect();
        (
            walls.len(),
            walls.iter().sum::<f64>() / walls.len().max(1) as f64,
        )
    };
    let (dropped, dropped_wall) = mean(TrialStatus::Dropped);
    if dropped == 0 {
        return None;
    }
    let (full, full_wall) = mean(TrialStatus::Ok);
    let saved = (full > 0).then(|| (full_wall - dropped_wall).max(0.0) * dropped as f64);
    let trials = if dropped == 1 { "trial" } else { "trials" };
    Some(format!(
        "{dropped} {trials} dropped early, clearly beaten{}",
        saved.map_or(String::new(), |s| match s {
            s if s < 90.0 => format!(": about {s:.0} s saved"),
            s => format!(": about {:.0} min saved", s / 60.0),
        })
    ))
}

/// "12 trials: 10 ok (9 feasible), 1 failed, 1 timeout".
fn endings(rows: &[TrialRow], feasible: usize) -> String {
    let count = |s: TrialStatus| rows.iter().filter(|r| r.status == s).count();
    let mut parts = vec![format!(
        "{} ok ({feasible} within constraints)",
        count(TrialStatus::Ok)
    )];
    // Every other ending, failures and early drops.
    for &s in &TrialStatus::ALL[1..] {
        let n = count(s);
        if n > 0 {
            parts.push(format!("{n} {s}"));
        }
    }
    format!("{} trials: {}\n", rows.len(), parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::row;

    #[test]
    fn drops_are_counted_with_the_time_they_saved() {
        let mut done = row("aaaaaaaaaaaa", &mock::measured(100.0, 400.0));
        done.wall_s = 10.0;
        let mut dropped = row("bbbbbbbbbbbb", &mock::measured(50.0, 400.0));
        dropped.status = TrialStatus::Dropped;
        dropped.wall_s = 4.0;
        assert_eq!(drops_line(std::slice::from_ref(&done)), None);
        let text = drops_line(&[done, dropped.clone(), dropped]).unwrap();
        assert_eq!(
            text,
            "2 trials dropped early, clearly beaten: about 12 s saved"
        );
    }

    #[test]
    fn ranks_feasible_trials_and_lists_failures() {
        let mut slow = row("aaaaaaaaaaaa", &mock::measured(100.0, 400.0));
        slow.params.set(crate::knobs::N_THREADS, (1).into());
        let mut fast = row("bbbbbbbbbbbb", &mock::measured(150.0, 500.0));
        fast.params.set(crate::knobs::N_THREADS, (2).into());
        let broken = row(
            "cccccccccccc",
            &mock::failed(TrialStatus::Failed, "cannot load model x\nmore"),
        );
        let text = render(&[slow, fast, broken], &Objective::default(), 10);
        let first = text
            .lines()
            .position(|l| l.contains("bbbbbbbbbbbb"))
            .unwrap();
        let second = text
            .lines()
            .position(|l| l.contains("aaaaaaaaaaaa"))
            .unwrap();
        assert!(first < second, "{text}");
        assert!(
            text.contains("n_threads"),
            "varying parameter shown: {text}"
        );
        assert!(
            !text.contains("n_ubatch"),
            "constant parameter hidden: {text}"
        );
        assert!(text.contains("150.0 ± 1.5"), "{text}");
        assert!(
            text.contains("3 trials: 2 ok (2 within constraints), 1 failed"),
            "{text}"
        );
        assert!(
            text.contains("failed   cccccccccccc  m Q4_1: cannot load model x"),
            "{text}"
        );
    }

    #[test]
    fn says_so_when_nothing_is_feasible() {
        let broken = row("c", &mock::failed(TrialStatus::Oom, "failed to allocate"));
        let text = render(&[broken], &Objective::default(), 10);
        assert!(text.starts_with("No trial is both measured"), "{text}");
        assert!(text.contains("1 oom"), "{text}");
    }
}
