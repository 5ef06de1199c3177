//! The knob reference, written from the parameter table: `llama-sweep
//! knobs` prints it, `--markdown` renders docs/knobs.md (a test fails when
//! the committed file differs), so a knob added to the table is documented
//! by construction. Pure: llama.cpp's defaults are passed in.

use super::{
    ALIASES, Domain, EffectiveParams, Knob, KwargSpelling, Level, Needs, Receiver, Scale,
    ServerSpelling, TABLE,
};
use std::fmt::Write;

/// The values `knob` takes, for people.
pub fn values(knob: &Knob) -> String {
    match knob.domain {
        Domain::Int { min, max, .. } if max >= i64::from(i32::MAX) => {
            format!("an integer, {min} or more")
        }
        Domain::Int { min, max, .. } => format!("an integer, {min} to {max}"),
        Domain::Bool => "true or false".into(),
        Domain::Choice { names, from_bool } => {
            let names = names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ");
            match from_bool {
                Some((yes, no)) => format!("{names} (true is \"{yes}\", false \"{no}\")"),
                None => names,
            }
        }
        Domain::Text { expected, .. } => expected.into(),
    }
}

/// How llama-server and llama.cpp's `LLAMA_ARG_*` variables take it.
pub fn server_spelling(knob: &Knob) -> String {
    let with_env = |flags: String, env: Option<&str>| match env {
        Some(env) => format!("`{flags}`, `{env}`"),
        None => format!("`{flags}` (no environment variable)"),
    };
    match knob.server {
        ServerSpelling::Value { flag, env } => with_env(format!("{flag} VALUE"), env),
        ServerSpelling::GpuLayers { flag, env } => {
            with_env(format!("{flag} N|all"), Some(env)) + " (-1 is written `all`)"
        }
        ServerSpelling::FlashAttn { flag, env } => {
            with_env(format!("{flag} on|off|auto"), Some(env))
        }
        ServerSpelling::Switch { on, off, env } => with_env(format!("{on}` / `{off}"), env),
        ServerSpelling::Unless { flag, env, default } => {
            with_env(format!("{flag} VALUE"), env) + &format!(", left out at \"{default}\"")
        }
        ServerSpelling::OnlyOn { on, env } => {
            with_env(on.to_string(), Some(env)) + ", left out when false"
        }
    }
}

/// How llama-cpp-python's `Llama()` takes it.
pub fn kwarg_spelling(knob: &Knob) -> String {
    let name = knob.name;
    match knob.kwarg {
        KwargSpelling::Same => format!("`{name}=`"),
        KwargSpelling::FlashAttn => {
            "`flash_attn=True|False` (\"auto\" as what llama.cpp resolved it to)".into()
        }
        KwargSpelling::GgmlType => format!("`{name}=` as a ggml type id, left out at f16"),
        KwargSpelling::EnumIndex => format!("`{name}=` as llama.cpp's enum value"),
        KwargSpelling::Numbers => format!("`{name}=` as a list of numbers, left out at \"auto\""),
        KwargSpelling::LoadMode => "`use_mmap=` and `use_mlock=`".into(),
        KwargSpelling::Unavailable(why) => format!("none: {why}"),
        KwargSpelling::OneSequence => {
            "none: `Llama()` decodes one sequence (exports run what n_parallel 1 measured)".into()
        }
    }
}

fn read_when(knob: &Knob) -> String {
    let when = match (knob.receiver, knob.level) {
        (Receiver::Server, _) => "when llama-server starts",
        (_, Level::Model) => "when the model loads (a change reloads it)",
        (_, Level::Context) => "when the context is created",
        (_, Level::Threads) => "by the threads of each graph",
    };
    format!("{when}; {}", knob.receiver.describe())
}

fn scale(knob: &Knob) -> &'static str {
    match knob.scale {
        Scale::Linear => "linear",
        Scale::Log2 => "by powers of two (sizes that matter by their ratio)",
        Scale::Category => "as unordered names",
    }
}

fn needs(knob: &Knob) -> Option<&'static str> {
    match knob.needs {
        Needs::Anything => None,
        Needs::Gpu => Some("a GPU in this llama.cpp build"),
        Needs::Experts => Some("a mixture-of-experts model"),
        Needs::ThreadPolling => Some("ggml's own threadpool (a build without OpenMP)"),
    }
}

/// Everything the table says about `knob`, as (what, says) rows.
fn facts(knob: &Knob, defaults: &EffectiveParams) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("values", values(knob)),
        (
            "llama.cpp's default",
            format!("`{}`", defaults.get(knob.id)),
        ),
    ];
    if let Some(other) = knob.follows {
        rows.push(("when unset", format!("follows `{other}`")));
    }
    if let Some(other) = knob.at_most {
        rows.push(("at most", format!("`{other}` (llama.cpp clamps it)")));
    }
    if knob.server_only() {
        rows.push((
            "runtime",
            "llama-server only: `[sweep] runtime = \"server\"`".into(),
        ));
    }
    if let Some(needs) = needs(knob) {
        rows.push(("changes anything only with", needs.into()));
    }
    rows.push(("read", read_when(knob)));
    rows.push(("a search scales it", scale(knob).into()));
    rows.push(("llama-server", server_spelling(knob)));
    rows.push(("llama-cpp-python `Llama()`", kwarg_spelling(knob)));
    let old: Vec<String> = ALIASES
        .iter()
        .filter(|a| a.knob == knob.id)
        .map(|a| a.describe())
        .collect();
    if !old.is_empty() {
        rows.push(("old name", old.join("; ")));
    }
    rows
}

/// docs/knobs.md.
pub fn markdown(defaults: &EffectiveParams) -> String {
    let mut out = String::new();
    out.push_str(
        "# Knobs\n\n\
         <!-- Written by `llama-sweep knobs --markdown > docs/knobs.md` from the parameter \
         table (src/knobs/table.rs); a test fails when this file differs from it. -->\n\n\
         Every key `[space]` and `[baseline]` take in a sweep file, one section each. A key \
         takes one value or a list of values to sweep (`n_batch = [256, 512]`); integers also \
         take a range, `{ min = 256, max = 2048, mul = 2 }` or `{ min = 1, max = 8, step = 1 }`. \
         A knob left out runs at llama.cpp's default. The rest of the sweep file is in \
         [the sweep file](sweep-file.md).\n\n\
         | knob | what it does |\n|---|---|\n",
    );
    for knob in TABLE {
        let about = one_line(knob.about).replace('|', "\\|");
        let _ = writeln!(out, "| [`{0}`](#{0}) | {about} |", knob.name);
    }
    for knob in TABLE {
        let _ = write!(
            out,
            "\n## {}\n\n{}.\n\n| | |\n|---|---|\n",
            knob.name,
            capitalized(&one_line(knob.about))
        );
        for (what, says) in facts(knob, defaults) {
            let _ = writeln!(out, "| {what} | {} |", says.replace('|', "\\|"));
        }
    }
    out
}

/// `llama-sweep knobs`: one line each, or everything about the `only` one.
pub fn text(defaults: &EffectiveParams, only: Option<&Knob>) -> String {
    let mut out = String::new();
    match only {
        Some(knob) => {
            let _ = writeln!(out, "{}: {}", knob.name, one_line(knob.about));
            for (what, says) in facts(knob, defaults) {
                let _ = writeln!(
                    out,
                    "  {}: {}",
                    what.replace('`', ""),
                    says.replace('`', "")
                );
            }
        }
        None => {
            let width = TABLE.iter().map(|k| k.name.len()).max().unwrap_or(0);
            for knob in TABLE {
                let _ = writeln!(
                    out,
                    "{:width$}  {} (default {}{})",
                    knob.name,
                    one_line(knob.about),
                    defaults.get(knob.id),
                    if knob.server_only() {
                        "; llama-server only"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    out
}

/// `about` with its source line breaks' runs of spaces folded.
fn one_line(about: &str) -> String {
    about.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{Params, Value};

    fn defaults() -> EffectiveParams {
        let values: Params = TABLE
            .iter()
            .map(|k| {
                let v = k
                    .before
                    .and_then(|b| Value::from_cell(k, b))
                    .unwrap_or(Value::Int(7));
                (k.id, v)
            })
            .collect();
        EffectiveParams::complete(values).unwrap()
    }

    #[test]
    fn every_knob_has_a_section_and_a_line_in_the_index() {
        let md = markdown(&defaults());
        for knob in TABLE {
            assert!(
                md.contains(&format!("\n## {}\n", knob.name)),
                "{}",
                knob.name
            );
            assert!(
                md.contains(&format!("| [`{0}`](#{0}) |", knob.name)),
                "{}",
                knob.name
            );
        }
        assert_eq!(md.matches("\n## ").count(), TABLE.len());
    }

    #[test]
    fn a_section_says_how_each_runtime_spells_the_knob() {
        let md = markdown(&defaults());
        let section = |name: &str| {
            let start = md.find(&format!("\n## {name}\n")).unwrap();
            let rest = &md[start + 1..];
            rest[..rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3)].to_string()
        };
        let layers = section("n_gpu_layers");
        assert!(
            layers.contains("`-ngl N\\|all`, `LLAMA_ARG_N_GPU_LAYERS`"),
            "{layers}"
        );
        assert!(
            layers.contains("| llama-cpp-python `Llama()` | `n_gpu_layers=` |"),
            "{layers}"
        );
        assert!(layers.contains("a GPU in this llama.cpp build"), "{layers}");
        let batch = section("n_batch");
        assert!(batch.contains("`n_ctx` (llama.cpp clamps it)"), "{batch}");
        let spec = section("spec_type");
        assert!(spec.contains("llama-server only"), "{spec}");
        assert!(spec.contains("\"draft-simple\""), "{spec}");
        assert!(
            spec.contains("| llama-cpp-python `Llama()` | none: "),
            "{spec}"
        );
        let load = section("load_mode");
        assert!(
            load.contains("use_mmap is the old name of load_mode"),
            "{load}"
        );
        assert!(section("n_threads_batch").contains("follows `n_threads`"));
    }

    #[test]
    fn the_terminal_listing_has_a_line_per_knob_and_the_details_of_one() {
        let d = defaults();
        assert_eq!(text(&d, None).lines().count(), TABLE.len());
        let one = text(&d, Some(crate::knobs::N_CPU_MOE.knob()));
        assert!(one.starts_with("n_cpu_moe: "), "{one}");
        assert!(one.contains("  llama-server: --n-cpu-moe VALUE"), "{one}");
        assert!(!one.contains('`'), "{one}");
    }
}
