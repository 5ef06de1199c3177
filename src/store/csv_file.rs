//! results.csv: one row per trial, appended and synced to disk after each, so
//! a killed sweep loses at most the trial that was running. A row cut short
//! by a crash or a full disk can only be the last one; opening the file for
//! appending removes it, reading it for a report ignores it.
//!
//! Text cells are written so that a spreadsheet does not run them as
//! formulas (see [`defuse_formula`]); reading undoes exactly that.

use super::row::TrialRow;
use anyhow::{Context, bail};
use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// A row with a value of the right type in every column (0, 0.0, "",
/// false): it gives the header, and the Parquet file its fixed schema.
pub fn example_row() -> TrialRow {
    const EXAMPLE: &str = r#"{
        "trial_id": "", "sweep": "", "seq": 0, "status": "ok", "error": "", "exit": "", "attempts": 0,
        "model_name": "", "model_variant": "", "model_path": "", "model_identity": "",
        "model_description": "", "model_size_bytes": 0, "model_params": 0,
        "n_gpu_layers": 0, "n_ctx": 0, "n_batch": 0, "n_ubatch": 0, "n_threads": 0,
        "n_threads_batch": 0, "flash_attn": "auto", "type_k": "f16", "type_v": "f16",
        "use_mmap": true, "offload_kqv": true, "defaulted": "",
        "prompt_tokens": 0, "gen_tokens": 0, "repetitions": 0, "warmup": 0,
        "request_prompt_tokens": 0, "request_max_tokens": 0,
        "pp_tps_mean": 0.5, "pp_tps_sd": 0.5, "tg_tps_mean": 0.5, "tg_tps_sd": 0.5,
        "ttft_ms_mean": 0.5, "ttft_ms_sd": 0.5, "e2e_ms_mean": 0.5, "e2e_ms_sd": 0.5,
        "n_samples": 0, "load_ms": 0.5, "peak_rss_mib": 0.5, "device_memory_mib": 0.5,
        "layers_offloaded": 0, "layers_total": 0, "n_ctx_actual": 0,
        "flash_attn_resolved": false, "feasible": false, "violations": "", "cv": 0.5, "noisy": false, "drift": "",
        "pp_tps_samples": "", "tg_tps_samples": "", "ttft_ms_samples": "", "e2e_ms_samples": "",
        "wall_s": 0.5, "started_at": "", "finished_at": "", "build": "", "log_file": "", "log_tail": ""
    }"#;
    serde_json::from_str(EXAMPLE).expect("the example row matches TrialRow")
}

/// The header the current version writes.
pub fn header() -> Vec<String> {
    static HEADER: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    HEADER
        .get_or_init(|| {
            // Serializing a row with serde gives the field names in order.
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.serialize(example_row()).expect("rows serialize");
            let bytes = writer.into_inner().expect("in-memory writer");
            let mut reader = csv::Reader::from_reader(bytes.as_slice());
            let header = reader.headers().expect("header parses");
            header.iter().map(str::to_string).collect()
        })
        .clone()
}

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

/// Positions of the free-text columns (the `String` and `Option<String>`
/// fields of [`TrialRow`]): the example row's empty cells. Numbers, booleans
/// and enum names cannot start a formula and are written as they are.
fn text_columns() -> &'static [usize] {
    static TEXT: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        plain_record(&example_row())
            .iter()
            .enumerate()
            .filter(|(_, cell)| cell.is_empty())
            .map(|(i, _)| i)
            .collect()
    })
}

/// A row's cells as serde writes them, before defusing.
fn plain_record(row: &TrialRow) -> csv::StringRecord {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    writer.serialize(row).expect("rows serialize");
    let bytes = writer.into_inner().expect("in-memory writer");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice());
    reader
        .records()
        .next()
        .expect("one record")
        .expect("a record just written parses")
}

/// A row's cells as written to results.csv: text cells defused.
fn record_of(row: &TrialRow) -> csv::StringRecord {
    let plain = plain_record(row);
    let text = text_columns();
    plain
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            if text.contains(&i) {
                defuse_formula(cell)
            } else {
                Cow::Borrowed(cell)
            }
        })
        .collect()
}

/// A record read from results.csv with its text cells restored.
fn restored(record: &csv::ByteRecord) -> csv::ByteRecord {
    let text = text_columns();
    record
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            if !text.contains(&i) {
                return cell;
            }
            match std::str::from_utf8(cell) {
                Ok(s) => restore_formula(s).as_bytes(),
                Err(_) => cell,
            }
        })
        .collect()
}

/// The rows of a results.csv, and where its last complete row ends.
struct Parsed {
    rows: Vec<TrialRow>,
    /// Byte offset just after the last complete row (or the header).
    good_end: u64,
    /// Line where an incomplete last row starts, if there is one.
    torn_line: Option<u64>,
    /// Written before the columns of `row::LATER_COLUMNS` existed.
    legacy: bool,
}

fn parse(path: &Path, bytes: &[u8]) -> anyhow::Result<Parsed> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
    let headers = reader
        .byte_headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?
        .clone();
    let found: Vec<String> = headers
        .iter()
        .map(|h| String::from_utf8_lossy(h).into_owned())
        .collect();
    let current = header();
    let legacy = found.len() + super::row::LATER_COLUMNS.len() == current.len()
        && found[..] == current[..found.len()];
    if found != current && !legacy {
        bail!(
            "{} has other columns than this version of llama-sweep writes; \
             move it aside (or use another sweep name) to start a new sweep",
            path.display()
        );
    }
    let mut parsed = Parsed {
        rows: Vec::new(),
        good_end: reader.position().byte(),
        torn_line: None,
        legacy,
    };
    let mut record = csv::ByteRecord::new();
    // Where the last complete row before the current one ended.
    let mut previous_end = parsed.good_end;
    loop {
        let line = reader.position().line();
        let row = match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) if record.len() == headers.len() => restored(&record)
                .deserialize::<TrialRow>(Some(&headers))
                .ok(),
            Ok(true) | Err(_) => None,
        };
        match (row, parsed.torn_line) {
            (Some(row), None) => {
                parsed.rows.push(row);
                previous_end = parsed.good_end;
                parsed.good_end = reader.position().byte();
            }
            (Some(_), Some(bad)) => bail!(
                "{}: row at line {bad} is unreadable but later rows are fine: the file was edited or \
                 damaged; repair or remove that row",
                path.display()
            ),
            (None, _) => {
                parsed.torn_line.get_or_insert(line);
                if reader.is_done() {
                    break;
                }
            }
        }
    }
    // Every row is written with its line end: a last row without one was
    // cut, even if what is left of it happens to parse.
    if parsed.torn_line.is_none() && !bytes.ends_with(b"\n") && !parsed.rows.is_empty() {
        parsed.rows.pop();
        parsed.good_end = previous_end;
        parsed.torn_line = Some(
            bytes[..previous_end as usize]
                .iter()
                .filter(|&&b| b == b'\n')
                .count() as u64
                + 1,
        );
    }
    Ok(parsed)
}

/// Reads every complete row of a results.csv (a missing file has none). An
/// incomplete last row, left by an interrupted write, is ignored.
pub fn read(path: &Path) -> anyhow::Result<Vec<TrialRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    Ok(parse(path, &bytes)?.rows)
}

/// Like [`read`], but cuts an incomplete last row off the file, so that the
/// next row is appended after a complete one. Returns the rows and, when a
/// row was cut, a note saying so.
pub fn read_and_repair(path: &Path) -> anyhow::Result<(Vec<TrialRow>, Option<String>)> {
    if !path.exists() {
        return Ok((Vec::new(), None));
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.is_empty() {
        return Ok((Vec::new(), None));
    }
    let parsed = parse(path, &bytes)?;
    if parsed.legacy {
        // Rewritten with today's columns (the new ones empty), so rows can
        // be appended; an incomplete last row is dropped on the way.
        write_all(path, &parsed.rows)?;
        let note = format!(
            "{}: rewritten with the columns this version adds ({}), empty for the rows already there",
            path.display(),
            super::row::LATER_COLUMNS.join(", ")
        );
        return Ok((parsed.rows, Some(note)));
    }
    let Some(line) = parsed.torn_line else {
        return Ok((parsed.rows, None));
    };
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {} to repair it", path.display()))?;
    file.set_len(parsed.good_end)
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot cut the incomplete last row off {}", path.display()))?;
    let note = format!(
        "{}: removed an incomplete last row (line {line}, {} bytes) left by an interrupted write; \
         its trial will run again",
        path.display(),
        bytes.len() as u64 - parsed.good_end
    );
    Ok((parsed.rows, Some(note)))
}

/// Writes a whole results.csv (header and rows) atomically.
pub fn write_all(path: &Path, rows: &[TrialRow]) -> anyhow::Result<()> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    writer.write_record(header())?;
    for row in rows {
        writer.write_record(&record_of(row))?;
    }
    super::write_atomically(path, &writer.into_inner()?)
}

/// An open results.csv, appending.
pub struct CsvAppender {
    file: File,
}

impl CsvAppender {
    /// Opens (creating if needed) for appending, writing the header to a new
    /// or empty file.
    pub fn open(path: &Path) -> anyhow::Result<CsvAppender> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {} for writing", path.display()))?;
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        if empty {
            let mut writer = csv::Writer::from_writer(Vec::new());
            writer.write_record(header())?;
            file.write_all(&writer.into_inner()?)
                .and_then(|_| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            super::sync_parent(path)?;
        }
        Ok(CsvAppender { file })
    }

    /// Appends one row in a single write and syncs it to disk.
    pub fn append(&mut self, row: &TrialRow) -> anyhow::Result<()> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        writer.write_record(&record_of(row))?;
        let bytes = writer.into_inner()?;
        self.file
            .write_all(&bytes)
            .and_then(|_| self.file.sync_data())
            .context("cannot append to results.csv")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::{TrialStatus, mock};
    use crate::test_support::row;

    fn write_rows(path: &Path, n: usize) -> Vec<u8> {
        let mut csv = CsvAppender::open(path).unwrap();
        for i in 0..n {
            csv.append(&row(
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
        // Every cut inside the last row, including inside its quoted
        // multi-line field, leaves two complete rows.
        let second_end = {
            let two = dir.path().join("two.csv");
            write_rows(&two, 2).len()
        };
        for cut in (second_end + 1..complete.len()).step_by(37) {
            std::fs::write(&path, &complete[..cut]).unwrap();
            assert_eq!(read(&path).unwrap().len(), 2, "cut at {cut}");
            let (rows, note) = read_and_repair(&path).unwrap();
            assert_eq!(rows.len(), 2, "cut at {cut}");
            assert!(note.unwrap().contains("incomplete last row"));
            assert_eq!(
                std::fs::read(&path).unwrap(),
                complete[..second_end],
                "cut at {cut}"
            );
        }
        // A complete file is left alone.
        std::fs::write(&path, &complete).unwrap();
        let (rows, note) = read_and_repair(&path).unwrap();
        assert_eq!((rows.len(), note), (3, None));
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
    fn the_text_columns_are_the_string_fields() {
        let header = header();
        let text: Vec<&str> = text_columns().iter().map(|&i| header[i].as_str()).collect();
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
            "use_mmap",
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
        dangerous.n_gpu_layers = -1;
        dangerous.load_ms = Some(-1.5);
        let mut csv = CsvAppender::open(&path).unwrap();
        csv.append(&dangerous).unwrap();
        let plain = row("t2", &mock::measured(100.0, 400.0));
        csv.append(&plain).unwrap();
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
        // The way earlier versions wrote rows: serde straight to the file.
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(&old).unwrap();
        std::fs::write(&path, writer.into_inner().unwrap()).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains(",=x,"));
        assert_eq!(read(&path).unwrap(), vec![old]);
    }

    #[test]
    fn a_results_csv_without_the_later_columns_is_read_and_rewritten_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let mut old = row("t1", &mock::measured(100.0, 400.0));
        old.model_name = "=x".into();
        let full = write_all_bytes(&[old.clone()]);
        // Drop the last columns of the header and of the row, as an earlier
        // version wrote them.
        let cut = |line: &str| {
            let fields: Vec<&str> = line.split(',').collect();
            fields[..fields.len() - crate::store::row::LATER_COLUMNS.len()].join(",")
        };
        let text = String::from_utf8(full).unwrap();
        let legacy: Vec<String> = text.lines().map(cut).collect();
        std::fs::write(&path, legacy.join("\n") + "\n").unwrap();
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
        let mut csv = CsvAppender::open(&path).unwrap();
        let mut new = row("t2", &mock::measured(90.0, 400.0));
        new.kld = Some(0.01);
        csv.append(&new).unwrap();
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

    fn write_all_bytes(rows: &[TrialRow]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_all(&path, rows).unwrap();
        std::fs::read(path).unwrap()
    }

    #[test]
    fn damage_before_good_rows_is_an_error_not_a_silent_loss() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        let text = String::from_utf8(write_rows(&path, 3)).unwrap();
        let damaged = text.replacen(",failed,", ",exploded,", 1);
        std::fs::write(&path, damaged).unwrap();
        let err = read_and_repair(&path).unwrap_err().to_string();
        assert!(err.contains("later rows are fine"), "{err}");
    }
}
