//! `llama-sweep export`: config.yaml from a sweep folder's stored results.

use crate::cli::ExportArgs;
use crate::confirm::{self, Recommendation};
use crate::export::{self, yaml};
use crate::store::{self, manifest};
use std::path::Path;

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let rows = store::read_rows(&args.folder)?;
    let manifest = manifest::read(&args.folder.join(store::MANIFEST))?;
    // A recommendation whose trial is no longer in the results (an older
    // round) is ignored.
    let recommendation = confirm::read_recommendation(&args.folder)
        .filter(|r| rows.iter().any(|row| row.trial_id == r.trial_id));
    // Without --trial: the confirmation round's winner, else the best row.
    let wanted = args
        .trial
        .as_deref()
        .or(recommendation.as_ref().map(|r| r.trial_id.as_str()));
    let row = export::choose(&rows, &manifest.sweep.objective, wanted)?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.folder.join("config.yaml"));
    write_config(row, &manifest.sweep, recommendation.as_ref(), &output)?;
    eprintln!("wrote {} (trial {})", output.display(), row.trial_id);
    Ok(())
}

/// Renders and writes config.yaml for `row` atomically; the confirmation
/// verdict is included when `row` is the confirmed winner.
pub fn write_config(
    row: &store::row::TrialRow,
    sweep: &manifest::SweepInfo,
    recommendation: Option<&Recommendation>,
    output: &Path,
) -> anyhow::Result<()> {
    let confirmation = recommendation
        .filter(|r| r.trial_id == row.trial_id)
        .map(|r| r.verdict.as_str());
    let text = yaml::render(
        row,
        &yaml::YamlContext {
            objective: &sweep.objective,
            temperature: sweep.temperature,
            sweep_file: &sweep.file,
            confirmation,
        },
    );
    store::write_atomically(output, text.as_bytes())
}
