//! results.csv: one row per trial, appended and synced to disk after each
//! (the rules of every append-only file of a sweep: `csv_log`), so a killed
//! sweep loses at most the trial that was running. Its columns are
//! `columns`.
//!
//! Text cells are written so that a spreadsheet does not run them as
//! formulas (see [`defuse_formula`]); reading undoes exactly that.

use super::columns::{self, Column};
use super::csv_log::{Codec, CsvLog, Layout};
use super::row::TrialRow;
use crate::knobs;
use csv::StringRecord;
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

/// First characters that make a spreadsheet read a cell as a formula
/// (OWASP's list for CSV injection).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Whether `text` is quotes followed by a formula start: the texts that
/// [`defuse_formula`] prefixes with one more quote.
fn needs_defusing(text: &str) -> bool {
    text.trim_start_matches('\'')
        .starts_with(FORMULA_STARTS.as_slice())
}

/// A text cell as written to a CSV file: one `'` in front of a text that
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return, so that a
/// spreadsheet shows it instead of running it. A text that already starts
/// with quotes before such a character gets one more, so that
/// [`restore_formula`] can undo every case exactly.
pub fn defuse_formula(text: &str) -> Cow<'_, str> {
    if needs_defusing(text) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Undoes [`defuse_formula`]. A cell written before defusing existed keeps
/// its text, unless it started with a quote followed by a formula start.
pub fn restore_formula(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_defusing(rest) => rest,
        _ => cell,
    }
}

/// results.csv's records: one [`TrialRow`] in the columns of `columns`.
pub struct ResultsCodec;

/// The columns by name.
fn by_name() -> &'static HashMap<&'static str, &'static Column> {
    static MAP: OnceLock<HashMap<&'static str, &'static Column>> = OnceLock::new();
    MAP.get_or_init(|| columns::columns().iter().map(|c| (c.name(), c)).collect())
}

impl Codec for ResultsCodec {
    type Row = TrialRow;

    fn header(&self, _: &TrialRow) -> StringRecord {
        columns::header().into_iter().collect()
    }

    fn encode(&self, row: &TrialRow) -> StringRecord {
        let cells: Vec<String> = columns::columns()
            .iter()
            .map(|c| {
                let text = c.cell(row).text().into_owned();
                if c.is_free_text() {
                    defuse_formula(&text).into_owned()
                } else {
                    text
                }
            })
            .collect();
        StringRecord::from(cells)
    }

    fn decode(&self, header: &StringRecord, record: &StringRecord) -> Result<TrialRow, String> {
        let mut row = columns::blank_row();
        let mut seen = 0;
        for (name, cell) in header.iter().zip(record.iter()) {
            let (column, cell) = match by_name().get(name) {
                Some(column) => (*column, Cow::Borrowed(cell)),
                // An old knob name: its cell in the new knob's terms.
                None => {
                    let alias =
                        knobs::alias(name).ok_or_else(|| format!("unknown column {name}"))?;
                    let value = alias
                        .translate(cell)
                        .ok_or_else(|| format!("{name}: {cell:?} is not one of its values"))?;
                    (by_name()[alias.knob.name()], Cow::Owned(value.to_string()))
                }
            };
            let text: &str = if column.is_free_text() {
                restore_formula(&cell)
            } else {
                &cell
            };
            column.set(&mut row, (!text.is_empty()).then_some(text))?;
            seen += 1;
        }
        if seen < columns::columns().len() {
            for column in columns::columns() {
                if !has_column(header, column) {
                    column.set(&mut row, None)?;
                    // A knob the file predates: its trial ran with llama.cpp's
                    // default of the time, which `before` records.
                    match column {
                        Column::Knob(knob) if !row.is_defaulted(knob.id) => {
                            if !row.defaulted.is_empty() {
                                row.defaulted.push(';');
                            }
                            row.defaulted.push_str(knob.name);
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(row)
    }

    fn layout(&self, header: &StringRecord) -> Result<Layout, String> {
        let refuse = || {
            "has other columns than this version of llama-sweep writes; move it aside (or use \
             another sweep name) to start a new sweep"
                .to_string()
        };
        if header
            .iter()
            .any(|h| !by_name().contains_key(h) && knobs::alias(h).is_none())
        {
            return Err(refuse());
        }
        let missing: Vec<&Column> = columns::columns()
            .iter()
            .filter(|c| !has_column(header, c))
            .collect();
        if missing.is_empty() {
            return Ok(Layout::Current);
        }
        if missing.iter().any(|c| !c.may_be_missing()) {
            return Err(refuse());
        }
        Ok(Layout::Older {
            missing: missing.iter().map(|c| c.name().to_string()).collect(),
        })
    }
}

/// Whether `header` has `column`, under its name or an old one.
fn has_column(header: &StringRecord, column: &Column) -> bool {
    header.iter().any(|h| {
        h == column.name() || knobs::alias(h).is_some_and(|a| a.knob.name() == column.name())
    })
}

/// results.csv in `path`.
pub fn log(path: &Path) -> CsvLog<ResultsCodec> {
    CsvLog::new(path, ResultsCodec)
}

/// The header this version writes.
pub fn header() -> Vec<String> {
    columns::header().into_iter().map(String::from).collect()
}

/// Reads every complete row of a results.csv (a missing file has none). An
/// incomplete last row, left by an interrupted write, is ignored.
pub fn read(path: &Path) -> anyhow::Result<Vec<TrialRow>> {
    log(path).read()
}

/// Like [`read`], but leaves the file ready for appending (see
/// `CsvLog::read_and_repair`).
pub fn read_and_repair(path: &Path) -> anyhow::Result<(Vec<TrialRow>, Option<String>)> {
    log(path).read_and_repair()
}

/// Writes a whole results.csv (header and rows) atomically.
pub fn write_all(path: &Path, rows: &[TrialRow]) -> anyhow::Result<()> {
    let log = log(path);
    if rows.is_empty() {
        // A header alone, so the file is still a results.csv.
        let header: StringRecord = columns::header().into_iter().collect();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&header)?;
        return super::write_atomically(path, &writer.into_inner()?);
    }
    log.write_all(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{TrialStatus, mock};
    use crate::test_support::row;

    fn write_rows(path: &Path, n: usize) -> Vec<u8> {
        let log = log(path);
        for i in 0..n {
            log.append(&row(
                &format!("t{i}"),
                &mock::failed(TrialStatus::Failed, "multi\nline \"reason\""),
            ))
            .unwrap();
        }
        std::fs::read(path).unwrap()
    }

    #[test]
    fn an_incomplete_last_row_is_cut_off_when_appending_and_ignored_when_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let complete = write_rows(&path, 3);
        let second_end = {
            let two = dir.path().join("two.csv");
            write_rows(&two, 2).len()
        };
        for cut in (second_end + 1..complete.len()).step_by(37) {
            std::fs::write(&path, &complete[..cut]).unwrap();
            assert_eq!(read(&path).unwrap().len(), 2, "cut at {cut}");
            let (rows, note) = read_and_repair(&path).unwrap();
            assert_eq!(rows.len(), 2, "cut at {cut}");
            assert!(note.unwrap().contains("incomplete last record"));
            assert_eq!(
                std::fs::read(&path).unwrap(),
                complete[..second_end],
                "cut at {cut}"
            );
        }
    }

    fn header_index(name: &str) -> usize {
        header().iter().position(|h| h == name).unwrap()
    }

    #[test]
    fn defusing_is_undone_exactly() {
        for text in [
            "=1+1", "+a", "-foo", "@sum", "\tx", "\rx", "'=x", "''-x", "'plain", "plain", "", "'",
            "a=b", "1e-3",
        ] {
            let cell = defuse_formula(text);
            assert!(!cell.starts_with(FORMULA_STARTS.as_slice()), "{cell:?}");
            assert_eq!(restore_formula(&cell), text, "{text:?} written as {cell:?}");
        }
        assert_eq!(defuse_formula("=x"), "'=x");
        assert_eq!(defuse_formula("'=x"), "''=x");
        assert_eq!(defuse_formula("'plain"), "'plain");
    }

    #[test]
    fn the_free_text_columns_are_the_string_fields() {
        let text: Vec<&str> = columns::columns()
            .iter()
            .filter(|c| c.is_free_text())
            .map(|c| c.name())
            .collect();
        for name in [
            "trial_id",
            "error",
            "model_name",
            "model_description",
            "violations",
            "log_tail",
        ] {
            assert!(text.contains(&name), "{name} is text: {text:?}");
        }
        for name in [
            "n_gpu_layers",
            "load_ms",
            "status",
            "flash_attn",
            "type_k",
            "load_mode",
            "seq",
        ] {
            assert!(!text.contains(&name), "{name} is not text: {text:?}");
        }
    }

    #[test]
    fn formula_like_text_round_trips_and_is_defused_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let mut dangerous = row("t1", &mock::failed(TrialStatus::Failed, "-foo"));
        dangerous.model_name = "=HYPERLINK(\"http://x\",\"y\")".into();
        dangerous.model_path = "+models/m.gguf".into();
        dangerous.model_description = Some("@SUM(A1)".into());
        dangerous.violations = Some("\tx".into());
        dangerous.log_tail = "\rcr".into();
        dangerous.sweep = "'=already quoted".into();
        dangerous.build = "'plain".into();
        dangerous
            .params
            .set(crate::knobs::N_GPU_LAYERS, crate::knobs::Value::Int(-1));
        dangerous.load_ms = Some(-1.5);
        let log = log(&path);
        log.append(&dangerous).unwrap();
        let plain = row("t2", &mock::measured(100.0, 400.0));
        log.append(&plain).unwrap();
        assert_eq!(read(&path).unwrap(), vec![dangerous.clone(), plain.clone()]);
        // write_all (used to replace rows) defuses the same way.
        write_all(&path, &[dangerous.clone(), plain.clone()]).unwrap();
        assert_eq!(read(&path).unwrap(), vec![dangerous, plain]);

        let raw = std::fs::read_to_string(&path).unwrap();
        let mut reader = csv::ReaderBuilder::new().from_reader(raw.as_bytes());
        let cells = reader.records().next().unwrap().unwrap();
        let cell = |name: &str| cells[header_index(name)].to_string();
        assert!(cell("model_name").starts_with("'=HYPERLINK("), "{raw}");
        assert_eq!(cell("error"), "'-foo");
        assert_eq!(cell("model_path"), "'+models/m.gguf");
        assert_eq!(cell("model_description"), "'@SUM(A1)");
        assert_eq!(cell("violations"), "'\tx");
        assert_eq!(cell("log_tail"), "'\rcr");
        assert_eq!(cell("sweep"), "''=already quoted");
        assert_eq!(cell("build"), "'plain");
        assert_eq!(cell("n_gpu_layers"), "-1", "numbers stay numbers");
        assert_eq!(cell("load_ms"), "-1.5");
    }

    #[test]
    fn a_results_csv_written_before_defusing_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let mut old = row("t1", &mock::failed(TrialStatus::Failed, "-foo"));
        old.model_name = "=x".into();
        old.build = "'plain".into();
        // The way earlier versions wrote rows: the cells as they are.
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(header()).unwrap();
        let cells: Vec<String> = columns::columns()
            .iter()
            .map(|c| c.cell(&old).text().into_owned())
            .collect();
        writer.write_record(&cells).unwrap();
        std::fs::write(&path, writer.into_inner().unwrap()).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains(",=x,"));
        assert_eq!(read(&path).unwrap(), vec![old]);
    }

    use crate::store::row::LATER_COLUMNS;

    #[test]
    fn a_results_csv_without_later_columns_is_read_and_rewritten_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let mut old = row("t1", &mock::measured(100.0, 400.0));
        old.model_name = "=x".into();
        // What an earlier version could not measure.
        (old.aggregate_tps_mean, old.aggregate_tps_sd) = (None, None);
        (old.ttft_ms_p50, old.ttft_ms_p95) = (None, None);
        (old.itl_ms_p50, old.itl_ms_p95) = (None, None);
        (old.request_tps_mean, old.request_tps_sd, old.tpot_ms_mean) = (None, None, None);
        (old.output_tps_mean, old.output_tps_sd) = (None, None);
        (old.request_tps_samples, old.output_tps_samples) = (String::new(), String::new());
        (old.busy_runs, old.other_cores_max) = (None, None);
        old.aggregate_tps_samples = String::new();
        write_all(&path, std::slice::from_ref(&old)).unwrap();
        // Drop the later columns of the header and of the row, as an
        // earlier version wrote them.
        let text = std::fs::read_to_string(&path).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let full_header = reader.headers().unwrap().clone();
        let keep: Vec<usize> = (0..full_header.len())
            .filter(|&i| !LATER_COLUMNS.contains(&&full_header[i]))
            .collect();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer
            .write_record(keep.iter().map(|&i| &full_header[i]))
            .unwrap();
        for record in reader.records() {
            let record = record.unwrap();
            writer
                .write_record(keep.iter().map(|&i| &record[i]))
                .unwrap();
        }
        std::fs::write(&path, writer.into_inner().unwrap()).unwrap();
        assert_eq!(read(&path).unwrap(), vec![old.clone()], "read as is");
        let (rows, note) = read_and_repair(&path).unwrap();
        assert_eq!(rows, vec![old.clone()]);
        assert!(
            note.unwrap().contains("kld"),
            "the note names the new columns"
        );
        let rewritten = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            rewritten.lines().next().unwrap().split(',').count(),
            header().len()
        );
        let mut new = row("t2", &mock::measured(90.0, 400.0));
        new.kld = Some(0.01);
        log(&path).append(&new).unwrap();
        assert_eq!(read(&path).unwrap(), vec![old, new]);
        // Another layout is still refused.
        std::fs::write(&path, "a,b\n1,2\n").unwrap();
        assert!(
            read(&path)
                .unwrap_err()
                .to_string()
                .contains("other columns")
        );
    }

    #[test]
    fn a_results_csv_from_before_a_knob_existed_reads_with_the_value_trials_ran_with() {
        let later: Vec<&crate::knobs::Knob> = crate::knobs::TABLE
            .iter()
            .filter(|k| k.before.is_some())
            .collect();
        if later.is_empty() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let old = row("t1", &mock::measured(100.0, 400.0));
        let keep: Vec<&Column> = columns::columns()
            .iter()
            .filter(|c| !later.iter().any(|k| k.name == c.name()))
            .collect();
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(keep.iter().map(|c| c.name())).unwrap();
        let cells: Vec<String> = keep
            .iter()
            .map(|c| c.cell(&old).text().into_owned())
            .collect();
        writer.write_record(&cells).unwrap();
        std::fs::write(&path, writer.into_inner().unwrap()).unwrap();
        let rows = read(&path).unwrap();
        for knob in later {
            assert_eq!(
                Some(rows[0].params.get(knob.id).clone()),
                crate::knobs::Value::from_cell(knob, knob.before.unwrap()),
                "{}",
                knob.name
            );
            assert!(rows[0].is_defaulted(knob.id), "{}", knob.name);
        }
    }

    #[test]
    fn damage_before_good_rows_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let text = String::from_utf8(write_rows(&path, 3)).unwrap();
        let damaged = text.replacen(",failed,", ",exploded,", 1);
        std::fs::write(&path, damaged).unwrap();
        let err = read_and_repair(&path).unwrap_err().to_string();
        assert!(err.contains("later ones are fine"), "{err}");
    }
}
