//! llama-server.env: the trial's configuration as the `LLAMA_ARG_*`
//! environment variables llama.cpp reads (one `NAME=value` a line, values
//! quoted for a shell), after `#` comment lines giving its provenance. A
//! setting llama.cpp has no variable for (`--threads-batch`) is a comment
//! saying what to do. The arguments and their rules are
//! [`super::llama_args`].

use super::llama_args::{EnvVar, llama_args};
use super::server_args::build_line;
use super::{ExportContext, provenance, shell};
use crate::store::row::TrialRow;
use std::fmt::Write;

pub fn render(row: &TrialRow, ctx: &ExportContext) -> String {
    let mut text = String::new();
    for line in provenance::lines(row, ctx) {
        let _ = writeln!(text, "# {line}");
    }
    let _ = writeln!(text, "# {}", build_line(row));
    text.push_str("# for llama-server: set -a; . ./<this file>; set +a; llama-server\n");
    for arg in llama_args(row) {
        let flag = match &arg.value {
            Some(value) => format!("{} {value}", arg.flag),
            None => arg.flag.to_string(),
        };
        if let Some(note) = &arg.note {
            let _ = writeln!(text, "# {flag}: {note}");
        }
        match &arg.env {
            EnvVar::Set { name, value } => {
                let _ = writeln!(text, "{name}={}", shell::quote(value));
            }
            EnvVar::Unavailable(instead) => {
                let _ = writeln!(text, "# {flag}: {instead}");
            }
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{FlashAttn, KvType};
    use crate::objective::Objective;
    use crate::runner::mock;

    fn row() -> TrialRow {
        let mut r = crate::test_support::row("abc123def456", &mock::measured(180.0, 500.0));
        r.finished_at = "2026-11-26T08:00:00Z".into();
        r
    }

    fn render_default(r: &TrialRow) -> String {
        render(
            r,
            &ExportContext {
                objective: &Objective::default(),
                temperature: 0.7,
                sweep_file: "sweep.toml",
                confirmation: None,
                backend: None,
                app: None,
            },
        )
    }

    #[test]
    fn snapshot_of_an_env_file() {
        let mut r = row();
        r.params
            .set(crate::knobs::FLASH_ATTN, (FlashAttn::On).into());
        r.params.set(crate::knobs::TYPE_V, (KvType::Q8_0).into());
        r.params
            .set(crate::knobs::LOAD_MODE, crate::knobs::LoadMode::None.into());
        r.params.set(crate::knobs::N_THREADS_BATCH, (8).into());
        let expected = r#"# Recommended by llama-sweep 0.1.0 from measurements, not guesses.
# sweep "s", trial abc123def456, measured 2026-11-26T08:00:00Z
# model: m Q4_1 (mock 1M Q4_1)
# in your app's request of 64 prompt + 16 generated tokens: first token 512.0 ± 0.0 ms, then 180.0 ± 1.8 t/s (5.6 ms a token), 0.87 ± 0.00 s in all (mean ± sd of 3 runs)
# llama-bench's figures, into an empty cache: generation 180.0 ± 1.8 t/s, prompt processing 500.0 ± 5.0 t/s
# objective: maximize request_tps (t/s)
# layers offloaded to a GPU when measured: 0/5
# reproduce: llama-sweep run sweep.toml (trial abc123def456)
# arguments of the llama.cpp that measured it (test build); older builds differ (--no-mmap before --load-mode)
# for llama-server: set -a; . ./<this file>; set +a; llama-server
LLAMA_ARG_MODEL=models/m.gguf
LLAMA_ARG_N_GPU_LAYERS=all
LLAMA_ARG_CTX_SIZE=512
LLAMA_ARG_BATCH=512
LLAMA_ARG_UBATCH=512
LLAMA_ARG_THREADS=4
# -tb 8: no LLAMA_ARG_ variable: pass -tb 8 on the command line (without it llama.cpp uses the n_threads value, 4)
LLAMA_ARG_FLASH_ATTN=on
LLAMA_ARG_CACHE_TYPE_K=f16
LLAMA_ARG_CACHE_TYPE_V=q8_0
LLAMA_ARG_LOAD_MODE=none
LLAMA_ARG_KV_OFFLOAD=1
LLAMA_ARG_N_PARALLEL=1
LLAMA_ARG_KV_UNIFIED=0
LLAMA_ARG_FIT=off
"#;
        assert_eq!(render_default(&r), expected);
    }

    #[test]
    fn a_path_with_spaces_and_quotes_reads_back_from_a_shell() {
        let mut r = row();
        r.model_path = "my models/it's \"best\" $x.gguf".into();
        let text = render_default(&r);
        assert!(
            text.contains(r#"LLAMA_ARG_MODEL='my models/it'\''s "best" $x.gguf'"#),
            "{text}"
        );
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("llama-server.env");
        std::fs::write(&file, &text).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"set -a; . "$1"; set +a; printf '%s|%s' "$LLAMA_ARG_MODEL" "$LLAMA_ARG_N_GPU_LAYERS""#)
            .arg("sh")
            .arg(&file)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("{}|all", r.model_path)
        );
    }
}
