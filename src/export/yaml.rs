//! config.yaml for an app that builds `llama_cpp.Llama(**config["llm"])`.
//!
//! Every key under `llm` except `temperature` and `max_tokens` is a keyword
//! argument of llama-cpp-python's `Llama()` with the type it expects. Every
//! parameter is written with the value the trial really ran with, because
//! llama-cpp-python's defaults differ from llama.cpp's (n_gpu_layers 0 vs
//! all, n_ctx 512, threads from the CPU count ...): leaving one out would
//! make the app run something other than what was measured.

use crate::objective::{Metric, Objective};
use crate::protocol::{FlashAttn, KvType};
use crate::store::row::TrialRow;
use std::fmt::Write;

/// What the header needs besides the row.
pub struct YamlContext<'a> {
    pub objective: &'a Objective,
    pub temperature: f64,
    /// The sweep.toml the trial came from, for the reproduce line.
    pub sweep_file: &'a str,
    /// The confirmation round's verdict, when this trial won it.
    pub confirmation: Option<&'a str>,
}

fn quoted(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar.
    serde_json::to_string(s).expect("strings serialize")
}

fn mean_sd(row: &TrialRow, metric: Metric) -> String {
    use crate::objective::Measured;
    match (row.mean_of(metric), row.sd_of(metric)) {
        (Some(m), Some(sd)) => format!("{m:.1} ± {sd:.1} {}", metric.unit()),
        (Some(m), None) => format!("{m:.1} {}", metric.unit()),
        _ => "not measured".into(),
    }
}

pub fn render(row: &TrialRow, ctx: &YamlContext) -> String {
    let mut y = String::new();
    let n = row.n_samples.unwrap_or(0);
    let _ = writeln!(
        y,
        "# Recommended by llama-sweep {} from measurements, not guesses.",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(
        y,
        "# sweep {:?}, trial {}, measured {}",
        row.sweep, row.trial_id, row.finished_at
    );
    let _ = writeln!(
        y,
        "# model: {} {} ({})",
        row.model_name,
        row.model_variant,
        row.model_description.as_deref().unwrap_or("?")
    );
    let _ = writeln!(
        y,
        "# generation {}, prompt processing {} (mean ± sd of {n} runs)",
        mean_sd(row, Metric::TgTps),
        mean_sd(row, Metric::PpTps)
    );
    let _ = writeln!(
        y,
        "# request of {} prompt + {} generated tokens: first token {}, end to end {}",
        row.request_prompt_tokens,
        row.request_max_tokens,
        mean_sd(row, Metric::TtftMs),
        mean_sd(row, Metric::E2eMs)
    );
    let _ = writeln!(y, "# objective: {}", ctx.objective);
    if let Some(verdict) = ctx.confirmation {
        let _ = writeln!(y, "# confirmed: {verdict}");
    }
    if !ctx.objective.constraints.is_empty() {
        // Judged by the objective in force now, not when the row was written.
        let status = if ctx.objective.violations(row).is_empty() {
            "all met"
        } else {
            "NOT all met"
        };
        let _ = writeln!(y, "# constraints: {status}");
    }
    if let (Some(done), Some(total)) = (row.layers_offloaded, row.layers_total) {
        let _ = writeln!(
            y,
            "# layers offloaded to a GPU when measured: {done}/{total}"
        );
    }
    let _ = writeln!(
        y,
        "# reproduce: llama-sweep run {} (trial {})",
        ctx.sweep_file, row.trial_id
    );
    y.push_str("llm:\n");
    let _ = writeln!(y, "  model_path: {}", quoted(&row.model_path));
    let _ = writeln!(y, "  n_gpu_layers: {}", row.n_gpu_layers);
    let _ = writeln!(y, "  n_ctx: {}", row.n_ctx);
    let _ = writeln!(y, "  n_batch: {}", row.n_batch);
    let _ = writeln!(y, "  n_ubatch: {}", row.n_ubatch);
    let _ = writeln!(y, "  n_threads: {}", row.n_threads);
    let _ = writeln!(y, "  n_threads_batch: {}", row.n_threads_batch);
    match (row.flash_attn, row.flash_attn_resolved) {
        (FlashAttn::On, _) => y.push_str("  flash_attn: true\n"),
        (FlashAttn::Off, _) => y.push_str("  flash_attn: false\n"),
        (FlashAttn::Auto, Some(on)) => {
            let _ = writeln!(
                y,
                "  flash_attn: {on}  # measured with \"auto\", which llama.cpp resolved to {on}"
            );
        }
        // llama.cpp turns flash attention on for a quantized V cache.
        (FlashAttn::Auto, None) if row.type_v.is_quantized() => {
            y.push_str("  flash_attn: true  # required by the quantized V cache\n");
        }
        (FlashAttn::Auto, None) => {
            y.push_str(
                "  # flash_attn: measured with \"auto\"; llama-cpp-python takes only true/false\n",
            );
        }
    }
    for (key, t) in [("type_k", row.type_k), ("type_v", row.type_v)] {
        if t != KvType::F16 {
            let _ = writeln!(
                y,
                "  {key}: {}  # {} (ggml type id)",
                t.ggml_type_id(),
                t.name()
            );
        }
    }
    let _ = writeln!(y, "  use_mmap: {}", row.use_mmap);
    let _ = writeln!(y, "  offload_kqv: {}", row.offload_kqv);
    y.push_str("  verbose: false\n");
    let _ = writeln!(y, "  temperature: {}", ctx.temperature);
    let _ = writeln!(y, "  max_tokens: {}", row.request_max_tokens);
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;

    fn row() -> TrialRow {
        crate::test_support::row("abc123def456", &mock::measured(180.0, 500.0))
    }

    #[test]
    fn snapshot_of_a_recommended_config() {
        let mut r = row();
        r.finished_at = "2026-11-26T08:00:00Z".into();
        r.flash_attn_resolved = Some(false);
        r.type_k = KvType::Q8_0;
        let objective = Objective::default();
        let text = render(
            &r,
            &YamlContext {
                objective: &objective,
                temperature: 0.7,
                sweep_file: "sweep.toml",
                confirmation: None,
            },
        );
        let expected = r#"# Recommended by llama-sweep 0.1.0 from measurements, not guesses.
# sweep "s", trial abc123def456, measured 2026-11-26T08:00:00Z
# model: m Q4_1 (mock 1M Q4_1)
# generation 180.0 ± 1.8 t/s, prompt processing 500.0 ± 5.0 t/s (mean ± sd of 3 runs)
# request of 64 prompt + 16 generated tokens: first token 512.0 ± 0.0 ms, end to end 867.6 ± 0.0 ms
# objective: maximize tg_tps (t/s)
# layers offloaded to a GPU when measured: 0/5
# reproduce: llama-sweep run sweep.toml (trial abc123def456)
llm:
  model_path: "models/m.gguf"
  n_gpu_layers: -1
  n_ctx: 512
  n_batch: 512
  n_ubatch: 512
  n_threads: 4
  n_threads_batch: 4
  flash_attn: false  # measured with "auto", which llama.cpp resolved to false
  type_k: 8  # q8_0 (ggml type id)
  use_mmap: true
  offload_kqv: true
  verbose: false
  temperature: 0.7
  max_tokens: 16
"#;
        assert_eq!(text, expected);
    }

    #[test]
    fn a_quantized_v_cache_exports_flash_attention_on() {
        let mut r = row();
        r.flash_attn_resolved = None;
        r.type_v = KvType::Q8_0;
        let objective = Objective::default();
        let text = render(
            &r,
            &YamlContext {
                objective: &objective,
                temperature: 0.7,
                sweep_file: "s.toml",
                confirmation: None,
            },
        );
        assert!(
            text.contains("  flash_attn: true  # required by the quantized V cache\n"),
            "{text}"
        );
        assert!(text.contains("  type_v: 8  # q8_0"), "{text}");
    }

    #[test]
    fn paths_are_quoted_safely() {
        let mut r = row();
        r.model_path = "models/a \"b\": c.gguf".into();
        let text = render(
            &r,
            &YamlContext {
                objective: &Objective::default(),
                temperature: 0.2,
                sweep_file: "s.toml",
                confirmation: None,
            },
        );
        assert!(
            text.contains(r#"  model_path: "models/a \"b\": c.gguf""#),
            "{text}"
        );
    }
}
