//! `llama-sweep quality` on the real demo model: a model against itself
//! diverges by nothing, and bad arguments are refused before any work.

use super::support::{demo_model, run, stderr, stdout};

#[test]
fn a_model_against_itself_has_no_divergence_and_full_agreement() {
    let model = demo_model();
    let model = model.to_str().unwrap();
    let out = run(&[
        "quality",
        model,
        "--reference",
        model,
        "--n-ctx",
        "128",
        "--chunks",
        "3",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let (m, r) = (&json["model"], &json["reference"]);
    assert_eq!(m["chunks"], 3);
    assert_eq!(m["tokens_scored"], 3 * 63, "the second half of each chunk");
    let ppl = m["ppl"].as_f64().unwrap();
    assert!(ppl > 1.0 && ppl < 1000.0, "{json}");
    // Same weights, same tokens: the same perplexity, no divergence beyond
    // the 16-bit storage of the reference's log-probabilities.
    assert!(
        (ppl / r["ppl"].as_f64().unwrap() - 1.0).abs() < 1e-6,
        "{json}"
    );
    let kld = m["kld_mean"].as_f64().unwrap();
    assert!((0.0..1e-4).contains(&kld.abs()), "KLD against itself {kld}");
    assert_eq!(m["top1_pct"].as_f64().unwrap(), 100.0, "{json}");
}

#[test]
fn bad_arguments_exit_2_before_loading_anything() {
    let out = run(&["quality", "/nonexistent/model.gguf"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no such model file"),
        "{}",
        stderr(&out)
    );
    let model = demo_model();
    let out = run(&["quality", model.to_str().unwrap(), "--type-k", "q9"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--type-k"), "{}", stderr(&out));
}
