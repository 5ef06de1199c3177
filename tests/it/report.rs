//! `llama-sweep report` on a recorded sweep (the real demo grid in
//! tests/fixtures): what the page says, that every plot exists as PNG and
//! SVG, and that text from outside cannot inject markup.

use super::support::{run, stderr};
use std::path::{Path, PathBuf};

const FIXTURE: &str = "tests/fixtures/real-demo-grid";
/// The grid's fastest trial (tg_tps 155.8 t/s): Q4_K_M, 2 threads.
const BEST: &str = "8c90ea598c46";

/// A copy of the fixture folder the test may change.
fn fixture_copy(dir: &Path) -> PathBuf {
    let folder = dir.join("grid");
    std::fs::create_dir_all(&folder).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE);
    for file in ["results.csv", "manifest.json"] {
        std::fs::copy(src.join(file), folder.join(file)).unwrap();
    }
    folder
}

fn report(folder: &Path) -> String {
    let out = run(&["report", folder.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    std::fs::read_to_string(folder.join("report.html")).unwrap()
}

#[test]
fn the_report_answers_what_to_run_and_which_knobs_matter() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_copy(dir.path());
    let html = report(&folder);

    // What to run, first.
    let run_this = html.find("Run this").expect("a winner card");
    assert!(html[run_this..].contains(BEST), "winner trial missing");
    assert!(html.contains("Q4_K_M"));
    assert!(
        html.contains("llama-sweep export"),
        "no command to export it"
    );
    // No [baseline] in that sweep: the page says how to get the comparison.
    assert!(html.contains("Add a <code>[baseline]</code>"));
    // Machine and warnings (the grid has noisy trials).
    assert!(html.contains("AMD EPYC") && html.contains("flagged noisy"));
    // Effects: threads matter most in this grid; coupled axes are one.
    let effects = &html[html.find("id=\"effects\"").unwrap()..];
    let first_row = &effects[effects.find("<tr><td><b>").unwrap()..];
    assert!(
        first_row.starts_with("<tr><td><b>n_threads &amp; n_threads_batch</b>"),
        "{}",
        &first_row[..200]
    );
    assert!(effects.contains("95% CI"));
    assert!(html.contains("A larger n_batch is faster"));
    // Plots: one figure per chart, each inline and as files.
    let declared: usize = {
        let at = html.find("data-plots=\"").unwrap() + 12;
        html[at..at + html[at..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    let figures = html.matches("<figure class=\"plot\"").count();
    assert_eq!(figures, declared);
    assert!(figures >= 8, "{figures} plots");
    for name in ["history", "pareto", "pp-vs-tg", "heatmap", "effect-model"] {
        assert!(html.contains(&format!("data-plot=\"{name}\"")), "{name}");
        for ext in ["png", "svg"] {
            let file = folder.join("plots").join(format!("{name}.{ext}"));
            let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} has {len} bytes", file.display());
        }
    }
    // Every trial in the table (and a header row), none hidden.
    let table = &html[html.find("id=\"trials\"").unwrap()..];
    assert_eq!(table.matches("<tr").count(), 128 + 1);
    // Self-contained: nothing fetched, nothing run.
    for banned in [
        "<script", "<link", "<img", "@import", "src=", "href=", "url(",
    ] {
        assert!(!html.contains(banned), "the page contains {banned}");
    }
}

#[test]
fn outside_text_is_escaped_and_the_baseline_is_compared() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_copy(dir.path());
    // A hostile model name and error text, and a baseline reference.
    let csv = folder.join("results.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let text = text.replacen(
        "smollm2-135m",
        "<script>alert(1)</script><img src=x onerror=alert(2)>",
        40,
    );
    std::fs::write(&csv, text).unwrap();
    let rows = std::fs::read_to_string(&csv).unwrap();
    let slow = rows
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .to_string();
    // plan.json: the grid's trials, the first one playing the baseline.
    let ids: Vec<String> = rows
        .lines()
        .skip(1)
        .map(|l| format!("\"{}\"", l.split(',').next().unwrap()))
        .collect();
    std::fs::write(
        folder.join("plan.json"),
        format!(
            r#"{{"sweep":"real-demo-grid","trial_ids":[{}],"references":[{{"role":"baseline","trial_id":"{slow}"}}]}}"#,
            ids.join(",")
        ),
    )
    .unwrap();
    let html = report(&folder);
    assert!(
        !html.contains("<script"),
        "markup from a model name got through"
    );
    assert!(
        !html.contains("<img"),
        "markup from a model name got through"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // The headline states the speed-up against the baseline with an interval.
    let gains = &html[html.find("id=\"gains\"").unwrap()..];
    let gains = &gains[..gains.find("</section>").unwrap()];
    assert!(
        gains.contains("generation speed of your baseline"),
        "{gains}"
    );
    assert!(gains.contains("95% CI"), "{gains}");
    assert!(gains.contains(&slow), "{gains}");
}

#[test]
fn a_folder_that_is_not_a_sweep_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["report", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not a sweep folder"),
        "{}",
        stderr(&out)
    );
}
