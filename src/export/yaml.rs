//! config.yaml for an app that builds `llama_cpp.Llama(**config["llm"])`.
//!
//! Every key under `llm` except `temperature` and `max_tokens` is a keyword
//! argument of llama-cpp-python's `Llama()` with the type it expects (the
//! list and its rules are [`super::kwargs`]); a comment header says where
//! the numbers came from.

use super::{ExportContext, kwargs, provenance};
use crate::store::row::TrialRow;
use std::fmt::Write;

/// What the header needs besides the row (the name config.yaml's callers
/// know it by).
pub type YamlContext<'a> = ExportContext<'a>;

pub fn render(row: &TrialRow, ctx: &YamlContext) -> String {
    let mut y = String::new();
    for line in provenance::lines(row, ctx) {
        let _ = writeln!(y, "# {line}");
    }
    let missing = kwargs::inexpressible(row);
    if !missing.is_empty() {
        let _ = writeln!(
            y,
            "# WARNING: llama-cpp-python's Llama() cannot be given all of what was measured, so an app \
             loading this file runs something else and may be slower; llama-server's arguments \
             (llama-sweep export --format server-args) carry it all:"
        );
        for line in missing {
            let _ = writeln!(y, "#   {}", line.replace(['\n', '\r'], " "));
        }
    }
    y.push_str("llm:\n");
    for kwarg in kwargs::llama_kwargs(row) {
        // A JSON value is a valid YAML flow scalar (strings double-quoted).
        match (&kwarg.value, &kwarg.note) {
            (Some(value), None) => {
                let _ = writeln!(y, "  {}: {value}", kwarg.key);
            }
            (Some(value), Some(note)) => {
                let _ = writeln!(y, "  {}: {value}  # {note}", kwarg.key);
            }
            (None, note) => {
                let _ = writeln!(y, "  # {}: {}", kwarg.key, note.as_deref().unwrap_or(""));
            }
        }
    }
    let _ = writeln!(y, "  temperature: {}", ctx.temperature);
    let _ = writeln!(y, "  max_tokens: {}", row.request_max_tokens);
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{FlashAttn, KvType};
    use crate::objective::Objective;
    use crate::runner::mock;

    fn row() -> TrialRow {
        crate::test_support::row("abc123def456", &mock::measured(180.0, 500.0))
    }

    #[test]
    fn snapshot_of_a_recommended_config() {
        let mut r = row();
        r.finished_at = "2026-11-26T08:00:00Z".into();
        r.flash_attn_resolved = Some(false);
        r.params.set(crate::knobs::TYPE_K, (KvType::Q8_0).into());
        let objective = Objective::default();
        let text = render(
            &r,
            &YamlContext {
                objective: &objective,
                temperature: 0.7,
                sweep_file: "sweep.toml",
                confirmation: None,
                backend: None,
                app: None,
            },
        );
        let expected = r#"# Recommended by llama-sweep 0.1.0 from measurements, not guesses.
# sweep "s", trial abc123def456, measured 2026-11-26T08:00:00Z
# model: m Q4_1 (mock 1M Q4_1)
# in your app's request of 64 prompt + 16 generated tokens: first token 512.0 ± 0.0 ms, then 180.0 ± 1.8 t/s (5.6 ms a token), 0.87 ± 0.00 s in all (mean ± sd of 3 runs)
# llama-bench's figures, into an empty cache: generation 180.0 ± 1.8 t/s, prompt processing 500.0 ± 5.0 t/s
# objective: maximize request_tps (t/s)
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
  use_mmap: true  # measured with load_mode "auto", which maps the file unless a device cannot
  use_mlock: false
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
        r.params.set(crate::knobs::TYPE_V, (KvType::Q8_0).into());
        let objective = Objective::default();
        let text = render(
            &r,
            &YamlContext {
                objective: &objective,
                temperature: 0.7,
                sweep_file: "s.toml",
                confirmation: None,
                backend: None,
                app: None,
            },
        );
        assert!(
            text.contains("  flash_attn: true  # required by the quantized V cache\n"),
            "{text}"
        );
        assert!(text.contains("  type_v: 8  # q8_0"), "{text}");
    }

    #[test]
    fn an_unresolved_auto_flash_attention_stays_a_comment() {
        let mut r = row();
        r.params
            .set(crate::knobs::FLASH_ATTN, (FlashAttn::Auto).into());
        r.flash_attn_resolved = None;
        let text = render(
            &r,
            &YamlContext {
                objective: &Objective::default(),
                temperature: 0.7,
                sweep_file: "s.toml",
                confirmation: None,
                backend: None,
                app: None,
            },
        );
        assert!(
            text.contains(
                "  # flash_attn: measured with \"auto\"; llama-cpp-python takes only true/false\n"
            ),
            "{text}"
        );
        assert!(!text.contains("  flash_attn:"), "{text}");
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
                backend: None,
                app: None,
            },
        );
        assert!(
            text.contains(r#"  model_path: "models/a \"b\": c.gguf""#),
            "{text}"
        );
    }

    #[test]
    fn a_winner_that_needs_what_llama_cpp_python_cannot_say_is_a_warning_in_the_header() {
        let mut r = row();
        crate::test_support::set(&mut r, crate::knobs::N_CPU_MOE, 12.into());
        let ctx = YamlContext {
            sweep_file: "sweep.toml",
            objective: &Objective::default(),
            temperature: 0.7,
            confirmation: None,
            backend: None,
            app: None,
        };
        let yaml = render(&r, &ctx);
        let header: Vec<&str> = yaml.lines().take_while(|l| l.starts_with('#')).collect();
        assert!(
            header
                .iter()
                .any(|l| l.contains("WARNING") && l.contains("server-args")),
            "{yaml}"
        );
        assert!(
            header
                .iter()
                .any(|l| l.contains("n_cpu_moe") && l.contains("--n-cpu-moe 12")),
            "{yaml}"
        );
        assert!(yaml.contains("  # n_cpu_moe: 12 was measured"), "{yaml}");
    }
}
