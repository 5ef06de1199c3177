//! Turns a stored trial into a configuration an application loads: today the
//! `config.yaml` of DESIGN.md (llama-cpp-python `Llama()` keyword arguments
//! under `llm:`).

pub mod yaml;

use crate::objective::Objective;
use crate::store::row::TrialRow;
use anyhow::{anyhow, bail};

/// The row to export: the one named by `trial_id`, or the best feasible one.
pub fn choose<'a>(
    rows: &'a [TrialRow],
    objective: &Objective,
    trial_id: Option<&str>,
) -> anyhow::Result<&'a TrialRow> {
    if let Some(id) = trial_id {
        let row = rows
            .iter()
            .rev()
            .find(|r| r.trial_id == id || (id.len() >= 4 && r.trial_id.starts_with(id)))
            .ok_or_else(|| anyhow!("no trial {id} in the results"))?;
        if !row.is_ok() {
            bail!(
                "trial {} did not complete ({}): {}",
                row.trial_id,
                row.status,
                row.error.as_deref().unwrap_or("no reason recorded")
            );
        }
        return Ok(row);
    }
    let ranked = objective.rank(rows);
    match ranked.first() {
        Some(&best) => Ok(&rows[best]),
        None => {
            let ok = rows.iter().filter(|r| r.is_ok()).count();
            if ok == 0 {
                bail!(
                    "no trial completed, so there is nothing to recommend (see the error column of results.csv)"
                )
            }
            bail!(
                "none of the {ok} completed trials meets the constraints ({objective}); \
                 relax them in sweep.toml or pick a trial with --trial ID"
            )
        }
    }
}
