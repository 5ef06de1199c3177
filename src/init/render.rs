//! A [`Proposal`] as a commented sweep.toml: what was found first, then
//! each table with the reason for each key above it.

use super::{Proposal, estimate};
use std::fmt::Write;

const WIDTH: usize = 78;

/// The sweep file; `command` is how it was made, for its first line.
pub fn sweep_file(p: &Proposal, command: &str) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        &format!("Written by `{command}`: a first sweep for this model on this machine."),
    );
    for finding in &p.findings {
        comment(&mut out, &format!("Found: {finding}."));
    }
    comment(
        &mut out,
        &format!(
            "{} trials, about {} each by a first guess (generation at ~{:.0} t/s); \
             `llama-sweep plan` lists them, `llama-sweep run` runs them. Every key is explained \
             in docs/sweep-file.md, every [space] knob in docs/knobs.md (`llama-sweep knobs`).",
            p.trials,
            estimate::human(p.estimate.per_trial_s),
            p.estimate.tg_tps
        ),
    );
    for table in &p.tables {
        out.push('\n');
        match table.name {
            "model" => out.push_str("[[model]]\n"),
            name => {
                let _ = writeln!(out, "[{name}]");
            }
        }
        for s in &table.settings {
            comment(&mut out, &s.why);
            let _ = writeln!(out, "{} = {}", s.key, s.value);
        }
    }
    if p.value("app", "python").is_none() {
        out.push('\n');
        comment(
            &mut out,
            "Name your app's Python (its llama-cpp-python) or the llama-server it runs, and \
             the winner is measured again there: what your app runs may be another llama.cpp \
             build than this sweep's.",
        );
        out.push_str("# [app]\n# python = \"/path/to/app/venv/bin/python\"\n# server = \"/path/to/llama-server\"\n");
    }
    out
}

/// What `init` prints after writing `path`.
pub fn summary(p: &Proposal, path: &str) -> String {
    let mut out = String::new();
    for finding in &p.findings {
        let _ = writeln!(out, "{finding}");
    }
    let _ = writeln!(out, "Wrote {path}:");
    for table in &p.tables {
        for s in &table.settings {
            if table.name == "space"
                || matches!(
                    s.key,
                    "strategy"
                        | "quantize"
                        | "metric"
                        | "request_prompt_tokens"
                        | "request_max_tokens"
                )
            {
                let _ = writeln!(out, "  {} = {}  ({})", s.key, s.value, first_clause(&s.why));
            }
        }
    }
    let _ = writeln!(
        out,
        "{} trials, about {} in all by a first guess ({}). Next:\n  llama-sweep plan {path}    # the trials, in order\n  llama-sweep run {path}     # run them",
        p.trials,
        estimate::human(p.estimate.total_s),
        p.estimate.split()
    );
    out
}

fn first_clause(why: &str) -> &str {
    why.split([':', ';']).next().unwrap_or(why).trim()
}

/// `text` as `# ` lines of at most [`WIDTH`] characters.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > WIDTH && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    if line.len() > 1 {
        out.push_str(&line);
        out.push('\n');
    }
}
