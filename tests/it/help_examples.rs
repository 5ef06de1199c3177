//! Every subcommand's `--help` teaches with examples, and its first example
//! runs as written. The subcommands and their examples are read from what
//! the binary prints (`llama-sweep --help`, `llama-sweep <sub> --help`), so
//! a new subcommand is covered by construction. Every example must call
//! real subcommands with flags their help shows, and show on one line; the
//! first of each is run by `sh`, as a reader pastes it, in a folder laid out
//! as this project is (a small sweep.toml named "demo" on the real demo
//! model, models/, examples/, tests/fixtures/), with `llama-sweep` first on
//! PATH.

use crate::support::*;
use clap::CommandFactory;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Instant;

/// The width clap wraps help at when it cannot tell the terminal's (a pipe,
/// `| less`): asked for here so that the text is what a reader sees there.
const COLUMNS: &str = "100";

/// `llama-sweep <args>`'s standard output, which must succeed.
fn help(args: &[&str]) -> String {
    let out = bin().args(args).env("COLUMNS", COLUMNS).output().unwrap();
    assert!(
        out.status.success(),
        "llama-sweep {} failed: {}",
        args.join(" "),
        stderr(&out)
    );
    stdout(&out)
}

/// The subcommands `llama-sweep --help` lists, but `help`.
fn subcommands(main_help: &str) -> Vec<String> {
    main_help
        .lines()
        .skip_while(|l| l.trim_end() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // A wrapped description goes on indented deeper.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(String::from)
        .collect()
}

/// The lines under "Examples:" up to a blank line, each without its
/// `# comment`.
fn examples(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim_end() != "Examples:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.find(" #").map_or(l, |at| &l[..at]).trim().to_string())
        .collect()
}

/// Whether `help` shows `flag` (`--top`, `-o`) as itself, not as the start
/// of a longer one.
fn shows(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(at, _)| {
        help[at + flag.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'))
    })
}

/// Each `llama-sweep <sub> <args>` an example calls: sub and its arguments.
fn calls(example: &str) -> Vec<(String, Vec<String>)> {
    example
        .split([';', '&', '|', '(', ')', '"', '\''])
        .filter_map(|command| {
            let words: Vec<&str> = command.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "llama-sweep")?;
            Some((
                words.get(at + 1).copied().unwrap_or("").to_string(),
                words[at + 2..].iter().map(|w| w.to_string()).collect(),
            ))
        })
        .collect()
}

/// The fixture: a two-trial sweep named "demo" on the demo model; models/
/// holds the demo model, examples/ and tests/fixtures/ are the project's;
/// home/ is $HOME, with the llama-cpp-python venv at the place
/// scripts/check-llama-cpp-python.sh makes it when there is one. Whether
/// there is.
fn lay_out(dir: &Path) -> bool {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = demo_model();
    let link = |from: &Path, to: PathBuf| std::os::unix::fs::symlink(from, to).unwrap();
    std::fs::create_dir(dir.join("models")).unwrap();
    link(&demo, dir.join("models").join(demo.file_name().unwrap()));
    std::fs::create_dir(dir.join("tests")).unwrap();
    link(&repo.join("tests/fixtures"), dir.join("tests/fixtures"));
    link(&repo.join("examples"), dir.join("examples"));
    let cache = dir.join("home/.cache/llama-sweep");
    std::fs::create_dir_all(&cache).unwrap();
    let python = app_python();
    if let Some(python) = &python {
        let venv = python.parent().unwrap().parent().unwrap();
        link(venv, cache.join("llama-cpp-python-venv"));
    }
    let model = format!("models/{}", demo.file_name().unwrap().to_string_lossy());
    std::fs::write(
        dir.join("sweep.toml"),
        format!(
            "[sweep]\nname = \"demo\"\nseed = 1\n\n[[model]]\nname = \"demo\"\npath = \"{model}\"\n\n\
             [space]\nn_gpu_layers = 0\nn_ctx = 256\nn_batch = 64\nn_threads = [1, 2]\n\n\
             [workload]\nprompt_tokens = 32\ngen_tokens = 8\nrepetitions = 2\nwarmup = 1\n\
             request_prompt_tokens = 32\nrequest_max_tokens = 8\n\n[trial]\nearly_drop = 0\nbusy_cores_max = 1000\n\n\
             [drift]\nevery = 0\n\n[quality]\nmeasure = false\n\n[confirm]\ntop = 0\n"
        ),
    )
    .unwrap();
    python.is_some()
}

/// Runs `example` with `sh -c` in `dir`, `llama-sweep` first on PATH.
fn sh(dir: &Path, example: &str) -> Output {
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
        .env("HOME", dir.join("home"))
        .output()
        .unwrap()
}

#[test]
fn every_subcommands_help_has_examples_and_its_first_runs_as_written() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let main_help = help(&["--help"]);
    let subs = subcommands(&main_help);
    // The listing is read right: it names what the command line defines.
    let defined: Vec<String> = llama_sweep::cli::Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect();
    assert_eq!(subs, defined, "`llama-sweep --help` lists: {main_help}");
    let helps: Vec<(String, String)> = subs
        .iter()
        .map(|sub| (sub.clone(), help(&[sub, "--help"])))
        .collect();
    let help_of = |name: &str| helps.iter().find(|(s, _)| s == name).map(|(_, h)| h);
    let cli = llama_sweep::cli::Cli::command();

    // Every example of every subcommand (and of `llama-sweep --help`): on
    // one line, calling real subcommands with flags their help shows, naming
    // only files of this project that exist.
    let with_main = std::iter::once(("".to_string(), main_help.clone())).chain(helps.clone());
    for (name, text) in with_main {
        let shown = examples(&text);
        let source = if name.is_empty() {
            cli.get_after_help().map(|h| h.to_string())
        } else {
            cli.find_subcommand(&name)
                .and_then(|s| s.get_after_help())
                .map(|h| h.to_string())
        };
        assert_eq!(
            shown,
            examples(&source.unwrap_or_default()),
            "`llama-sweep {name} --help` wraps an example at {COLUMNS} columns: shorten it"
        );
        for example in &shown {
            for (called, args) in calls(example) {
                let called_help = help_of(&called).unwrap_or_else(|| {
                    panic!("{name}: {example:?} calls `llama-sweep {called}`, no such subcommand")
                });
                for arg in &args {
                    let flag = arg.split('=').next().unwrap();
                    let is_flag = flag.starts_with("--") && flag.len() > 2
                        || flag.len() == 2 && flag.starts_with('-') && flag != "--";
                    assert!(
                        !is_flag || shows(called_help, flag),
                        "{name}: {example:?}: `llama-sweep {called} --help` shows no {flag}"
                    );
                    if arg.starts_with("examples/") || arg.starts_with("tests/fixtures/") {
                        assert!(repo.join(arg).exists(), "{name}: {example:?}: no {arg}");
                    }
                }
            }
        }
    }

    // Each subcommand's first example runs, `run`'s first: the others read
    // the sweep folder it writes.
    let dir = tempfile::tempdir().unwrap();
    let venv = lay_out(dir.path());
    let mut order: Vec<&(String, String)> = helps.iter().collect();
    order.sort_by_key(|(name, _)| name != "run");
    let mut times = Vec::new();
    for (name, text) in order {
        let all = examples(text);
        assert!(
            !all.is_empty(),
            "`llama-sweep {name} --help` has no example"
        );
        let example = &all[0];
        assert!(
            calls(example).iter().any(|(called, _)| called == name),
            "`llama-sweep {name} --help`'s first example does not call it: {example}"
        );
        assert!(
            !example.ends_with('&'),
            "`llama-sweep {name} --help`'s first example runs in the background: {example}"
        );
        if example.contains("~/.cache/llama-sweep/llama-cpp-python-venv") && !venv {
            // verify's names the venv scripts/check-llama-cpp-python.sh
            // makes: without one, skipped (app_python said so) or, in CI,
            // failed, as every test of the app's runtimes is.
            continue;
        }
        let started = Instant::now();
        // None documents a status other than 0 for its first example.
        let out = sh(dir.path(), example);
        times.push(format!(
            "{:6.1} s  {example}",
            started.elapsed().as_secs_f64()
        ));
        assert!(
            out.status.success(),
            "`llama-sweep {name} --help`'s first example failed ({}): {example}\n{}{}",
            out.status,
            stdout(&out),
            stderr(&out)
        );
        if name == "run" {
            // compare's: two sweeps of the same space.
            assert!(dir.path().join("reports/demo/results.csv").is_file());
            for copy in ["before", "after"] {
                let to = dir.path().join("reports").join(copy);
                let out = sh(dir.path(), &format!("cp -r reports/demo {}", to.display()));
                assert!(out.status.success(), "{}", stderr(&out));
            }
        }
    }
    eprintln!("help examples run:\n{}", times.join("\n"));
}
