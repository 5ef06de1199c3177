//! The writers of one sweep folder and how their rows become one table.
//! A plain run appends to results.csv; each worker (`llama-sweep worker`)
//! to its own `workers/<name>.csv`. Every row names who measured it
//! ([`Origin`]); every reader merges the files ([`merge`]), keeping one row
//! per trial by a rule that does not depend on the order the files are read
//! in, nor on which host's clock ran ahead.

use super::row::TrialRow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The folder of the workers' rows files and states.
pub const WORKERS: &str = "workers";

/// Who is measuring: the names every row records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Origin {
    pub host: String,
    /// The worker's name; empty for a plain `llama-sweep run`.
    pub worker: String,
    /// A short hash of `machine`.
    pub machine_id: String,
    /// CPU model, accelerators and llama.cpp build.
    pub machine: String,
}

impl Origin {
    /// The name claims go under: the worker's, else the host's.
    pub fn worker_or_host(&self) -> String {
        if self.worker.is_empty() {
            format!("{}-run-{}", self.host, std::process::id())
        } else {
            self.worker.clone()
        }
    }
}

/// `workers/<name>.csv`: the rows one worker measured.
pub fn rows_file(folder: &Path, worker: &str) -> PathBuf {
    folder.join(WORKERS).join(format!("{worker}.csv"))
}

/// Every worker's rows file in a folder, by name.
pub fn rows_files(folder: &Path) -> Vec<PathBuf> {
    worker_files(folder, "csv")
}

/// The files under `workers/` whose extension is `extension`, by name.
pub fn worker_files(folder: &Path, extension: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder.join(WORKERS)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

/// Which of two rows of one trial the merged table keeps: a real
/// measurement over one made under a test fault, a complete measurement
/// (`ok`) over a failure, then the one finished later, then the writer's
/// name, then the row's own fields: a total order, so the same rows give
/// the same table whatever order the files were read in.
fn preferred(a: &TrialRow, b: &TrialRow) -> Ordering {
    (!a.is_test_fault(), a.is_ok(), &a.finished_at)
        .cmp(&(!b.is_test_fault(), b.is_ok(), &b.finished_at))
        .then_with(|| a.worker.cmp(&b.worker))
        .then_with(|| a.host.cmp(&b.host))
        .then_with(|| a.started_at.cmp(&b.started_at))
        .then_with(|| format!("{a:?}").cmp(&format!("{b:?}")))
}

/// One row per trial and machine from several files (see [`preferred`]): a
/// trial measured on two kinds of hardware keeps a row for each. In
/// recording order when there is one file, else by finishing time.
pub fn merge(lists: Vec<&[TrialRow]>) -> Vec<TrialRow> {
    let several = lists.iter().filter(|l| !l.is_empty()).count() > 1;
    let mut rows: Vec<TrialRow> = lists.into_iter().flatten().cloned().collect();
    if !several {
        return rows;
    }
    rows.sort_by(|a, b| a.finished_at.cmp(&b.finished_at));
    let mut best: HashMap<(&str, Option<&str>), usize> = HashMap::new();
    for (i, r) in rows.iter().enumerate() {
        best.entry((r.trial_id.as_str(), r.machine_id.as_deref()))
            .and_modify(|kept| {
                if preferred(r, &rows[*kept]) == Ordering::Greater {
                    *kept = i;
                }
            })
            .or_insert(i);
    }
    let mut keep: Vec<usize> = best.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| rows[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{TrialStatus, mock};
    use crate::test_support::row;

    fn at(mut r: TrialRow, finished_at: &str, worker: &str) -> TrialRow {
        r.finished_at = finished_at.into();
        r.worker = Some(worker.into());
        r
    }

    #[test]
    fn a_complete_measurement_wins_over_a_later_failure_of_the_same_trial() {
        let ok = at(
            row("t1", &mock::measured(100.0, 400.0)),
            "2026-12-03T10:00:00Z",
            "a",
        );
        // A worker whose claim lapsed measured it again and timed out later.
        let late_timeout = at(
            row("t1", &mock::failed(TrialStatus::Timeout, "no result")),
            "2026-12-03T10:05:00Z",
            "b",
        );
        let merged = merge(vec![
            std::slice::from_ref(&ok),
            std::slice::from_ref(&late_timeout),
        ]);
        assert_eq!(merged, vec![ok.clone()]);
        // Whichever file is read first.
        let merged = merge(vec![
            std::slice::from_ref(&late_timeout),
            std::slice::from_ref(&ok),
        ]);
        assert_eq!(merged, vec![ok]);
    }

    #[test]
    fn equal_finishing_times_are_decided_the_same_way_in_any_order() {
        let second = "2026-12-03T10:00:00Z";
        let a = at(row("t1", &mock::measured(100.0, 400.0)), second, "a");
        let b = at(row("t1", &mock::measured(90.0, 300.0)), second, "b");
        let ab = merge(vec![std::slice::from_ref(&a), std::slice::from_ref(&b)]);
        let ba = merge(vec![std::slice::from_ref(&b), std::slice::from_ref(&a)]);
        assert_eq!(ab, ba);
        assert_eq!(ab.len(), 1);
    }

    #[test]
    fn a_real_measurement_wins_over_one_made_under_a_test_fault() {
        let mut faked = at(
            row("t1", &mock::measured(1000.0, 4000.0)),
            "2026-12-03T11:00:00Z",
            "a",
        );
        faked
            .build
            .push_str(" [test fault sleep:1 injected: not a measurement]");
        let real = at(
            row("t1", &mock::measured(100.0, 400.0)),
            "2026-12-03T10:00:00Z",
            "b",
        );
        let merged = merge(vec![
            std::slice::from_ref(&faked),
            std::slice::from_ref(&real),
        ]);
        assert_eq!(merged, vec![real]);
    }

    #[test]
    fn the_later_of_two_failures_or_two_measurements_is_kept() {
        let early = at(
            row("t1", &mock::failed(TrialStatus::Crashed, "x")),
            "2026-12-03T10:00:00Z",
            "a",
        );
        let late = at(
            row("t1", &mock::failed(TrialStatus::Oom, "y")),
            "2026-12-03T10:01:00Z",
            "a",
        );
        let other = at(
            row("t2", &mock::measured(1.0, 1.0)),
            "2026-12-03T09:00:00Z",
            "b",
        );
        let merged = merge(vec![&[early, late.clone()], std::slice::from_ref(&other)]);
        assert_eq!(merged, vec![other, late]);
    }
}
