//! Everything a sweep writes under `reports/<name>/`: results.csv (appended
//! and synced per trial), results.parquet (rewritten atomically per trial),
//! manifest.json, plan.json, anchors.csv, a copy of the sweep.toml, and
//! `logs/<trial_id>.log`. While a run has the folder open it holds the
//! folder's lock. A worker (`llama-sweep worker`) appends to its own
//! `workers/<name>.csv` instead, holding that file's lock; every reader
//! merges results.csv with the workers' files.

pub mod anchors;
pub mod columns;
pub mod csv_file;
pub mod csv_log;
pub mod depths;
pub mod lock;
pub mod manifest;
pub mod parquet_file;
pub mod plan_file;
pub mod row;
pub mod writers;

pub use writers::merge;

use crate::exit::{FolderUnusable, WriteFailed};
use anyhow::Context;
use row::TrialRow;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const RESULTS_CSV: &str = "results.csv";
pub const RESULTS_PARQUET: &str = "results.parquet";
pub const MANIFEST: &str = "manifest.json";
pub const SWEEP_COPY: &str = "sweep.toml";
pub const SWEEP_LOG: &str = "sweep.log";
pub const LOGS: &str = "logs";

/// The output folder of one sweep, open for recording rows.
pub struct Store {
    folder: PathBuf,
    /// Every row: this process's and the other writers' (merged).
    rows: Vec<TrialRow>,
    /// The rows this process's file holds.
    own: Vec<TrialRow>,
    /// The other writers' files, followed as they grow.
    others: Vec<Follower>,
    csv: csv_log::CsvLog<csv_file::ResultsCodec>,
    /// A worker writes no results.parquet: `run` and `report` write it
    /// from every row.
    writes_parquet: bool,
    repair_note: Option<String>,
    /// Whether rows made under `--test-fault` count (only in a run under
    /// one): otherwise they are left out of `rows` and measured again.
    test_fault_rows: bool,
    /// The machine fingerprint whose rows count, once known: rows of other
    /// hardware are left out of `rows` (never ranked with this machine's,
    /// and their trials measured here too).
    machine_id: Option<String>,
    /// The merged rows left out of `rows` by the two settings above.
    left_out: Vec<TrialRow>,
    _lock: lock::FolderLock,
}

/// Another writer's rows file, read as far as its last complete record.
struct Follower {
    log: csv_log::CsvLog<csv_file::ResultsCodec>,
    /// The file's inode: a rewrite (rename over it) is read again whole.
    inode: u64,
    end: u64,
    rows: Vec<TrialRow>,
}

impl Follower {
    fn new(path: PathBuf) -> Follower {
        Follower {
            log: csv_file::log(&path),
            inode: 0,
            end: 0,
            rows: Vec::new(),
        }
    }

    /// Reads what was added since the last call; true if anything was.
    fn follow(&mut self) -> anyhow::Result<bool> {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(self.log.path()) else {
            return Ok(false);
        };
        if meta.ino() != self.inode || meta.len() < self.end {
            self.inode = meta.ino();
            self.end = 0;
            self.rows.clear();
        }
        if meta.len() == self.end {
            return Ok(false);
        }
        let (rows, end) = self.log.read_from(self.end)?;
        self.end = end;
        let grew = !rows.is_empty();
        self.rows.extend(rows);
        Ok(grew)
    }
}

/// The rows files of a folder other than `own`: results.csv and every
/// worker's.
fn other_files(folder: &Path, own: &Path) -> Vec<PathBuf> {
    std::iter::once(folder.join(RESULTS_CSV))
        .chain(writers::rows_files(folder))
        .filter(|p| p != own)
        .collect()
}

/// Whether two rows measure the same thing: the same trial on the same
/// hardware (a row of another machine is kept beside it).
fn same_measurement(a: &TrialRow, b: &TrialRow) -> bool {
    a.trial_id == b.trial_id && a.machine_id == b.machine_id
}

/// A failure to write results, which ends the sweep with exit status 4.
fn write_failed(what: String, error: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(WriteFailed(format!("{what}: {error:#}")))
}

impl Store {
    /// Opens (creating) the folder, takes its lock, and reads the rows
    /// already recorded there, cutting off an incomplete last one.
    pub fn open(folder: &Path) -> anyhow::Result<Store> {
        Store::open_as(folder, None)
    }

    /// Opens the folder for `worker` (its own rows file and lock), or for a
    /// plain run (results.csv and the folder's lock) when `None`.
    pub fn open_as(folder: &Path, worker: Option<&str>) -> anyhow::Result<Store> {
        std::fs::create_dir_all(folder.join(LOGS)).map_err(|e| {
            FolderUnusable(format!(
                "cannot create the output folder {}: {e}",
                folder.display()
            ))
        })?;
        let (csv_path, lock) = match worker {
            None => (folder.join(RESULTS_CSV), lock::FolderLock::acquire(folder)),
            Some(name) => {
                let path = writers::rows_file(folder, name);
                let lock = std::fs::create_dir_all(folder.join(writers::WORKERS))
                    .map_err(anyhow::Error::from)
                    .and_then(|()| lock::FolderLock::acquire_file(&path.with_extension("lock")));
                (path, lock)
            }
        };
        let lock = lock.map_err(|e| {
            if e.is::<FolderUnusable>() {
                e
            } else {
                FolderUnusable(format!("{e:#}")).into()
            }
        })?;
        let csv = csv_file::log(&csv_path);
        let (own, repair_note) = csv.read_and_repair()?;
        if own.is_empty() && std::fs::metadata(&csv_path).map_or(true, |m| m.len() == 0) {
            // A new sweep: the header is there from the start.
            csv_file::write_all(&csv_path, &[]).map_err(|e| FolderUnusable(format!("{e:#}")))?;
        }
        let mut store = Store {
            folder: folder.to_path_buf(),
            rows: Vec::new(),
            own,
            others: Vec::new(),
            csv,
            writes_parquet: worker.is_none(),
            repair_note,
            test_fault_rows: true,
            machine_id: None,
            left_out: Vec::new(),
            _lock: lock,
        };
        store.refresh()?;
        // A run killed between its CSV append and its Parquet rewrite left
        // the Parquet file one row behind.
        if !store.rows.is_empty() {
            store.write_parquet()?;
        }
        Ok(store)
    }

    /// Reads what the other writers recorded since the last look, and
    /// returns those rows.
    pub fn refresh(&mut self) -> anyhow::Result<Vec<TrialRow>> {
        for path in other_files(&self.folder, self.csv.path()) {
            if !self.others.iter().any(|f| f.log.path() == path) {
                self.others.push(Follower::new(path));
            }
        }
        let mut fresh = Vec::new();
        let mut changed = self.rows.is_empty() && !self.own.is_empty();
        for follower in &mut self.others {
            let before = follower.rows.len();
            if follower.follow()? {
                changed = true;
                let start = before.min(follower.rows.len());
                fresh.extend(follower.rows[start..].iter().cloned());
            }
        }
        if changed {
            self.merge();
        }
        Ok(fresh)
    }

    fn merge(&mut self) {
        let lists: Vec<&[TrialRow]> = std::iter::once(self.own.as_slice())
            .chain(self.others.iter().map(|f| f.rows.as_slice()))
            .collect();
        let (faked_count, here) = (self.test_fault_rows, self.machine_id.as_deref());
        let (left_out, rows): (Vec<TrialRow>, Vec<TrialRow>) =
            merge(lists).into_iter().partition(|r| {
                (r.is_test_fault() && !faked_count)
                    || here.is_some_and(|m| r.machine_id.as_deref().is_some_and(|id| id != m))
            });
        self.left_out = left_out;
        self.rows = rows;
    }

    /// For a run without `--test-fault`: rows made under one are not
    /// measurements, so they are left out (never ranked, confirmed or
    /// exported) and their trials count as not measured. Returns how many
    /// were left out.
    pub fn leave_out_test_fault_rows(&mut self) -> usize {
        let faked = self.rows.iter().filter(|r| r.is_test_fault()).count();
        self.test_fault_rows = false;
        self.merge();
        faked
    }

    /// Only rows measured on the machine with fingerprint `machine_id`
    /// (and old rows that do not say where) count from now on: a trial
    /// recorded only on other hardware is not measured here yet.
    pub fn count_only_machine(&mut self, machine_id: &str) {
        self.machine_id = Some(machine_id.to_string());
        self.merge();
    }

    /// The rows left out (other machines', and test-fault rows in a run
    /// without a test fault): for notes, never for ranking.
    pub fn left_out(&self) -> &[TrialRow] {
        &self.left_out
    }

    /// Set when opening cut an incomplete last row off results.csv.
    pub fn repair_note(&self) -> Option<&str> {
        self.repair_note.as_deref()
    }

    pub fn folder(&self) -> &Path {
        &self.folder
    }

    pub fn rows(&self) -> &[TrialRow] {
        &self.rows
    }

    /// The trials that need not run again: every recorded one but those
    /// that run again on resume (`TrialRow::to_measure_again`).
    pub fn recorded_ids(&self) -> HashSet<String> {
        self.rows
            .iter()
            .filter(|r| !r.to_measure_again())
            .map(|r| r.trial_id.clone())
            .collect()
    }

    /// `logs/<trial_id>.log`, relative to the folder (as stored in rows).
    pub fn log_file(trial_id: &str) -> String {
        format!("{LOGS}/{trial_id}.log")
    }

    /// Records a row: appended to the CSV and synced, then the Parquet file
    /// rewritten. A row of a trial recorded already (one that ran again
    /// after a stop for systematic failure) replaces it.
    pub fn append(&mut self, row: TrialRow) -> anyhow::Result<()> {
        if self.own.iter().any(|r| same_measurement(r, &row)) {
            return self.replace(std::slice::from_ref(&row));
        }
        let id = row.trial_id.clone();
        self.csv.append(&row).map_err(|e| {
            write_failed(
                format!("cannot record trial {id} in {}", self.csv.path().display()),
                e,
            )
        })?;
        if self
            .rows
            .iter()
            .chain(&self.left_out)
            .any(|r| r.trial_id == row.trial_id)
        {
            self.own.push(row);
            self.merge();
        } else {
            self.rows.push(row.clone());
            self.own.push(row);
        }
        self.write_parquet()
    }

    /// Replaces recorded rows by trial id (a re-measurement), rewriting the
    /// CSV atomically.
    /// Only this writer's rows can be replaced: another worker's are its own.
    pub fn replace(&mut self, updated: &[TrialRow]) -> anyhow::Result<()> {
        for new in updated {
            if let Some(old) = self.own.iter_mut().find(|r| same_measurement(r, new)) {
                *old = new.clone();
            }
        }
        let csv_path = self.csv.path().to_path_buf();
        csv_file::write_all(&csv_path, &self.own)
            .map_err(|e| write_failed(format!("cannot rewrite {}", csv_path.display()), e))?;
        self.merge();
        self.write_parquet()
    }

    /// Rewrites results.parquet from all rows (not in a worker).
    pub fn write_parquet(&self) -> anyhow::Result<()> {
        if !self.writes_parquet {
            return Ok(());
        }
        parquet_file::write(&self.folder.join(RESULTS_PARQUET), &self.rows)
            .map_err(|e| write_failed(format!("cannot write {RESULTS_PARQUET}"), e))
    }
}

/// Reads the rows of a sweep folder (for export and reports).
/// Reads the rows of a sweep folder (for export and reports): results.csv
/// and every worker's rows, merged.
pub fn read_rows(folder: &Path) -> anyhow::Result<Vec<TrialRow>> {
    let csv_path = folder.join(RESULTS_CSV);
    let workers = writers::rows_files(folder);
    if !csv_path.exists() && workers.is_empty() {
        anyhow::bail!(
            "{} has no {RESULTS_CSV}: is it the output folder of a sweep (reports/<name>)?",
            folder.display()
        );
    }
    let lists: Vec<Vec<TrialRow>> = std::iter::once(csv_path)
        .chain(workers)
        .map(|p| csv_file::read(&p))
        .collect::<anyhow::Result<_>>()?;
    Ok(merge(lists.iter().map(Vec::as_slice).collect()))
}

/// The rows that are measurements: those made under `--test-fault` are
/// not (for readers that rank or export; `status` counts every row).
pub fn measurements(mut rows: Vec<TrialRow>) -> Vec<TrialRow> {
    rows.retain(|r| !r.is_test_fault());
    rows
}

/// The rows measured on the machine `machine_id` (rows that do not say
/// where, from before machines were recorded, count as this one's): the
/// only ones a run on it ranks, confirms, exports or verifies.
pub fn measured_on(mut rows: Vec<TrialRow>, machine_id: &str) -> Vec<TrialRow> {
    rows.retain(|r| r.machine_id.as_deref().is_none_or(|m| m == machine_id));
    rows
}

/// Writes `bytes` to `path` through a synced temporary file and a rename.
/// The temporary file is this process's own, so writers sharing a folder
/// never write into one another's.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.{}.tmp",
        path.extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    sync_parent(path)
}

/// Syncs the folder holding `path`, so a file created or renamed there
/// survives a power loss under its name.
pub fn sync_parent(path: &Path) -> anyhow::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync the folder {}", parent.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{TrialStatus, mock};
    use polars::prelude::DataType;

    use crate::test_support::row;

    /// Issue 36, item 5: verify (like run) takes this machine's rows only:
    /// a faster row another machine wrote to a shared folder is not what
    /// this machine's app runs.
    #[test]
    fn a_machine_uses_its_own_rows_and_those_that_do_not_say_where() {
        let on = |id: &str, machine: Option<&str>| {
            let mut r = row(id, &mock::measured(100.0, 400.0));
            r.machine_id = machine.map(str::to_string);
            r
        };
        let rows = vec![
            on("fast-elsewhere", Some("x")),
            on("here", Some("y")),
            on("old", None),
        ];
        let ids: Vec<String> = measured_on(rows, "y")
            .into_iter()
            .map(|r| r.trial_id)
            .collect();
        assert_eq!(ids, ["here", "old"]);
    }

    #[test]
    fn rows_round_trip_through_csv_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("s");
        let ok = row("aaa", &mock::measured(100.0, 400.0));
        let failed = row(
            "bbb",
            &mock::failed(TrialStatus::Failed, "cannot load model, \"quoted\"\nline 2"),
        );
        {
            let mut store = Store::open(&folder).unwrap();
            store.append(ok.clone()).unwrap();
            store.append(failed.clone()).unwrap();
        }
        let store = Store::open(&folder).unwrap();
        assert_eq!(store.rows(), &[ok.clone(), failed.clone()]);
        assert_eq!(store.recorded_ids().len(), 2);
        assert_eq!(read_rows(&folder).unwrap().len(), 2);
        // Reopening does not write a second header.
        let text = std::fs::read_to_string(folder.join(RESULTS_CSV)).unwrap();
        assert_eq!(text.matches("trial_id,sweep").count(), 1);
        assert!(ok.feasible && !failed.feasible);
        assert_eq!(failed.params.int(crate::knobs::N_BATCH), 512);
        assert!(failed.defaulted.contains("n_ctx") && !failed.defaulted.contains("n_batch"));
        assert_eq!(failed.params.int(crate::knobs::N_CTX), 512);
        assert_eq!(row::split_samples(&ok.tg_tps_samples).len(), 3);
    }

    #[test]
    fn parquet_has_typed_columns_and_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store
            .append(row("aaa", &mock::measured(100.0, 400.0)))
            .unwrap();
        store
            .append(row(
                "bbb",
                &mock::failed(TrialStatus::Oom, "failed to allocate"),
            ))
            .unwrap();
        let df = parquet_file::read(&dir.path().join(RESULTS_PARQUET)).unwrap();
        assert_eq!(df.height(), 2);
        assert_eq!(df.width(), csv_file::header().len());
        assert_eq!(
            df.column("tg_tps_mean").unwrap().dtype(),
            &DataType::Float64
        );
        assert_eq!(df.column("n_batch").unwrap().dtype(), &DataType::Int64);
        assert_eq!(df.column("feasible").unwrap().dtype(), &DataType::Boolean);
        assert_eq!(df.column("status").unwrap().dtype(), &DataType::String);
        assert_eq!(df.column("tg_tps_mean").unwrap().null_count(), 1);
        assert_eq!(
            df.column("device_memory_mib").unwrap().dtype(),
            &DataType::Float64,
            "empty, still typed"
        );
        assert!(!dir.path().join("results.parquet.tmp").exists());
    }

    #[test]
    fn a_csv_with_other_columns_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(RESULTS_CSV), "a,b\n1,2\n").unwrap();
        let err = Store::open(dir.path()).err().unwrap();
        assert!(err.to_string().contains("other columns"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.json");
        write_atomically(&p, b"1").unwrap();
        write_atomically(&p, b"2").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
