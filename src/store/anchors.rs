//! anchors.csv: every re-measurement of the drift anchor, so the report can
//! show how the machine's speed moved during the night.

use super::csv_log::{CsvLog, SerdeCodec};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const ANCHORS_CSV: &str = "anchors.csv";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnchorCheck {
    pub at: String,
    /// Trials recorded in this run before the check.
    pub after_trials: usize,
    pub anchor_trial_id: String,
    /// The objective's metric, its first value and this one.
    pub metric: String,
    pub first_value: f64,
    pub value: Option<f64>,
    /// (value / first − 1) × 100.
    pub change_pct: Option<f64>,
    /// `steady`, `drifted` or `failed`.
    pub verdict: String,
}

fn log(folder: &Path) -> CsvLog<SerdeCodec<AnchorCheck>> {
    CsvLog::new(folder.join(ANCHORS_CSV), SerdeCodec::new())
}

/// Appends one check (writing the header to a new file) and syncs it.
pub fn append(folder: &Path, check: &AnchorCheck) -> anyhow::Result<()> {
    log(folder).append(check)
}

/// Every check recorded (an incomplete last line is skipped).
pub fn read(folder: &Path) -> anyhow::Result<Vec<AnchorCheck>> {
    log(folder).read()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let check = AnchorCheck {
            at: "t".into(),
            after_trials: 10,
            anchor_trial_id: "abc".into(),
            metric: "tg_tps".into(),
            first_value: 100.0,
            value: Some(85.0),
            change_pct: Some(-15.0),
            verdict: "drifted".into(),
        };
        append(dir.path(), &check).unwrap();
        append(dir.path(), &check).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![check.clone(), check]);
    }
}
