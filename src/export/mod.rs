//! Turns a stored trial into a configuration an application loads: the
//! `config.yaml` of DESIGN.md and llm.json (llama-cpp-python `Llama()`
//! keyword arguments, [`kwargs`]), a llama-server command line and a
//! `LLAMA_ARG_*` env file (llama.cpp's own arguments, [`llama_args`]). One
//! module per format; [`Format`] picks one.

pub mod env;
pub mod json;
pub mod kwargs;
pub mod llama_args;
pub mod provenance;
pub mod server_args;
pub mod shell;
pub mod yaml;

use crate::objective::Objective;
use crate::runner::TrialStatus;
use crate::store::row::TrialRow;
use anyhow::{anyhow, bail};

/// What an export needs besides the row: the header's provenance and the
/// sampling settings.
pub struct ExportContext<'a> {
    pub objective: &'a Objective,
    pub temperature: f64,
    /// The sweep.toml the trial came from, for the reproduce line.
    pub sweep_file: &'a str,
    /// The confirmation round's verdict, when this trial won it.
    pub confirmation: Option<&'a str>,
    /// What the backend self-test found for the trial's variant, when it
    /// forced a setting on it.
    pub backend: Option<&'a str>,
    /// How the trial fared in the app's own runtimes (`verify`), or how to
    /// find out.
    pub app: Option<&'a str>,
}

/// The file formats `llama-sweep export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// config.yaml: llama-cpp-python Llama() keyword arguments under `llm:`, plus temperature and max_tokens
    Yaml,
    /// llm.json: the same Llama() keyword arguments as one JSON object, for Llama(**json.load(f))
    Json,
    /// server-args.txt: one llama-server command line
    ServerArgs,
    /// llama-server.env: LLAMA_ARG_* variables that llama-server reads
    Env,
}

impl Format {
    /// The file written in the sweep folder when no output is given.
    pub fn default_file_name(self) -> &'static str {
        match self {
            Format::Yaml => "config.yaml",
            Format::Json => "llm.json",
            Format::ServerArgs => "server-args.txt",
            Format::Env => "llama-server.env",
        }
    }

    pub fn render(self, row: &TrialRow, ctx: &ExportContext) -> String {
        match self {
            Format::Yaml => yaml::render(row, ctx),
            Format::Json => json::render(row),
            Format::ServerArgs => server_args::render(row, ctx),
            Format::Env => env::render(row, ctx),
        }
    }
}

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
            let busy = rows
                .iter()
                .filter(|r| r.status == TrialStatus::Busy)
                .count();
            if ok == 0 && busy > 0 {
                bail!(
                    "no trial was measured on a quiet machine, so there is nothing to recommend \
                     ({busy} measured while other processes kept it busy run again when the \
                     sweep resumes)"
                )
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::row;

    #[test]
    fn nothing_is_recommended_from_trials_measured_on_a_busy_machine_and_it_says_why() {
        let mut busy = row("t1", &mock::measured(100.0, 400.0));
        busy.status = TrialStatus::Busy;
        let crashed = row("t2", &mock::failed(TrialStatus::Crashed, "signal 11"));
        let rows = [busy, crashed];
        let why = choose(&rows, &Objective::default(), None)
            .unwrap_err()
            .to_string();
        assert!(
            why.contains("no trial was measured on a quiet machine"),
            "{why}"
        );
        let why = choose(&rows[1..], &Objective::default(), None)
            .unwrap_err()
            .to_string();
        assert!(why.starts_with("no trial completed"), "{why}");
    }
}
