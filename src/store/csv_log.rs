//! An append-only CSV file of records, with one set of rules for every
//! such file of a sweep folder (results.csv, anchors.csv, confirm.csv,
//! quality.csv):
//!
//! - a record is appended in one write and synced to disk at once, the
//!   header first when the file is new or empty;
//! - a record cut short by a crash or a full disk can only be the last one:
//!   reading ignores it, and the next append cuts it off first;
//! - an unreadable record followed by readable ones is damage, not a torn
//!   write, and an error that names the line;
//! - a whole file is replaced atomically (temporary file and rename).
//!
//! What a record is, and how it maps to cells, is a [`Codec`].

use anyhow::{Context, bail};
use csv::StringRecord;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fs::OpenOptions;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// How a file's header relates to what this version writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    Current,
    /// Written by an earlier version without these columns: readable, and
    /// rewritten with them before anything is appended.
    Older {
        missing: Vec<String>,
    },
}

/// The cells of one kind of record.
pub trait Codec {
    type Row;
    /// The header this version writes, for a file whose first record is
    /// `row`.
    fn header(&self, row: &Self::Row) -> StringRecord;
    fn encode(&self, row: &Self::Row) -> StringRecord;
    /// Reads one record of a file with `header`.
    fn decode(&self, header: &StringRecord, record: &StringRecord) -> Result<Self::Row, String>;
    /// Whether a file with `header` can be read; the error says why not.
    fn layout(&self, header: &StringRecord) -> Result<Layout, String>;
}

/// Records that serde reads and writes by their field names.
pub struct SerdeCodec<R>(PhantomData<R>);

impl<R> SerdeCodec<R> {
    pub const fn new() -> Self {
        SerdeCodec(PhantomData)
    }
}

impl<R> Default for SerdeCodec<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Serialize + DeserializeOwned> Codec for SerdeCodec<R> {
    type Row = R;

    fn header(&self, row: &R) -> StringRecord {
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.serialize(row).expect("records serialize");
        let bytes = writer.into_inner().expect("in-memory writer");
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        reader.headers().expect("a header just written").clone()
    }

    fn encode(&self, row: &R) -> StringRecord {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        writer.serialize(row).expect("records serialize");
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

    fn decode(&self, header: &StringRecord, record: &StringRecord) -> Result<R, String> {
        record.deserialize(Some(header)).map_err(|e| e.to_string())
    }

    fn layout(&self, _: &StringRecord) -> Result<Layout, String> {
        Ok(Layout::Current)
    }
}

/// The records of a file, and where its last complete record ends.
pub struct Parsed<R> {
    pub rows: Vec<R>,
    /// Byte offset just after the last complete record (or the header).
    good_end: u64,
    /// Line where an incomplete last record starts, if there is one.
    torn_line: Option<u64>,
    pub layout: Layout,
}

/// An append-only CSV file.
pub struct CsvLog<C: Codec> {
    path: PathBuf,
    codec: C,
    /// Whether the file is known to end with a complete record (repaired or
    /// checked since this was opened).
    whole: std::cell::Cell<bool>,
}

impl<C: Codec> CsvLog<C> {
    pub fn new(path: impl Into<PathBuf>, codec: C) -> Self {
        CsvLog {
            path: path.into(),
            codec,
            whole: std::cell::Cell::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn parse(&self, bytes: &[u8]) -> anyhow::Result<Parsed<C::Row>> {
        let path = self.path.display();
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
        let header = reader
            .headers()
            .with_context(|| format!("cannot read the header of {path}"))?
            .clone();
        let layout = self
            .codec
            .layout(&header)
            .map_err(|why| anyhow::anyhow!("{path}: {why}"))?;
        let mut parsed = Parsed {
            rows: Vec::new(),
            good_end: reader.position().byte(),
            torn_line: None,
            layout,
        };
        let mut record = StringRecord::new();
        // Where the last complete record before the current one ended.
        let mut previous_end = parsed.good_end;
        loop {
            let line = reader.position().line();
            let row = match reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) if record.len() == header.len() => {
                    self.codec.decode(&header, &record).ok()
                }
                Ok(true) | Err(_) => None,
            };
            match (row, parsed.torn_line) {
                (Some(row), None) => {
                    parsed.rows.push(row);
                    previous_end = parsed.good_end;
                    parsed.good_end = reader.position().byte();
                }
                (Some(_), Some(bad)) => bail!(
                    "{path}: the record at line {bad} is unreadable but later ones are fine: the \
                     file was edited or damaged; repair or remove that record"
                ),
                (None, _) => {
                    parsed.torn_line.get_or_insert(line);
                    if reader.is_done() {
                        break;
                    }
                }
            }
        }
        // Every record is written with its line end: a last one without it
        // was cut, even if what is left of it happens to parse.
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

    fn bytes(&self) -> anyhow::Result<Option<Vec<u8>>> {
        if !self.path.exists() {
            return Ok(None);
        }
        let bytes = std::fs::read(&self.path)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        Ok((!bytes.is_empty()).then_some(bytes))
    }

    /// Every complete record (a missing file has none). An incomplete last
    /// record, left by an interrupted write, is ignored.
    pub fn read(&self) -> anyhow::Result<Vec<C::Row>> {
        match self.bytes()? {
            None => Ok(Vec::new()),
            Some(bytes) => Ok(self.parse(&bytes)?.rows),
        }
    }

    /// The complete records after byte `from` (the end of a record an
    /// earlier call returned; 0 for the whole file), and where the last of
    /// them ends: how a reader follows a file another process appends to.
    pub fn read_from(&self, from: u64) -> anyhow::Result<(Vec<C::Row>, u64)> {
        let Some(bytes) = self.bytes()? else {
            return Ok((Vec::new(), 0));
        };
        if from == 0 || from > bytes.len() as u64 {
            let parsed = self.parse(&bytes)?;
            return Ok((parsed.rows, parsed.good_end));
        }
        let header_end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| i + 1);
        let mut tail = bytes[..header_end].to_vec();
        tail.extend_from_slice(&bytes[from as usize..]);
        let parsed = self.parse(&tail)?;
        Ok((parsed.rows, from + parsed.good_end - header_end as u64))
    }

    /// Like [`read`](Self::read), but leaves the file ready for appending:
    /// an incomplete last record is cut off, a file of an older layout is
    /// rewritten with today's columns. Returns the records and, when the
    /// file was changed, a note saying how.
    pub fn read_and_repair(&self) -> anyhow::Result<(Vec<C::Row>, Option<String>)> {
        self.whole.set(true);
        let Some(bytes) = self.bytes()? else {
            return Ok((Vec::new(), None));
        };
        let parsed = self.parse(&bytes)?;
        if let Layout::Older { missing } = &parsed.layout {
            self.write_all(&parsed.rows)?;
            let note = format!(
                "{}: rewritten with the columns this version adds ({}), empty for the rows already there",
                self.path.display(),
                missing.join(", ")
            );
            return Ok((parsed.rows, Some(note)));
        }
        let Some(line) = parsed.torn_line else {
            return Ok((parsed.rows, None));
        };
        let file = OpenOptions::new()
            .write(true)
            .open(&self.path)
            .with_context(|| format!("cannot open {} to repair it", self.path.display()))?;
        file.set_len(parsed.good_end)
            .and_then(|_| file.sync_all())
            .with_context(|| {
                format!(
                    "cannot cut the incomplete last record off {}",
                    self.path.display()
                )
            })?;
        let note = format!(
            "{}: removed an incomplete last record (line {line}, {} bytes) left by an interrupted write; \
             it will be measured again",
            self.path.display(),
            bytes.len() as u64 - parsed.good_end
        );
        Ok((parsed.rows, Some(note)))
    }

    /// Appends one record in a single write and syncs it, writing the header
    /// first to a new or empty file. The first append of this log repairs
    /// the file first (see [`read_and_repair`](Self::read_and_repair)), so
    /// the record never joins one an interrupted write left incomplete.
    pub fn append(&self, row: &C::Row) -> anyhow::Result<()> {
        if !self.whole.get() {
            self.read_and_repair()?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("cannot open {} for writing", self.path.display()))?;
        let empty = file.metadata().map(|m| m.len() == 0).unwrap_or(true);
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        if empty {
            writer.write_record(&self.codec.header(row))?;
        }
        writer.write_record(&self.codec.encode(row))?;
        let bytes = writer.into_inner()?;
        file.write_all(&bytes)
            .and_then(|_| file.sync_data())
            .with_context(|| format!("cannot append to {}", self.path.display()))?;
        if empty {
            super::sync_parent(&self.path)?;
        }
        Ok(())
    }

    /// Replaces the whole file (header and records) atomically; with no
    /// records, leaves an empty file.
    pub fn write_all(&self, rows: &[C::Row]) -> anyhow::Result<()> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        if let Some(first) = rows.first() {
            writer.write_record(&self.codec.header(first))?;
        }
        for row in rows {
            writer.write_record(&self.codec.encode(row))?;
        }
        super::write_atomically(&self.path, &writer.into_inner()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Note {
        id: u32,
        text: String,
        value: Option<f64>,
    }

    fn log(dir: &Path) -> CsvLog<SerdeCodec<Note>> {
        CsvLog::new(dir.join("notes.csv"), SerdeCodec::new())
    }

    fn note(id: u32) -> Note {
        Note {
            id,
            text: format!("line one\nline \"two\" of {id}"),
            value: (id % 2 == 0).then_some(id as f64 / 3.0),
        }
    }

    #[test]
    fn records_round_trip_with_one_header() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(dir.path());
        assert!(log.read().unwrap().is_empty());
        for id in 0..3 {
            log.append(&note(id)).unwrap();
        }
        assert_eq!(log.read().unwrap(), vec![note(0), note(1), note(2)]);
        let text = std::fs::read_to_string(log.path()).unwrap();
        assert_eq!(text.matches("id,text,value").count(), 1);
    }

    #[test]
    fn a_torn_last_record_is_ignored_then_cut_before_the_next_append() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(dir.path());
        log.append(&note(0)).unwrap();
        log.append(&note(1)).unwrap();
        let two = std::fs::read(log.path()).unwrap();
        log.append(&note(2)).unwrap();
        let three = std::fs::read(log.path()).unwrap();
        // Every cut inside the last record, its quoted lines included.
        for cut in two.len() + 1..three.len() {
            std::fs::write(log.path(), &three[..cut]).unwrap();
            assert_eq!(log.read().unwrap().len(), 2, "cut at {cut}");
            let (rows, note_text) = log.read_and_repair().unwrap();
            assert_eq!(rows.len(), 2, "cut at {cut}");
            assert!(note_text.unwrap().contains("incomplete last record"));
            assert_eq!(std::fs::read(log.path()).unwrap(), two, "cut at {cut}");
        }
        log.append(&note(2)).unwrap();
        assert_eq!(std::fs::read(log.path()).unwrap(), three);
        let (_, none) = log.read_and_repair().unwrap();
        assert_eq!(none, None, "a complete file is left alone");
    }

    #[test]
    fn an_append_after_a_torn_write_starts_on_its_own_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(dir.path());
        log.append(&note(0)).unwrap();
        let one = std::fs::read(log.path()).unwrap();
        log.append(&note(1)).unwrap();
        let two = std::fs::read(log.path()).unwrap();
        std::fs::write(log.path(), &two[..two.len() - 3]).unwrap();
        // The next run's log: its first append repairs the file.
        let log = super::tests::log(dir.path());
        log.append(&note(2)).unwrap();
        assert_eq!(log.read().unwrap(), vec![note(0), note(2)]);
        assert!(std::fs::read(log.path()).unwrap().starts_with(&one));
    }

    #[test]
    fn damage_before_good_records_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(dir.path());
        for id in 0..3 {
            log.append(&note(id)).unwrap();
        }
        let text = std::fs::read_to_string(log.path()).unwrap();
        std::fs::write(log.path(), text.replacen("\n1,", "\nx,", 1)).unwrap();
        let e = log.read().unwrap_err().to_string();
        assert!(e.contains("later ones are fine"), "{e}");
    }

    #[test]
    fn write_all_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(dir.path());
        log.append(&note(0)).unwrap();
        log.write_all(&[note(5), note(6)]).unwrap();
        assert_eq!(log.read().unwrap(), vec![note(5), note(6)]);
    }
}
