//! What a sweep tells its user: the terminal summary (ranked feasible trials
//! with their spread, how trials ended, warnings) and the report folder
//! (`report.html` with its plots, also written as PNG and SVG files under
//! `plots/`), with the analyses behind them: parameter effects, the Pareto
//! front, comparisons against the user's baseline and llama-server's defaults,
//! each variant's quality and the ceiling memory bandwidth puts on speed.

pub mod app_page;
pub mod ceiling;
pub mod charts;
pub mod data;
pub mod effects;
pub mod page;
pub mod pareto;
pub mod plots;
pub mod progress;
pub mod quality_page;
pub mod shapes;
pub mod summary;
pub mod warnings;

use anyhow::Context;
use std::path::{Path, PathBuf};

pub const REPORT_HTML: &str = "report.html";
pub const PLOTS: &str = "plots";

/// What `write` produced.
#[derive(Debug)]
pub struct Written {
    pub html: PathBuf,
    pub plots: PathBuf,
    pub charts: usize,
    pub html_bytes: usize,
}

/// What each chart shows, for its caption.
fn caption(name: &str) -> String {
    match name {
        "history" => "The objective of every trial in the order measured (crosses: trials that failed) and the best so far: a search that has converged stops improving.".into(),
        "pareto" => "Speed against memory: the front joins the trials that no other trial beats on both.".into(),
        "quality" => "Speed against quality: each point is a trial; further left = closer to the most precise variant in the sweep (the mean KL divergence of the trial's model variant and KV types), higher = faster (lower, for a latency objective); the line joins the trials that nothing beats on both.".into(),
        "pp-vs-tg" => "Prompt processing against generation speed: settings that help one may not help the other.".into(),
        "depth-tg" => "Generation speed of one sequence with the cache already holding that many tokens (workload.n_depth), for the top configurations: each point is mean ± sd of the repetitions. Flash attention and the KV-cache types show their effect here.".into(),
        "depth-pp" => "Prompt processing speed with the cache already holding that many tokens, for the top configurations (mean ± sd).".into(),
        "load" => "Throughput of all sequences together (solid, left axis, mean ± sd) and the 95th percentile of the time to first token of requests arriving together (dashed, right axis), against n_parallel; the vertical line is the knee of the best configuration's curve.".into(),
        "heatmap" => "The best measured value for each combination of the two parameters with the largest effects.".into(),
        other => match other.strip_prefix("effect-") {
            Some(param) => format!("{param}: the objective at each value relative to the recommended value (1 = the same), with 95% intervals. Blue: the trial that differs from the recommended one only here; orange ring: every pair of trials that differ only here (steadier, averaged over the other parameters); red cross: all its trials failed."),
            None => String::new(),
        },
    }
}

/// Writes `report.html` (to `output`, default `<folder>/report.html`) and
/// every chart as PNG and SVG under `plots/` beside it.
pub fn write(folder: &Path, output: Option<&Path>) -> anyhow::Result<Written> {
    let data = data::ReportData::load(folder)?;
    let html_path = output.map_or_else(|| folder.join(REPORT_HTML), Path::to_path_buf);
    let plots_dir = html_path
        .parent()
        .map_or_else(|| PathBuf::from(PLOTS), |p| p.join(PLOTS));
    std::fs::create_dir_all(&plots_dir)
        .with_context(|| format!("cannot create {}", plots_dir.display()))?;

    let objective = data.objective();
    let searched = data.searched_rows();
    let (effects, claims) = match data.winner() {
        Some(w) => (
            effects::effects(&searched, objective, w),
            effects::claims(&searched, objective, w),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let gains = data.gains();
    let mut warnings = warnings::warnings(&data.rows, Some(&data.manifest.llama_cpp));
    warnings.extend(data.manifest.backend_check.iter().flat_map(|c| c.lines()));
    warnings.extend(
        data.winner()
            .and_then(|w| warnings::ceiling_warning(w, &data.manifest)),
    );
    warnings.extend(data.winner().and_then(warnings::inexpressible_warning));

    let charts = charts::charts(&data, &searched, &effects);
    let figures = render_charts(&charts, &plots_dir)?;
    let exports = data.winner().map(|w| {
        let sweep = &data.manifest.sweep;
        let backend = data
            .manifest
            .backend_check
            .as_ref()
            .and_then(|c| c.line_for(&w.model_identity));
        let app = crate::verify::render::app_line(&data.folder, w);
        let ctx = crate::export::ExportContext {
            objective,
            temperature: sweep.temperature,
            sweep_file: &sweep.file,
            confirmation: data.recommendation.as_ref().map(|r| r.verdict.as_str()),
            backend: backend.as_deref(),
            app: Some(&app),
        };
        (
            crate::export::Format::Yaml.render(w, &ctx),
            crate::export::Format::ServerArgs.render(w, &ctx),
        )
    });
    let generated_at = crate::clock::now_rfc3339();
    let html = page::render(
        &data,
        &page::PageParts {
            effects: &effects,
            claims: &claims,
            gains: &gains,
            lead: warnings::failure_warning(&data.rows).as_deref(),
            warnings: &warnings,
            figures: &figures,
            config_yaml: exports.as_ref().map(|e| e.0.as_str()),
            server_args: exports.as_ref().map(|e| e.1.as_str()),
            generated_at: &generated_at,
        },
    );
    crate::store::write_atomically(&html_path, html.as_bytes())?;
    Ok(Written {
        html: html_path,
        plots: plots_dir,
        charts: figures.len(),
        html_bytes: html.len(),
    })
}

/// Draws every chart as SVG (kept for the page) and writes the SVG and PNG
/// files, the PNGs on all cores.
fn render_charts(charts: &[plots::Chart], dir: &Path) -> anyhow::Result<Vec<page::Figure>> {
    let mut figures = Vec::with_capacity(charts.len());
    for chart in charts {
        let svg =
            plots::svg(chart).map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", chart.name))?;
        let path = dir.join(format!("{}.svg", chart.name));
        std::fs::write(&path, &svg).with_context(|| format!("cannot write {}", path.display()))?;
        figures.push(page::Figure {
            name: chart.name.clone(),
            caption: caption(&chart.name),
            svg,
        });
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = charts.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = charts
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || -> anyhow::Result<()> {
                    for chart in part {
                        let path = dir.join(format!("{}.png", chart.name));
                        plots::png(chart, &path)
                            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .try_for_each(|h| h.join().expect("a plot thread panicked"))
    })?;
    Ok(figures)
}
