//! `llama-sweep export`: config.yaml from a sweep folder's stored results.

use crate::cli::ExportArgs;
use crate::export::{self, yaml};
use crate::store::{self, manifest};
use std::path::Path;

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let rows = store::read_rows(&args.folder)?;
    let manifest = manifest::read(&args.folder.join(store::MANIFEST))?;
    let row = export::choose(&rows, &manifest.sweep.objective, args.trial.as_deref())?;
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.folder.join("config.yaml"));
    write_config(row, &manifest.sweep, &output)?;
    eprintln!("wrote {} (trial {})", output.display(), row.trial_id);
    Ok(())
}

/// Renders and writes config.yaml for `row` atomically.
pub fn write_config(
    row: &store::row::TrialRow,
    sweep: &manifest::SweepInfo,
    output: &Path,
) -> anyhow::Result<()> {
    let text = yaml::render(
        row,
        &yaml::YamlContext {
            objective: &sweep.objective,
            temperature: sweep.temperature,
            sweep_file: &sweep.file,
        },
    );
    store::write_atomically(output, text.as_bytes())
}
