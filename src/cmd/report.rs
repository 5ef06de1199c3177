//! `llama-sweep report`: report.html and plots/ from a sweep folder.

use crate::cli::ReportArgs;
use std::time::Instant;

pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let written = crate::report::write(&args.folder, args.output.as_deref())?;
    eprintln!(
        "wrote {} ({:.0} KiB, {} plots, also as PNG and SVG in {}) in {:.1} s",
        written.html.display(),
        written.html_bytes as f64 / 1024.0,
        written.charts,
        written.plots.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
