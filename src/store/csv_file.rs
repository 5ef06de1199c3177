//! results.csv: one row per trial, appended and synced to disk after each, so
//! a killed sweep loses at most the trial that was running.

use super::row::TrialRow;
use anyhow::{Context, bail};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// The header the current version writes.
pub fn header() -> Vec<String> {
    static HEADER: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    HEADER.get_or_init(header_of_example_row).clone()
}

fn header_of_example_row() -> Vec<String> {
    // Serializing a row with serde gives the field names in order.
    let mut writer = csv::WriterBuilder::new()
        .has_headers(true)
        .from_writer(Vec::new());
    writer.serialize(example_row()).expect("rows serialize");
    let bytes = writer.into_inner().expect("in-memory writer");
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    reader
        .headers()
        .expect("header parses")
        .iter()
        .map(str::to_string)
        .collect()
}

fn example_row() -> TrialRow {
    const EXAMPLE: &str = r#"{
        "trial_id": "", "sweep": "", "seq": 0, "status": "ok", "error": null, "exit": null,
        "model_name": "", "model_variant": "", "model_path": "", "model_identity": "",
        "model_description": null, "model_size_bytes": null, "model_params": null,
        "n_gpu_layers": 0, "n_ctx": 0, "n_batch": 0, "n_ubatch": 0, "n_threads": 0,
        "n_threads_batch": 0, "flash_attn": "auto", "type_k": "f16", "type_v": "f16",
        "use_mmap": true, "offload_kqv": true, "defaulted": "",
        "prompt_tokens": 0, "gen_tokens": 0, "repetitions": 0, "warmup": 0,
        "request_prompt_tokens": 0, "request_max_tokens": 0,
        "pp_tps_mean": null, "pp_tps_sd": null, "tg_tps_mean": null, "tg_tps_sd": null,
        "ttft_ms_mean": null, "ttft_ms_sd": null, "e2e_ms_mean": null, "e2e_ms_sd": null,
        "n_samples": null, "load_ms": null, "peak_rss_mib": null, "device_memory_mib": null,
        "layers_offloaded": null, "layers_total": null, "n_ctx_actual": null,
        "flash_attn_resolved": null, "feasible": false, "violations": null,
        "pp_tps_samples": "", "tg_tps_samples": "", "ttft_ms_samples": "", "e2e_ms_samples": "",
        "wall_s": 0.0, "started_at": "", "finished_at": "", "log_file": "", "log_tail": ""
    }"#;
    serde_json::from_str(EXAMPLE).expect("the example row matches TrialRow")
}

/// Reads every row of a results.csv. A missing file is no rows; a file
/// written with another set of columns is an error (it cannot be resumed).
pub fn read(path: &Path) -> anyhow::Result<Vec<TrialRow>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("cannot read {}", path.display()))?;
    let found: Vec<String> = reader
        .headers()
        .with_context(|| format!("cannot read the header of {}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    if found.is_empty() {
        return Ok(Vec::new());
    }
    if found != header() {
        bail!(
            "{} has other columns than this version of llama-sweep writes; \
             move it aside (or use another sweep name) to start a new sweep",
            path.display()
        );
    }
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.with_context(|| format!("{}: row {} is unreadable", path.display(), i + 2))
        })
        .collect()
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
                .and_then(|_| file.sync_data())
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(CsvAppender { file })
    }

    /// Appends one row in a single write and syncs it to disk.
    pub fn append(&mut self, row: &TrialRow) -> anyhow::Result<()> {
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        writer.serialize(row)?;
        let bytes = writer.into_inner()?;
        self.file
            .write_all(&bytes)
            .and_then(|_| self.file.sync_data())
            .context("cannot append to results.csv")
    }
}
