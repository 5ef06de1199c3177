//! `llama-sweep report` with and without quality.csv and a measured memory
//! bandwidth (added to a copy of the recorded demo grid): the quality
//! section, the quality chart and the generation ceiling appear only with
//! their data, and every plot the page declares is drawn.

use super::support::{read_rows, run, stderr};
use llama_sweep::bandwidth::Bandwidth;
use llama_sweep::knobs::KvType;
use llama_sweep::quality::record::{self, QualityRow};
use llama_sweep::store::row::TrialRow;
use llama_sweep::store::{csv_file, manifest};
use std::path::{Path, PathBuf};

const FIXTURE: &str = "tests/fixtures/real-demo-grid";

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

/// The names of the page's figures, after checking that there are as many
/// as it declares and that each is drawn as PNG and SVG.
fn drawn_plots(html: &str, folder: &Path) -> Vec<String> {
    let at = html.find("data-plots=\"").unwrap() + 12;
    let declared: usize = html[at..at + html[at..].find('"').unwrap()]
        .parse()
        .unwrap();
    let names: Vec<String> = html
        .split("<figure class=\"plot\" data-plot=\"")
        .skip(1)
        .map(|s| s[..s.find('"').unwrap()].to_string())
        .collect();
    assert_eq!(names.len(), declared);
    for name in &names {
        for ext in ["png", "svg"] {
            let file = folder.join("plots").join(format!("{name}.{ext}"));
            let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} has {len} bytes", file.display());
        }
    }
    names
}

/// A measured quality row for a row's model file and KV types.
fn quality_of(row: &TrialRow, kld: f64) -> QualityRow {
    let reference = kld == 0.0;
    QualityRow {
        quality_id: format!(
            "{}-{}-{}",
            row.model_variant,
            row.params.kv_type(llama_sweep::knobs::TYPE_K),
            row.params.kv_type(llama_sweep::knobs::TYPE_V)
        ),
        model_name: row.model_name.clone(),
        model_variant: row.model_variant.clone(),
        model_identity: row.model_identity.clone(),
        model_size_bytes: row.model_size_bytes,
        type_k: row.params.kv_type(llama_sweep::knobs::TYPE_K),
        type_v: row.params.kv_type(llama_sweep::knobs::TYPE_V),
        is_reference: reference,
        reference_variant: "Q8_0".into(),
        reference_type_k: KvType::F16,
        reference_type_v: KvType::F16,
        status: "ok".into(),
        error: None,
        text: "moby-dick-ch1-15.txt".into(),
        text_sha256: "0".into(),
        n_ctx: 512,
        chunks: Some(8),
        tokens_scored: Some(2040),
        ppl: Some(20.0 + kld * 100.0),
        ppl_se: Some(0.5),
        ppl_increase_pct: Some(kld * 50.0),
        kld_mean: Some(kld),
        kld_se: Some(0.001),
        kld_p99: Some(kld * 8.0),
        kld_max: Some(kld * 30.0),
        top1_pct: Some(100.0 - kld * 300.0),
        seconds: 10.0,
        finished_at: "2026-11-26T11:00:00Z".into(),
        log_file: "logs/quality.log".into(),
    }
}

fn kld_of(variant: &str, type_k: KvType) -> f64 {
    let base = match variant {
        "Q8_0" => 0.0,
        "Q6_K" => 0.002,
        "Q4_K_M" => 0.012,
        _ => 0.03,
    };
    if type_k == KvType::F16 {
        base
    } else {
        base + 0.001
    }
}

#[test]
fn an_old_sweep_folder_has_no_quality_section_and_no_empty_plot() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_copy(dir.path());
    let html = report(&folder);
    assert!(!html.contains("id=\"quality\""));
    assert!(!html.contains("% of ceiling"));
    assert!(!html.contains("<th>KLD</th>"));
    assert!(!html.contains("Quality:"));
    assert!(html.contains("ceiling not known: this sweep did not measure the memory bandwidth"));
    let plots = drawn_plots(&html, &folder);
    assert!(!plots.iter().any(|p| p == "quality"), "{plots:?}");
}

#[test]
fn quality_and_the_ceiling_appear_with_their_data() {
    let dir = tempfile::tempdir().unwrap();
    let folder = fixture_copy(dir.path());
    let mut rows = read_rows(&folder);
    let mut quality: Vec<QualityRow> = Vec::new();
    for row in &mut rows {
        let kld = kld_of(
            &row.model_variant,
            row.params.kv_type(llama_sweep::knobs::TYPE_K),
        );
        row.kld = Some(kld);
        row.top1_pct = Some(100.0 - kld * 300.0);
        row.ppl_increase_pct = Some(kld * 50.0);
        // 10 GB/s ÷ 60 MB: a ceiling of 166.7 t/s.
        row.bytes_per_token = Some(60_000_000);
        let q = quality_of(row, kld);
        if !quality.iter().any(|x| x.quality_id == q.quality_id) {
            quality.push(q);
        }
    }
    let mut failed = quality_of(&rows[0], 0.5);
    failed.type_k = KvType::Q4_0;
    failed.status = "crashed".into();
    failed.error = Some("signal 11 <script>alert(1)</script>".into());
    quality.push(failed);
    for q in &quality {
        record::append(&folder, q).unwrap();
    }
    csv_file::write_all(&folder.join("results.csv"), &rows).unwrap();
    let manifest_path = folder.join("manifest.json");
    let mut m = manifest::read(&manifest_path).unwrap();
    m.memory_bandwidth = Some(Bandwidth {
        gb_per_s: 10.0,
        median_gb_per_s: 9.5,
        threads: 2,
        buffer_mib: 1024,
        runs: 5,
    });
    manifest::write(&manifest_path, &m).unwrap();

    let html = report(&folder);
    // The winner (Q4_K_M, 155.8 t/s) against its ceiling, and its quality.
    let card = &html[html.find("id=\"winner\"").unwrap()..];
    let card = &card[..card.find("</section>").unwrap()];
    assert!(
        card.contains("of this machine's ceiling (166.7 t/s: 10.0 GB/s memory bandwidth ÷ 60.0 MB read per token)"),
        "{card}"
    );
    assert!(card.contains("Quality: KLD 0.0120 vs Q8_0"), "{card}");
    // The section: one row per measurement, the failure escaped.
    let section = &html[html.find("id=\"quality\"").unwrap()..];
    let section = &section[..section.find("</table>").unwrap()];
    assert_eq!(section.matches("<tr").count(), 1 + quality.len());
    assert!(section.contains("<span class=\"tag\">reference</span>"));
    assert!(section.contains("crashed: signal 11 &lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!html.contains("<script"));
    // The trials table's new columns, and the chart.
    assert!(html.contains("<th>KLD</th><th>% of ceiling</th>"));
    let plots = drawn_plots(&html, &folder);
    assert!(plots.iter().any(|p| p == "quality"), "{plots:?}");
}
