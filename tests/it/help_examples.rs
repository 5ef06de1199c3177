//! Every subcommand's `--help` teaches with examples, and its first example
//! runs as written: each is run by `sh` in a folder laid out as this
//! project is (a sweep.toml named "demo" on the real demo model, models/,
//! tests/fixtures/), with `llama-sweep` on PATH. The subcommands come from
//! the command line's own definition, so a new one is covered by
//! construction.

use crate::support::*;
use clap::CommandFactory;
use std::path::Path;

/// A subcommand's examples: the lines under "Examples:" up to a blank
/// line, each without its `# comment`.
fn examples(sub: &clap::Command) -> Vec<String> {
    let help = sub
        .get_after_help()
        .map(|h| h.to_string())
        .unwrap_or_default();
    help.lines()
        .skip_while(|l| !l.starts_with("Examples:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| match l.find("  #") {
            Some(at) => l[..at].trim().to_string(),
            None => l.trim().to_string(),
        })
        .collect()
}

/// The demo sweep, small: two trials, no quality, no confirmation.
fn lay_out(dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = demo_model();
    std::os::unix::fs::symlink(demo.parent().unwrap(), dir.join("models")).unwrap();
    std::fs::create_dir(dir.join("tests")).unwrap();
    std::os::unix::fs::symlink(repo.join("tests/fixtures"), dir.join("tests/fixtures")).unwrap();
    std::os::unix::fs::symlink(repo.join("examples"), dir.join("examples")).unwrap();
    let model = format!("models/{}", demo.file_name().unwrap().to_string_lossy());
    std::fs::write(
        dir.join("sweep.toml"),
        format!(
            "[sweep]\nname = \"demo\"\nseed = 1\n\n[[model]]\nname = \"demo\"\npath = \"{model}\"\n\n\
             [space]\nn_gpu_layers = 0\nn_ctx = 256\nn_batch = 64\nn_threads = [1, 2]\n\n\
             [workload]\nprompt_tokens = 32\ngen_tokens = 8\nrepetitions = 2\nwarmup = 1\n\
             request_prompt_tokens = 32\nrequest_max_tokens = 8\n\n[trial]\nearly_drop = 0\n\n\
             [drift]\nevery = 0\n\n[quality]\nmeasure = false\n\n[confirm]\ntop = 0\n"
        ),
    )
    .unwrap();
}

fn sh(dir: &Path, example: &str) -> std::process::Output {
    let bin = Path::new(env!("CARGO_BIN_EXE_llama-sweep"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::process::Command::new("sh")
        .args(["-c", example])
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap()
}

#[test]
fn the_first_example_of_every_subcommands_help_runs_as_written() {
    let cli = llama_sweep::cli::Cli::command();
    let subs: Vec<&clap::Command> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    assert!(
        subs.len() >= 14,
        "{:?}",
        subs.iter().map(|s| s.get_name()).collect::<Vec<_>>()
    );
    // Every example runs real subcommands with flags they have.
    let longs_of = |name: &str| -> Option<Vec<&str>> {
        let sub = subs.iter().find(|s| s.get_name() == name)?;
        Some(sub.get_arguments().filter_map(|a| a.get_long()).collect())
    };
    for sub in &subs {
        let name = sub.get_name();
        let all = examples(sub);
        assert!(
            !all.is_empty(),
            "`llama-sweep {name} --help` has no example"
        );
        assert!(
            all.iter()
                .any(|e| e.contains(&format!("llama-sweep {name}"))),
            "{name}: {all:?}"
        );
        for example in &all {
            for command in example.split([';', '&', '|', '(', ')', '"']) {
                let words: Vec<&str> = command.split_whitespace().collect();
                let Some(at) = words.iter().position(|w| *w == "llama-sweep") else {
                    continue;
                };
                let called = words.get(at + 1).copied().unwrap_or("");
                let longs = longs_of(called)
                    .unwrap_or_else(|| panic!("{name}: {example:?}: no subcommand {called:?}"));
                for flag in words[at + 2..].iter().filter_map(|w| w.strip_prefix("--")) {
                    let flag = flag.split('=').next().unwrap();
                    assert!(longs.contains(&flag), "{name}: {example:?}: no --{flag}");
                }
            }
        }
    }
    // The first of each runs, `run` first: the others read what it wrote.
    let dir = tempfile::tempdir().unwrap();
    lay_out(dir.path());
    let mut order: Vec<&&clap::Command> = subs.iter().collect();
    order.sort_by_key(|s| s.get_name() != "run");
    for sub in order {
        let name = sub.get_name();
        let example = &examples(sub)[0];
        if name == "compare" {
            for copy in ["before", "after"] {
                let to = dir.path().join("reports").join(copy);
                let copied = sh(dir.path(), &format!("cp -r reports/demo {}", to.display()));
                assert!(copied.status.success());
            }
        }
        if name == "verify"
            && !Path::new(&std::env::var("HOME").unwrap_or_default())
                .join(".cache/llama-sweep/llama-cpp-python-venv/bin/python")
                .is_file()
        {
            // Its example names the venv scripts/check-llama-cpp-python.sh
            // makes: without it, skipped or (in CI) failed as every test
            // of the app's runtimes is.
            assert!(app_python().is_none(), "the venv is elsewhere: {example}");
            continue;
        }
        let out = sh(dir.path(), example);
        assert!(
            out.status.success(),
            "`llama-sweep {name} --help`'s first example failed ({}): {example}\n{}{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
    }
}
