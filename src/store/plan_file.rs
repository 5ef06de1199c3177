//! plan.json: the trial ids of the current plan, in order, so `status` can
//! tell done from left while a sweep runs, without the sweep file.

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
