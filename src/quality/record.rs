//! `quality.csv`: one row per quality measurement, appended and flushed as
//! each ends (failures too), read back on resume and by the report.

use crate::knobs::KvType;
use crate::store::csv_log::{CsvLog, SerdeCodec};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const QUALITY_CSV: &str = "quality.csv";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityRow {
    pub quality_id: String,
    pub model_name: String,
    pub model_variant: String,
    pub model_identity: String,
    pub model_size_bytes: Option<u64>,
    pub type_k: KvType,
    pub type_v: KvType,
    pub is_reference: bool,
    pub reference_variant: String,
    pub reference_type_k: KvType,
    pub reference_type_v: KvType,
    /// `ok`, or how it failed (`failed`, `oom`, `timeout`, `crashed`).
    pub status: String,
    pub error: Option<String>,
    pub text: String,
    pub text_sha256: String,
    pub n_ctx: u32,
    pub chunks: Option<u32>,
    pub tokens_scored: Option<u64>,
    pub ppl: Option<f64>,
    pub ppl_se: Option<f64>,
    /// Perplexity above the reference's on the same tokens, percent.
    pub ppl_increase_pct: Option<f64>,
    pub kld_mean: Option<f64>,
    pub kld_se: Option<f64>,
    pub kld_p99: Option<f64>,
    pub kld_max: Option<f64>,
    pub top1_pct: Option<f64>,
    pub seconds: f64,
    pub finished_at: String,
    pub log_file: String,
}

impl QualityRow {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }
}

fn log(folder: &Path) -> CsvLog<SerdeCodec<QualityRow>> {
    CsvLog::new(folder.join(QUALITY_CSV), SerdeCodec::new())
}

/// The rows of `folder/quality.csv`; none when it does not exist. A last
/// line cut short by a crash is ignored.
pub fn read(folder: &Path) -> anyhow::Result<Vec<QualityRow>> {
    log(folder).read()
}

/// Appends one row (with the header when the file is new) and syncs it to
/// disk, after cutting off a last line a crash left incomplete.
pub fn append(folder: &Path, row: &QualityRow) -> anyhow::Result<()> {
    log(folder).append(row)
}

#[cfg(test)]
pub(crate) fn example(quality_id: &str, variant: &str, kld: Option<f64>) -> QualityRow {
    QualityRow {
        quality_id: quality_id.into(),
        model_name: "m".into(),
        model_variant: variant.into(),
        model_identity: format!("id-{variant}"),
        model_size_bytes: Some(1000),
        type_k: KvType::F16,
        type_v: KvType::F16,
        is_reference: kld == Some(0.0),
        reference_variant: "Q8_0".into(),
        reference_type_k: KvType::F16,
        reference_type_v: KvType::F16,
        status: "ok".into(),
        error: None,
        text: "t".into(),
        text_sha256: "sha".into(),
        n_ctx: 512,
        chunks: Some(8),
        tokens_scored: Some(2040),
        ppl: Some(20.0),
        ppl_se: Some(0.5),
        ppl_increase_pct: Some(1.0),
        kld_mean: kld,
        kld_se: Some(0.001),
        kld_p99: Some(0.1),
        kld_max: Some(0.5),
        top1_pct: Some(95.0),
        seconds: 10.0,
        finished_at: "t".into(),
        log_file: "logs/q.log".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        let a = example("a", "Q8_0", Some(0.0));
        let mut b = example("b", "Q4_K_M", Some(0.02));
        b.error = Some("note, with \"quotes\"".into());
        append(dir.path(), &a).unwrap();
        append(dir.path(), &b).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![a.clone(), b]);
        let path = dir.path().join(QUALITY_CSV);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("c,m,Q6");
        std::fs::write(&path, text).unwrap();
        assert_eq!(read(dir.path()).unwrap().len(), 2);
        // The next row replaces the torn line.
        append(dir.path(), &example("c", "Q6_K", Some(0.01))).unwrap();
        let ids: Vec<String> = read(dir.path())
            .unwrap()
            .into_iter()
            .map(|r| r.quality_id)
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }
}
