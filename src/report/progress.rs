//! Progress of a running sweep. On a terminal: a bar with trials done/total,
//! elapsed time, ETA, the trial running and the best result so far, with a
//! line per finished trial above it. Elsewhere (nohup, a log file): the same
//! lines, plain. Every line also goes to `sweep.log` in the output folder,
//! with a timestamp. The count runs over the whole run — the reference
//! trials and the search under its budget — not each phase's own space
//! ([`eta`] for the time left).

pub mod eta;

use crate::clock::now_rfc3339;
use crate::objective::Objective;
use crate::plan;
use crate::protocol::TrialSpec;
use crate::store::row::TrialRow;
use crate::sweep::{SweepObserver, TrialEvent};
use eta::{Eta, Schedule};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

pub struct Progress {
    bar: Option<ProgressBar>,
    log: Option<File>,
    swept: Vec<&'static str>,
    objective: Objective,
    created: Instant,
    /// When the first trial started: the pace and the time budget count
    /// from it.
    first_trial: Option<Instant>,
    /// Trials finished in this run, reference trials and search together.
    done: usize,
    /// Trials the run counts to (`set_total`).
    total: usize,
    schedule: Schedule,
    /// (trial id, objective value) of the best feasible trial so far.
    best: Option<(String, f64)>,
}

impl Progress {
    /// `interactive`: draw a bar (stderr is a terminal).
    pub fn new(
        folder: &Path,
        total: usize,
        swept: Vec<&'static str>,
        objective: &Objective,
        interactive: bool,
    ) -> Self {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(folder.join(crate::store::SWEEP_LOG))
            .ok();
        let bar = interactive.then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} trials  {elapsed_precise}  {prefix}\n  {msg}",
                )
                .expect("valid template"),
            );
            bar.enable_steady_tick(Duration::from_secs(1));
            bar
        });
        Progress {
            bar,
            log,
            swept,
            objective: objective.clone(),
            created: Instant::now(),
            first_trial: None,
            done: 0,
            total,
            schedule: Schedule::default(),
            best: None,
        }
    }

    /// How many trials the run counts to: the reference trials still to
    /// run and the trials the budget allows. The sweep loop's own totals
    /// (each phase's, a search's whole space) do not replace it.
    pub fn set_total(&mut self, total: usize) {
        self.total = total;
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    /// One more trial to count to (a reference known only once the run
    /// has started, such as what llama.cpp's --fit picks).
    pub fn count_one_more(&mut self) {
        self.set_total(self.total + 1);
    }

    /// The time budget and the confirmation round, for the ETA.
    pub fn set_schedule(&mut self, schedule: Schedule) {
        self.schedule = schedule;
    }

    /// A line for the terminal (above the bar) and the sweep log.
    pub fn line(&mut self, text: &str) {
        if let Some(log) = &mut self.log {
            let _ = writeln!(log, "{} {text}", now_rfc3339());
        }
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn update_best(&mut self, row: &TrialRow) {
        if !row.feasible {
            return;
        }
        let Some(value) = self.objective.score(row) else {
            return;
        };
        let better = self
            .best
            .as_ref()
            .is_none_or(|(_, best)| self.objective.compare(value, *best).is_lt());
        if better {
            self.best = Some((row.trial_id.clone(), value));
        }
    }
}

impl SweepObserver for Progress {
    fn trial_started(&mut self, spec: &TrialSpec, _done: usize, _total: usize) {
        self.first_trial.get_or_insert_with(Instant::now);
        if let Some(bar) = &self.bar {
            bar.set_message(format!(
                "running {} {} {} {}",
                spec.trial_id,
                spec.model.name,
                spec.model.variant,
                plan::describe(&spec.params, &self.swept)
            ));
        }
    }

    fn trial_finished(&mut self, event: TrialEvent) {
        self.update_best(event.row);
        self.done += 1;
        let total = self.total.max(self.done);
        let elapsed = self.first_trial.unwrap_or(self.created).elapsed();
        let eta = eta::eta(&self.schedule, self.done, total, elapsed);
        let line = trial_line(&event, self.done, total, &self.swept, eta);
        self.line(&line);
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
            bar.set_position(self.done as u64);
            let best = self.best.as_ref().map_or(String::new(), |(id, value)| {
                format!("  best {value:.1} {} ({id})", self.objective.metric.unit())
            });
            bar.set_prefix(format!("ETA {eta}{best}"));
        }
    }

    fn note(&mut self, text: &str) {
        self.line(text);
    }
}

/// `[3/12] 5f1c2a9e0b7d smollm2 Q4_1 n_batch=512 → ok  request 92.1 ± 1.2 t/s ...`:
/// the `done`th trial of the run's `total`.
pub fn trial_line(
    event: &TrialEvent,
    done: usize,
    total: usize,
    swept: &[&str],
    eta: Eta,
) -> String {
    let r = event.row;
    let result = if r.is_ok() {
        format!(
            "ok  {}{}{}",
            measured_figures(r),
            speculation(r),
            if r.noisy { "  (noisy)" } else { "" }
        )
    } else {
        format!(
            "{}: {}{}",
            r.status,
            crate::runner::outcome::first_line(r.error.as_deref()),
            speculation(r)
        )
    };
    format!(
        "[{done}/{total}] {} {} {} {} → {result}  ({:.1} s, ETA {eta})",
        r.trial_id,
        event.spec.model.name,
        event.spec.model.variant,
        plan::describe(&event.spec.params, swept),
        r.wall_s
    )
}

/// A measured trial's figures, the app's request first: `request 56.0 ±
/// 1.2 t/s, first token 939 ms, 2.07 s in all  tg 124.5 ± 3.1 t/s  pp 512
/// ± 9 t/s`; each only where it was measured.
fn measured_figures(r: &TrialRow) -> String {
    let mut parts = Vec::new();
    if let Some(rate) = r.request_tps_mean {
        let mut request = format!(
            "request {rate:.1} ± {:.1} t/s",
            r.request_tps_sd.unwrap_or(0.0)
        );
        if let Some(ttft) = r.ttft_ms_mean {
            request += &format!(", first token {ttft:.0} ms");
        }
        if let Some(e2e) = r.e2e_ms_mean {
            request += &format!(", {:.2} s in all", e2e / 1000.0);
        }
        if let Some(all) = r.output_tps_mean.filter(|_| r.n_parallel() > 1.0) {
            request += &format!(" ({all:.1} t/s for all users)");
        }
        parts.push(request);
    }
    if let Some(tg) = r.tg_tps_mean {
        let mut text = format!("tg {tg:.1} ± {:.1} t/s", r.tg_tps_sd.unwrap_or(0.0));
        if let Some(all) = r.aggregate_tps_mean.filter(|_| r.n_parallel() > 1.0) {
            text += &format!(" ({all:.1} t/s in all)");
        }
        parts.push(text);
    }
    if let Some(pp) = r.pp_tps_mean {
        parts.push(format!(
            "pp {pp:.0} ± {:.0} t/s",
            r.pp_tps_sd.unwrap_or(0.0)
        ));
    }
    parts.extend(
        r.at_depth
            .0
            .iter()
            .filter_map(|d| Some(format!("@{}: tg {:.1}", d.depth, d.tg_tps_mean?))),
    );
    parts.join("  ")
}

/// What a trial's speculative decoding guessed: `  drafted 149, 50%
/// accepted`; nothing for a trial without it.
fn speculation(r: &TrialRow) -> String {
    let speculates = r.params.text(crate::knobs::SPEC_TYPE) != crate::knobs::SpecType::NONE;
    match (r.draft_tokens, r.draft_acceptance) {
        (Some(n), Some(a)) => format!("  drafted {n}, {:.0}% accepted", a * 100.0),
        (Some(0), None) if speculates => "  drafted nothing".into(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::{row, spec};

    #[test]
    fn plain_lines_go_to_the_sweep_log_and_track_the_best() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Progress::new(dir.path(), 2, vec!["n_batch"], &Objective::default(), false);
        for (id, tg) in [("a", 100.0), ("b", 150.0)] {
            let r = row(id, &mock::measured(tg, 400.0));
            p.trial_finished(TrialEvent {
                done: 1,
                total: 2,
                row: &r,
                spec: &spec(id),
            });
        }
        p.note("anchor check");
        assert_eq!(p.best.as_ref().map(|(id, _)| id.as_str()), Some("b"));
        let log = std::fs::read_to_string(dir.path().join(crate::store::SWEEP_LOG)).unwrap();
        assert_eq!(log.lines().count(), 3);
        assert!(
            log.contains("[1/2] a m Q4_1 n_batch=512 → ok  request 100.0 ± 1.0 t/s, first token"),
            "{log}"
        );
        assert!(log.lines().last().unwrap().ends_with("anchor check"));
    }

    #[test]
    fn the_count_is_the_budget_across_the_references_and_the_search() {
        // Two reference trials, then a Bayesian search with max_trials = 10
        // over an 84-trial space: the sweep loop counts each phase against
        // its own strategy's space (2, then 84).
        let dir = tempfile::tempdir().unwrap();
        let mut p = Progress::new(dir.path(), 0, vec!["n_batch"], &Objective::default(), false);
        p.set_total(2 + 10);
        let r = row("a", &mock::measured(100.0, 400.0));
        let references = (1..=2).map(|done| (done, 2));
        let search = (1..=10).map(|done| (done, 84));
        for (done, total) in references.chain(search) {
            p.trial_finished(TrialEvent {
                done,
                total,
                row: &r,
                spec: &spec("a"),
            });
        }
        let log = std::fs::read_to_string(dir.path().join(crate::store::SWEEP_LOG)).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len(), 12, "{log}");
        assert!(lines[0].contains("[1/12] "), "{log}");
        assert!(lines[2].contains("[3/12] "), "{log}");
        assert!(lines[11].contains("[12/12] "), "{log}");
        assert!(lines[11].ends_with("ETA 0s)"), "nothing left: {log}");
        assert!(!log.contains("/84]") && !log.contains("/2]"), "{log}");
    }

    #[test]
    fn a_reference_added_after_the_start_counts() {
        // Two trials and one reference announced; --fit then adds one.
        let dir = tempfile::tempdir().unwrap();
        let mut p = Progress::new(dir.path(), 0, vec!["n_batch"], &Objective::default(), false);
        p.set_total(3);
        p.count_one_more();
        let r = row("a", &mock::measured(100.0, 400.0));
        for done in 1..=4 {
            p.trial_finished(TrialEvent {
                done,
                total: 2,
                row: &r,
                spec: &spec("a"),
            });
        }
        let log = std::fs::read_to_string(dir.path().join(crate::store::SWEEP_LOG)).unwrap();
        assert!(log.lines().last().unwrap().contains("[4/4] "), "{log}");
    }
}
