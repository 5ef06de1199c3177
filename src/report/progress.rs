//! Progress of a running sweep. On a terminal: a bar with trials done/total,
//! elapsed time, ETA, the trial running and the best result so far, with a
//! line per finished trial above it. Elsewhere (nohup, a log file): the same
//! lines, plain. Every line also goes to `sweep.log` in the output folder,
//! with a timestamp.

use crate::clock::now_rfc3339;
use crate::objective::Objective;
use crate::plan;
use crate::protocol::TrialSpec;
use crate::store::row::TrialRow;
use crate::sweep::{SweepObserver, TrialEvent};
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
    started: Instant,
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
                    "{bar:30} {pos}/{len} trials  {elapsed_precise}  ETA {eta}  {prefix}\n  {msg}",
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
            started: Instant::now(),
            best: None,
        }
    }

    /// How many trials the bar counts to.
    pub fn set_total(&mut self, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
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
        let line = trial_line(&event, &self.swept, self.started.elapsed());
        self.line(&line);
        if let Some(bar) = &self.bar {
            bar.set_length(event.total as u64);
            bar.set_position(event.done as u64);
            if let Some((id, value)) = &self.best {
                bar.set_prefix(format!(
                    "best {value:.1} {} ({id})",
                    self.objective.metric.unit()
                ));
            }
        }
    }

    fn note(&mut self, text: &str) {
        self.line(text);
    }
}

/// `[3/12] 5f1c2a9e0b7d smollm2 Q4_1 n_batch=512 → ok  tg 182.3 ± 1.2 t/s ...`
pub fn trial_line(event: &TrialEvent, swept: &[&str], elapsed: Duration) -> String {
    let r = event.row;
    let result = match (r.tg_tps_mean, r.pp_tps_mean) {
        (Some(tg), Some(pp)) => format!(
            "ok  tg {tg:.1} ± {:.1} t/s{}  pp {pp:.0} ± {:.0} t/s  ttft {:.0} ms{}{}",
            r.tg_tps_sd.unwrap_or(0.0),
            match r.aggregate_tps_mean {
                Some(all) if r.n_parallel() > 1.0 => format!(" ({all:.1} t/s in all)"),
                _ => String::new(),
            },
            r.pp_tps_sd.unwrap_or(0.0),
            r.ttft_ms_mean.unwrap_or(0.0),
            r.at_depth
                .0
                .iter()
                .filter_map(|d| Some(format!("  @{}: tg {:.1}", d.depth, d.tg_tps_mean?)))
                .collect::<String>(),
            if r.noisy { "  (noisy)" } else { "" }
        ),
        _ => format!(
            "{}: {}",
            r.status,
            crate::runner::outcome::first_line(r.error.as_deref())
        ),
    };
    let per_trial = elapsed.as_secs_f64() / event.done.max(1) as f64;
    let eta =
        Duration::from_secs((per_trial * event.total.saturating_sub(event.done) as f64) as u64);
    format!(
        "[{}/{}] {} {} {} {} → {result}  ({:.1} s, ETA {})",
        event.done,
        event.total,
        r.trial_id,
        event.spec.model.name,
        event.spec.model.variant,
        plan::describe(&event.spec.params, swept),
        r.wall_s,
        humantime::format_duration(eta)
    )
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
            log.contains("[1/2] a m Q4_1 n_batch=512 → ok  tg 100.0"),
            "{log}"
        );
        assert!(log.lines().last().unwrap().ends_with("anchor check"));
    }
}
