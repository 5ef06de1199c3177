//! `llama-sweep export`: the recommended configuration of a sweep folder's
//! stored results, as config.yaml, llm.json, a llama-server command line or
//! a llama-server env file.

use crate::cli::ExportArgs;
use crate::confirm::{self, Recommendation};
use crate::export::{self, ExportContext, Format};
use crate::store::{self, manifest};
use std::path::Path;

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let all = store::read_rows(&args.folder)?;
    let faked = all.iter().filter(|r| r.is_test_fault()).count();
    let rows = store::measurements(all);
    if rows.is_empty() && faked > 0 {
        anyhow::bail!(
            "the {faked} row(s) of {} were made under --test-fault: their figures are not \
             measurements, and there is nothing to export; run the sweep without it",
            args.folder.display()
        );
    }
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
    let backend = backend_line(&manifest, row);
    let app = app_line(&args.folder, row);
    let text = args.format.render(
        row,
        &context(
            &manifest.sweep,
            recommendation.as_ref(),
            row,
            backend.as_deref(),
            Some(&app),
        ),
    );
    match args.output.as_deref() {
        Some(path) if path == Path::new("-") => print!("{text}"),
        output => {
            let default = args.folder.join(args.format.default_file_name());
            let output = output.unwrap_or(&default);
            store::write_atomically(output, text.as_bytes())?;
            eprintln!("wrote {} (trial {})", output.display(), row.trial_id);
        }
    }
    Ok(())
}

/// The header's facts for `row`; the confirmation verdict is included when
/// `row` is the confirmed winner.
fn context<'a>(
    sweep: &'a manifest::SweepInfo,
    recommendation: Option<&'a Recommendation>,
    row: &store::row::TrialRow,
    backend: Option<&'a str>,
    app: Option<&'a str>,
) -> ExportContext<'a> {
    ExportContext {
        objective: &sweep.objective,
        temperature: sweep.temperature,
        sweep_file: &sweep.file,
        confirmation: recommendation
            .filter(|r| r.trial_id == row.trial_id)
            .map(|r| r.verdict.as_str()),
        backend,
        app,
    }
}

/// The line on how `row` fared in the app's runtimes.
pub fn app_line(folder: &Path, row: &store::row::TrialRow) -> String {
    crate::verify::render::app_line(folder, row)
}

/// What the backend self-test said about `row`'s variant.
fn backend_line(manifest: &manifest::Manifest, row: &store::row::TrialRow) -> Option<String> {
    manifest
        .backend_check
        .as_ref()?
        .line_for(&row.model_identity)
}

/// Renders and writes `folder`/config.yaml for `row` atomically (what `run`
/// writes at the end of a sweep, and `verify` again).
pub fn write_config(
    row: &store::row::TrialRow,
    manifest: &manifest::Manifest,
    recommendation: Option<&Recommendation>,
    folder: &Path,
) -> anyhow::Result<()> {
    let backend = backend_line(manifest, row);
    let app = app_line(folder, row);
    let text = Format::Yaml.render(
        row,
        &context(
            &manifest.sweep,
            recommendation,
            row,
            backend.as_deref(),
            Some(&app),
        ),
    );
    store::write_atomically(
        &folder.join(Format::Yaml.default_file_name()),
        text.as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of a recorded sweep folder.
    fn sweep_folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in [store::RESULTS_CSV, store::MANIFEST] {
            std::fs::copy(
                Path::new("tests/fixtures/real-demo-grid").join(file),
                dir.path().join(file),
            )
            .unwrap();
        }
        dir
    }

    fn export(folder: &Path, format: Format, output: Option<&Path>) {
        run(&ExportArgs {
            folder: folder.to_path_buf(),
            trial: None,
            format,
            output: output.map(Path::to_path_buf),
        })
        .unwrap();
    }

    #[test]
    fn each_format_goes_to_its_own_file_in_the_sweep_folder() {
        let dir = sweep_folder();
        let formats = [
            (Format::Yaml, "config.yaml", "llm:\n"),
            (Format::Json, "llm.json", "\"model_path\""),
            (Format::ServerArgs, "server-args.txt", "\nllama-server -m "),
            (Format::Env, "llama-server.env", "\nLLAMA_ARG_MODEL="),
        ];
        for (format, file, marker) in formats {
            export(dir.path(), format, None);
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(text.contains(marker), "{file}: {text}");
            // The same trial, the best of the fixture, in every format.
            if format != Format::Json {
                assert!(text.contains("trial 8c90ea598c46"), "{file}: {text}");
            }
        }
        let other = dir.path().join("elsewhere.json");
        export(dir.path(), Format::Json, Some(&other));
        assert_eq!(
            std::fs::read_to_string(&other).unwrap(),
            std::fs::read_to_string(dir.path().join("llm.json")).unwrap()
        );
    }
}
