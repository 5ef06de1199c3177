//! `llama-sweep init` on the real demo model and the test MoE model: the
//! file it writes is a sweep `plan` accepts, with the trial count and a
//! first guess of the time; it never overwrites a file.

use crate::support::*;

#[test]
fn init_writes_a_sweep_that_plan_accepts_and_never_overwrites_one() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("demo.toml");
    let model = demo_model();
    let out = run(&[
        "init",
        model.to_str().unwrap(),
        "-o",
        sweep.to_str().unwrap(),
        "--budget",
        "30m",
    ]);
    let said = format!("{}{}", stdout(&out), stderr(&out));
    assert!(out.status.success(), "{said}");
    assert!(said.contains("CPU only"), "{said}");
    assert!(
        said.contains("llama-sweep plan "),
        "says what to run next: {said}"
    );
    let text = std::fs::read_to_string(&sweep).unwrap();
    assert!(text.contains("n_threads = "), "{text}");
    assert!(text.contains("max_hours = 0.5"), "{text}");
    let planned = run(&["plan", sweep.to_str().unwrap()]);
    let shown = stdout(&planned);
    assert!(planned.status.success(), "{}{shown}", stderr(&planned));
    assert!(shown.contains(" trials, 0 already recorded"), "{shown}");
    assert!(shown.contains("by a first guess"), "{shown}");
    // Again: refused, the file as it was.
    let again = run(&[
        "init",
        model.to_str().unwrap(),
        "-o",
        sweep.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("never overwrites"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&sweep).unwrap(), text);
}

#[test]
fn init_on_the_moe_model_and_for_several_users_plans_too() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = dir.path().join("moe.toml");
    let model = moe_model();
    let out = run(&[
        "init",
        model.to_str().unwrap(),
        "-o",
        sweep.to_str().unwrap(),
        "--objective",
        "output_tps",
        "--users",
        "4",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = std::fs::read_to_string(&sweep).unwrap();
    assert!(text.contains("n_parallel = [1, 2, 4]"), "{text}");
    assert!(text.contains("metric = \"output_tps\""), "{text}");
    let planned = run(&["plan", sweep.to_str().unwrap()]);
    assert!(
        planned.status.success(),
        "{}{}",
        stdout(&planned),
        stderr(&planned)
    );
}

#[test]
fn init_refuses_a_file_that_is_not_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_model = dir.path().join("notes.gguf");
    std::fs::write(&not_a_model, "not a model").unwrap();
    let out = run(&["init", not_a_model.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("GGUF"), "{}", stderr(&out));
    assert!(!dir.path().join("notes.toml").exists());
}

/// The request a sweep measures is the app's: `--prompts` counts sample
/// prompts with the model's own tokenizer and writes their median length,
/// saying where it came from (issue 33).
#[test]
fn init_takes_the_apps_prompt_length_from_its_sample_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("prompts.jsonl");
    let sentence = "The quick brown fox jumps over the lazy dog. ";
    std::fs::write(
        &prompts,
        format!(
            "{{\"prompt\": \"{}\"}}\n{{\"messages\": [{{\"role\": \"user\", \"content\": \"{}\"}}]}}\n{{\"prompt\": \"{}\"}}\n",
            sentence.repeat(2),
            sentence.repeat(10),
            sentence.repeat(30)
        ),
    )
    .unwrap();
    let sweep = dir.path().join("demo.toml");
    let out = run(&[
        "init",
        demo_model().to_str().unwrap(),
        "-o",
        sweep.to_str().unwrap(),
        "--prompts",
        prompts.to_str().unwrap(),
        "--answer-tokens",
        "48",
    ]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = std::fs::read_to_string(&sweep).unwrap();
    let tokens: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("request_prompt_tokens = "))
        .expect("the request's prompt is written")
        .trim()
        .parse()
        .unwrap();
    // Ten sentences of ten words: about a hundred tokens, whatever the
    // tokenizer's exact split.
    assert!((80..=140).contains(&tokens), "{tokens}\n{text}");
    assert!(
        text.contains("the median of the 3 prompts in"),
        "says where it came from: {text}"
    );
    assert!(text.contains("request_max_tokens = 48"), "{text}");
    assert!(text.contains("metric = \"request_tps\""), "{text}");
    // A file of no prompts is refused, saying how to write one.
    std::fs::write(&prompts, "\n").unwrap();
    let out = run(&[
        "init",
        demo_model().to_str().unwrap(),
        "-o",
        dir.path().join("again.toml").to_str().unwrap(),
        "--prompts",
        prompts.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("holds no prompt"), "{}", stderr(&out));
}
