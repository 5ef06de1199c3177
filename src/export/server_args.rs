//! server-args.txt: one `llama-server` command line that runs the trial's
//! configuration, shell-quoted, after `#` comment lines giving its
//! provenance. The arguments and their rules are [`super::llama_args`].

use super::llama_args::{LlamaArg, llama_args};
use super::{ExportContext, provenance, shell};
use crate::store::row::TrialRow;
use std::fmt::Write;

/// The line saying which llama.cpp the flags are for.
pub(super) fn build_line(row: &TrialRow) -> String {
    format!(
        "arguments of the llama.cpp that measured it ({}); older builds differ (--no-mmap before --load-mode)",
        row.build
    )
}

/// `-flag value` words of one argument.
fn words(arg: &LlamaArg) -> Vec<String> {
    let mut words = vec![arg.flag.to_string()];
    words.extend(arg.value.as_deref().map(shell::quote));
    words
}

pub fn render(row: &TrialRow, ctx: &ExportContext) -> String {
    let mut text = String::new();
    for line in provenance::lines(row, ctx) {
        let _ = writeln!(text, "# {line}");
    }
    let args = llama_args(row);
    for arg in &args {
        if let Some(note) = &arg.note {
            let _ = writeln!(text, "# {}: {note}", words(arg).join(" "));
        }
    }
    let _ = writeln!(text, "# {}", build_line(row));
    let command: Vec<String> = std::iter::once("llama-server".to_string())
        .chain(args.iter().flat_map(words))
        .collect();
    let _ = writeln!(text, "{}", command.join(" "));
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
    fn snapshot_of_a_server_command_line() {
        let mut r = row();
        r.params
            .set(crate::knobs::FLASH_ATTN, (FlashAttn::Auto).into());
        r.flash_attn_resolved = Some(false);
        r.params.set(crate::knobs::TYPE_K, (KvType::Q8_0).into());
        r.params.set(crate::knobs::OFFLOAD_KQV, (false).into());
        let expected = r#"# Recommended by llama-sweep 0.1.0 from measurements, not guesses.
# sweep "s", trial abc123def456, measured 2026-11-26T08:00:00Z
# model: m Q4_1 (mock 1M Q4_1)
# in your app's request of 64 prompt + 16 generated tokens: first token 512.0 ± 0.0 ms, then 180.0 ± 1.8 t/s (5.6 ms a token), 0.87 ± 0.00 s in all (mean ± sd of 3 runs)
# llama-bench's figures, into an empty cache: generation 180.0 ± 1.8 t/s, prompt processing 500.0 ± 5.0 t/s
# objective: maximize request_tps (t/s)
# layers offloaded to a GPU when measured: 0/5
# reproduce: llama-sweep run sweep.toml (trial abc123def456)
# -fa off: measured with "auto", which llama.cpp resolved to off
# arguments of the llama.cpp that measured it (test build); older builds differ (--no-mmap before --load-mode)
llama-server -m models/m.gguf -ngl all -c 512 -b 512 -ub 512 -t 4 -tb 4 -fa off -ctk q8_0 -ctv f16 --load-mode auto --no-kv-offload -np 1 --no-kv-unified --fit off
"#;
        assert_eq!(render_default(&r), expected);
    }

    #[test]
    fn a_path_with_spaces_and_quotes_is_one_shell_word() {
        let mut r = row();
        r.model_path = "my models/it's \"best\" $x.gguf".into();
        let text = render_default(&r);
        let command = text.lines().last().unwrap();
        assert!(
            command.starts_with(r#"llama-server -m 'my models/it'\''s "best" $x.gguf' -ngl all"#),
            "{command}"
        );
        // A shell splits it back into exactly the arguments.
        let script = command.replacen("llama-server", "printf '%s\\n'", 1);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        let words: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        let unquoted: Vec<String> = llama_args(&r)
            .into_iter()
            .flat_map(|a| std::iter::once(a.flag.to_string()).chain(a.value))
            .collect();
        assert_eq!(words, unquoted);
        assert_eq!(words[0..2], ["-m".to_string(), r.model_path.clone()]);
    }
}
