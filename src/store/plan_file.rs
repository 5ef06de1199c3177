//! plan.json: the trial ids of the current plan, in order, so `status` can
//! tell done from left while a sweep runs, without the sweep file; and the
//! reference trials (baseline, llama-server's defaults) with their roles, so a
//! report can state figures against them.

use crate::plan::references::{Reference, Role};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const PLAN_JSON: &str = "plan.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    pub sweep: String,
    pub trial_ids: Vec<String>,
    /// The search strategy, and the trial budget when there is one: a
    /// Bayesian search of 2,000 planned trials may run only 60.
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub max_trials: Option<usize>,
    /// The reference trials, measured besides `trial_ids` (one of them may
    /// also be a planned trial).
    #[serde(default)]
    pub references: Vec<PlannedReference>,
}

/// A reference trial as plan.json records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedReference {
    pub role: Role,
    pub trial_id: String,
    /// Where it departs from what its role promises (e.g. a raised n_ctx).
    pub note: Option<String>,
}

impl From<&Reference> for PlannedReference {
    fn from(r: &Reference) -> Self {
        PlannedReference {
            role: r.role,
            trial_id: r.spec.trial_id.clone(),
            note: r.note.clone(),
        }
    }
}

pub fn write(folder: &Path, plan: &PlanFile) -> anyhow::Result<()> {
    super::write_atomically(
        &folder.join(PLAN_JSON),
        serde_json::to_string(plan)?.as_bytes(),
    )
}

/// The plan, if the folder has one.
pub fn read(folder: &Path) -> anyhow::Result<Option<PlanFile>> {
    let path = folder.join(PLAN_JSON);
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)?;
    Ok(Some(serde_json::from_str(&text)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip_and_old_files_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let plan = PlanFile {
            sweep: "s".into(),
            trial_ids: vec!["a".into(), "b".into()],
            strategy: Some("grid".into()),
            max_trials: None,
            references: vec![
                PlannedReference {
                    role: Role::Baseline,
                    trial_id: "b".into(),
                    note: None,
                },
                PlannedReference {
                    role: Role::Defaults,
                    trial_id: "c".into(),
                    note: Some("n_ctx set to 640".into()),
                },
            ],
        };
        write(dir.path(), &plan).unwrap();
        let text = std::fs::read_to_string(dir.path().join(PLAN_JSON)).unwrap();
        assert!(
            text.contains(r#"{"role":"baseline","trial_id":"b","note":null}"#),
            "{text}"
        );
        assert_eq!(read(dir.path()).unwrap(), Some(plan));

        let old = r#"{"sweep":"s","trial_ids":["a"],"strategy":"grid","max_trials":null}"#;
        std::fs::write(dir.path().join(PLAN_JSON), old).unwrap();
        assert!(read(dir.path()).unwrap().unwrap().references.is_empty());
    }
}
