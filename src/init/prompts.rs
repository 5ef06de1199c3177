//! The app's prompts, for `init --prompts FILE`: the request a sweep
//! measures should be as long as the app's, because the prompt before the
//! answer changes which configuration generates fastest (a longer cache
//! slows attention, and some kernels more than others). The file holds
//! sample prompts the app really sends, as JSON Lines (one object a line,
//! its `prompt` text, or its chat `messages`' contents) or as plain text
//! with a line of `---` between prompts; `cmd::init` counts their tokens
//! with the model's own tokenizer and `typical` picks the length to sweep.

use anyhow::{Context, bail};
use std::path::Path;

/// The prompts in `path`.
pub fn read(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    let prompts = if jsonl {
        parse_jsonl(&text).with_context(|| format!("{} is not JSON Lines", path.display()))?
    } else {
        parse_text(&text)
    };
    if prompts.is_empty() {
        bail!(
            "{} holds no prompt: write one prompt per JSON line ({{\"prompt\": \"...\"}} or \
             {{\"messages\": [...]}}) in a .jsonl file, or plain text with a line of --- \
             between prompts",
            path.display()
        );
    }
    Ok(prompts)
}

/// Plain text: prompts separated by a line holding `---` only.
fn parse_text(text: &str) -> Vec<String> {
    let mut prompts = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim() == "---" {
            prompts.push(std::mem::take(&mut current));
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    prompts.push(current);
    prompts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// JSON Lines: each line's `prompt` (or `text`), or its `messages`'
/// contents one after another.
fn parse_jsonl(text: &str) -> anyhow::Result<Vec<String>> {
    let mut prompts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).with_context(|| format!("line {}", i + 1))?;
        let prompt = match (
            value.get("prompt").or_else(|| value.get("text")),
            value.get("messages"),
        ) {
            (Some(p), _) => p.as_str().map(str::to_string),
            (None, Some(serde_json::Value::Array(messages))) => Some(
                messages
                    .iter()
                    .filter_map(|m| m.get("content").and_then(|c| c.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            _ => None,
        };
        match prompt {
            Some(p) if !p.trim().is_empty() => prompts.push(p),
            Some(_) => {}
            None => bail!(
                "line {} has no \"prompt\" text and no \"messages\" with \"content\"",
                i + 1
            ),
        }
    }
    Ok(prompts)
}

/// The prompt length to sweep, from each sample prompt's tokens: the
/// median (half the app's prompts are longer), with a sentence saying
/// where it came from.
pub fn typical(counts: &[u32], file: &str) -> Option<(u32, String)> {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let median = *sorted.get(sorted.len() / 2)?;
    let (min, max) = (sorted[0], sorted[sorted.len() - 1]);
    let why = if sorted.len() == 1 {
        format!("the prompt in {file}, by the model's tokenizer")
    } else {
        format!(
            "the median of the {} prompts in {file} ({min} to {max} tokens by the model's \
             tokenizer)",
            sorted.len()
        )
    };
    Some((median.max(1), why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_prompts_are_separated_by_dashes() {
        let text = "Summarize this.\nIt has two lines.\n---\n\nTranslate: hello\n---\n---\n";
        assert_eq!(
            parse_text(text),
            ["Summarize this.\nIt has two lines.", "Translate: hello"]
        );
        assert_eq!(
            parse_text("one prompt\n\nwith a blank line"),
            ["one prompt\n\nwith a blank line"]
        );
    }

    #[test]
    fn json_lines_give_prompts_or_chat_messages() {
        let text = concat!(
            "{\"prompt\": \"What is 2+2?\"}\n",
            "\n",
            "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\"}]}\n",
            "{\"text\": \"plain\"}\n",
        );
        assert_eq!(
            parse_jsonl(text).unwrap(),
            ["What is 2+2?", "Be brief.\nHi", "plain"]
        );
        let err = parse_jsonl("{\"question\": \"?\"}\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(parse_jsonl("not json\n").is_err());
    }

    #[test]
    fn the_typical_prompt_is_the_median() {
        let (n, why) = typical(&[900, 120, 250, 310, 260], "prompts.txt").unwrap();
        assert_eq!(n, 260);
        assert!(
            why.contains("5 prompts in prompts.txt (120 to 900 tokens"),
            "{why}"
        );
        assert_eq!(typical(&[42], "p.jsonl").unwrap().0, 42);
        assert_eq!(typical(&[], "p"), None);
    }

    #[test]
    fn a_file_without_prompts_says_how_to_write_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.txt");
        std::fs::write(&path, "\n---\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(
            err.contains("holds no prompt") && err.contains("---"),
            "{err}"
        );
        let path = dir.path().join("p.jsonl");
        std::fs::write(&path, "{\"prompt\": \"a\"}\n{\"prompt\": \"b c\"}\n").unwrap();
        assert_eq!(read(&path).unwrap(), ["a", "b c"]);
    }
}
