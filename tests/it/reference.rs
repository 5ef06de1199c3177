//! The reference documents that cannot drift: docs/knobs.md is what
//! `llama-sweep knobs --markdown` writes from the parameter table.

use crate::support::*;

#[test]
fn docs_knobs_md_is_what_the_parameter_table_says() {
    let out = run(&["knobs", "--markdown"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = stdout(&out);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/knobs.md");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        written == committed,
        "docs/knobs.md differs from the parameter table: write it again with\n  \
         cargo run --release -- knobs --markdown > docs/knobs.md\n\
         (first differing line: {:?})",
        written
            .lines()
            .zip(committed.lines())
            .find(|(a, b)| a != b)
            .or_else(|| written.lines().zip(committed.lines()).last())
    );
    for knob in llama_sweep::knobs::names() {
        assert!(written.contains(&format!("\n## {knob}\n")), "{knob}");
    }
}

#[test]
fn knobs_names_one_knob_and_refuses_one_that_does_not_exist() {
    let out = run(&["knobs", "n_cpu_moe"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("n_cpu_moe: "), "{text}");
    assert!(text.contains("llama-server: --n-cpu-moe"), "{text}");
    let out = run(&["knobs", "n_cpu_mo"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'n_cpu_moe'"), "{}", stderr(&out));
}
