//! `[sweep] runtime`: where the trials run. `"llama-sweep"` (the default)
//! measures llama.cpp as llama-sweep links it, in its own child process;
//! `"server"` runs every trial, the references included, through the
//! llama-server binary `[app] server` names: started with the trial's
//! flags, measured by llama-sweep acting as the app's clients
//! (`measure::server_trial`); `"python"` runs them in the app's own
//! llama-cpp-python, the interpreter `[app] python` names, as the app calls
//! it: `Llama(**kwargs)` and its request (`measure::python_trial`). Every
//! figure then comes from the app's request, so what those runtimes cannot
//! measure yet (depths, a conversation's history) is refused here, before
//! the sweep; so are llama-server's own knobs (speculative decoding)
//! anywhere else, a sweep of speculation on random tokens, and in
//! llama-cpp-python the knobs `Llama()` has no argument for.

use super::error::did_you_mean;
use super::raw::{RawConfig, RawKnobs};
use super::validate::{Ctx, span_of};
use super::{AppSettings, Baseline, Space};
use crate::config::ConfigError;
use crate::knobs::{self, KnobId, KwargSpelling, SpecType, Value, lists};
use crate::protocol::Workload;
use std::path::{Path, PathBuf};

/// Where the sweep's trials run.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum TrialRuntime {
    /// llama.cpp as llama-sweep links it, in its own child.
    #[default]
    Own,
    /// Through this llama-server binary.
    Server(PathBuf),
    /// In this interpreter's llama-cpp-python.
    Python(PathBuf),
}

impl TrialRuntime {
    pub fn server(&self) -> Option<&Path> {
        match self {
            TrialRuntime::Server(binary) => Some(binary),
            _ => None,
        }
    }

    pub fn python(&self) -> Option<&Path> {
        match self {
            TrialRuntime::Python(interpreter) => Some(interpreter),
            _ => None,
        }
    }

    /// The app's runtime by name (`TrialSpec::runtime`); `None` for
    /// llama-sweep's own.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            TrialRuntime::Own => None,
            TrialRuntime::Server(_) => Some(crate::runtime::RuntimeKind::Server.name()),
            TrialRuntime::Python(_) => Some(crate::runtime::RuntimeKind::Python.name()),
        }
    }
}

const RUNTIMES: [&str; 3] = ["llama-sweep", "server", "python"];

/// Where every trial runs, from `[sweep] runtime` and `[app]`.
pub(super) fn trial_runtime(
    ctx: &Ctx,
    raw: &RawConfig,
    app: &AppSettings,
    workload: &Workload,
) -> Result<TrialRuntime, ConfigError> {
    let Some(runtime) = &raw.sweep.get_ref().runtime else {
        return Ok(TrialRuntime::Own);
    };
    let span = Some(runtime.span());
    let (named, key, what) = match runtime.get_ref().as_str() {
        "llama-sweep" => return Ok(TrialRuntime::Own),
        "server" => (
            app.runtimes.server.clone().map(TrialRuntime::Server),
            "server = \"path/to/llama-server\"",
            "\"server\" runs every trial through a llama-server",
        ),
        "python" => (
            app.runtimes.python.clone().map(TrialRuntime::Python),
            "python = \"path/to/venv/bin/python\"",
            "\"python\" runs every trial in the app's llama-cpp-python",
        ),
        other => {
            let hint = did_you_mean(other, RUNTIMES)
                .map(|k| format!("did you mean \"{k}\"? "))
                .unwrap_or_default();
            return ctx.err(
                "sweep.runtime",
                span,
                format!(
                    "unknown runtime {other:?}; {hint}expected \"llama-sweep\", \"server\" or \
                     \"python\""
                ),
            );
        }
    };
    let Some(named) = named else {
        return ctx.err(
            "sweep.runtime",
            span,
            format!("{what}: name it as `{key}` under [app]"),
        );
    };
    if !workload.n_depth.is_empty() || workload.request_history_tokens > 0 {
        return ctx.err(
            "sweep.runtime",
            span,
            format!(
                "trials through {} measure the app's request on an empty cache: \
                 workload.n_depth and workload.request_history_tokens are measured by \
                 runtime = \"llama-sweep\" only",
                named.name().unwrap_or_default()
            ),
        );
    }
    Ok(named)
}

/// With `runtime = "python"`: every knob of `[space]` and `[baseline]` must
/// be one `Llama()` takes (the parameter table's `kwarg`), and a knob that
/// `Llama()` runs with one sequence only (n_parallel) at most 1: what the
/// app cannot set cannot be measured in it.
pub(super) fn python_knobs(
    ctx: &Ctx,
    raw: &RawConfig,
    space: &Space,
    baseline: Option<&Baseline>,
) -> Result<(), ConfigError> {
    let tables = [("space", Some(&raw.space))].into_iter().chain(
        raw.baseline
            .as_ref()
            .map(|b| ("baseline", Some(b.get_ref()))),
    );
    for (name, raw_table) in tables {
        let values: Vec<(KnobId, Vec<Value>)> = match name {
            "space" => space.iter().map(|(k, v)| (k, v.to_vec())).collect(),
            _ => baseline
                .map(|b| b.params.iter().map(|(k, v)| (k, vec![v.clone()])).collect())
                .unwrap_or_default(),
        };
        for (knob, values) in values {
            let span = raw_table.and_then(|t| span_of(t, knob.name()));
            let key = format!("{name}.{knob}");
            match knob.knob().kwarg {
                KwargSpelling::Unavailable(why) => {
                    return ctx.err(
                        &key,
                        span,
                        format!(
                            "{knob} cannot be measured in llama-cpp-python: {why}. Sweep it with \
                             runtime = \"llama-sweep\" or \"server\", or leave it out"
                        ),
                    );
                }
                KwargSpelling::OneSequence
                    if values.iter().any(|v| v.as_int().is_some_and(|n| n > 1)) =>
                {
                    return ctx.err(
                        &key,
                        span,
                        format!(
                            "{knob} above 1 cannot be measured in llama-cpp-python: its Llama() \
                             decodes one sequence at a time. Sweep several users with runtime = \
                             \"server\" (llama-server's concurrent clients)"
                        ),
                    );
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Checks llama-server's own knobs (`Receiver::Server`) in `[space]` and
/// `[baseline]`: only trials through llama-server (`server`) take them; a
/// draft model's path is made absolute (relative to the sweep file) and
/// must exist; "draft-simple" needs a draft model; and speculation needs
/// the app's text, not random tokens.
pub(super) fn server_knobs(
    ctx: &Ctx,
    raw: &RawConfig,
    base_dir: &Path,
    server: bool,
    workload: &Workload,
    space: &mut Space,
    baseline: Option<&mut Baseline>,
) -> Result<(), ConfigError> {
    if !server && !workload.prompts.is_random() {
        let span = raw
            .workload
            .as_ref()
            .and_then(|w| w.get_ref().prompts.as_ref())
            .map(|p| p.span());
        return ctx.err(
            "workload.prompts",
            span,
            "the app's text is sent by trials through llama-server (runtime = \"server\" under \
             [sweep]); llama-sweep's own child measures random tokens, as llama-bench does",
        );
    }
    let mut speculates = None;
    let mut values: Vec<(KnobId, Vec<Value>)> =
        space.iter().map(|(k, v)| (k, v.to_vec())).collect();
    let table = Table {
        name: "space",
        raw: &raw.space,
    };
    table.check(ctx, base_dir, server, &mut values, &mut speculates)?;
    for (knob, values) in values {
        space.set(knob, values);
    }
    if let (Some(baseline), Some(raw_baseline)) = (baseline, &raw.baseline) {
        let mut values: Vec<(KnobId, Vec<Value>)> = baseline
            .params
            .iter()
            .map(|(k, v)| (k, vec![v.clone()]))
            .collect();
        let table = Table {
            name: "baseline",
            raw: raw_baseline.get_ref(),
        };
        table.check(ctx, base_dir, server, &mut values, &mut speculates)?;
        for (knob, mut values) in values {
            if let Some(value) = values.pop() {
                baseline.params.set(knob, value);
            }
        }
    }
    if let Some((key, span, kind)) = speculates
        && workload.prompts.is_random()
    {
        return ctx.err(
            &key,
            span,
            format!(
                "speculative decoding ({kind}) pays off only when its guesses come true, which \
                 depends on the text: on random tokens its figures mean nothing. Set \
                 workload.prompts = \"shipped\" (a public-domain book shipped with llama-sweep) \
                 or the path of a text file like your app's"
            ),
        );
    }
    Ok(())
}

/// Where a speculating value was set: its key, its span and the kind.
type Speculating = Option<(String, Option<std::ops::Range<usize>>, String)>;

/// `[space]` or `[baseline]` as the file has it (for the spans of errors).
struct Table<'a> {
    name: &'static str,
    raw: &'a RawKnobs,
}

impl Table<'_> {
    /// Checks the server-only knobs among `values` (this table's), makes
    /// draft models' paths absolute, and notes the first speculating value
    /// in `speculates`.
    fn check(
        &self,
        ctx: &Ctx,
        base_dir: &Path,
        server: bool,
        values: &mut [(KnobId, Vec<Value>)],
        speculates: &mut Speculating,
    ) -> Result<(), ConfigError> {
        for (knob, values) in values.iter_mut() {
            if !knob.knob().server_only() {
                continue;
            }
            let key = format!("{}.{knob}", self.name);
            let span = span_of(self.raw, knob.name());
            if !server {
                return ctx.err(
                    &key,
                    span,
                    format!(
                        "{knob} is llama-server's own knob: sweep it through a llama-server with \
                         `runtime = \"server\"` under [sweep] and `server = \"path/to/llama-server\"` \
                         under [app]"
                    ),
                );
            }
            if *knob == knobs::DRAFT_MODEL {
                for value in values.iter_mut() {
                    *value = draft_model(ctx, &key, span.clone(), base_dir, value)?;
                }
            }
            if *knob == knobs::SPEC_TYPE
                && let Some(kind) = values.iter().find(|v| v.as_str() != Some(SpecType::NONE))
            {
                speculates.get_or_insert((key.clone(), span.clone(), kind.to_string()));
            }
        }
        let of = |knob| values.iter().find(|(k, _)| *k == knob).map(|(_, v)| v);
        let with_model = of(knobs::SPEC_TYPE).is_some_and(|kinds| {
            kinds
                .iter()
                .any(|v| v.as_str() == Some(SpecType::WITH_DRAFT_MODEL))
        });
        let has_model = of(knobs::DRAFT_MODEL).is_some_and(|models| {
            models
                .iter()
                .any(|v| v.as_str() != Some(lists::NO_DRAFT_MODEL))
        });
        if with_model && !has_model {
            return ctx.err(
                &format!("{}.spec_type", self.name),
                span_of(self.raw, knobs::SPEC_TYPE.name()),
                format!(
                    "\"{}\" guesses with a draft model: name one as {}.draft_model (a small \
                     GGUF file with the same vocabulary)",
                    SpecType::WITH_DRAFT_MODEL,
                    self.name
                ),
            );
        }
        Ok(())
    }
}

/// A draft model's path, absolute and checked; "none" as it is.
fn draft_model(
    ctx: &Ctx,
    key: &str,
    span: Option<std::ops::Range<usize>>,
    base_dir: &Path,
    value: &Value,
) -> Result<Value, ConfigError> {
    let text = value.as_str().unwrap_or_default();
    if text == lists::NO_DRAFT_MODEL {
        return Ok(value.clone());
    }
    let path = base_dir.join(text);
    if !path.is_file() {
        return ctx.err(
            key,
            span,
            format!(
                "no such draft model: {} (a GGUF file, relative to the sweep file)",
                path.display()
            ),
        );
    }
    let path = std::path::absolute(&path).unwrap_or(path);
    Ok(Value::Text(path.display().to_string()))
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, SweepConfig, parse};
    use crate::knobs::{self, Value};
    use crate::protocol::Prompts;
    use std::path::Path;

    /// A sweep file in `dir` with a model, a llama-server and a draft model
    /// there, `runtime` under [sweep] and `rest` after it.
    fn parse_with(dir: &Path, runtime: &str, rest: &str) -> Result<SweepConfig, ConfigError> {
        for file in ["m.gguf", "srv", "draft.gguf"] {
            std::fs::write(dir.join(file), b"GGUF").unwrap();
        }
        let text = format!(
            "[sweep]\nname = \"s\"\n{runtime}\n[[model]]\npath = \"m.gguf\"\n[app]\n\
             server = \"./srv\"\n{rest}"
        );
        parse(&dir.join("sweep.toml"), &text)
    }

    const SERVER: &str = "runtime = \"server\"";

    #[test]
    fn the_apps_python_runs_the_trials_and_refuses_what_llama_cannot_take() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("python"), b"#!/bin/sh\n").unwrap();
        let python = "runtime = \"python\"";
        let with_python = |rest: &str| format!("python = \"./python\"\n{rest}");
        let c = parse_with(
            dir.path(),
            python,
            &with_python("[space]\nn_threads = [1, 2]\n"),
        )
        .unwrap();
        assert!(
            c.trial_runtime
                .python()
                .is_some_and(|p| p.ends_with("python"))
        );
        assert_eq!(c.trial_runtime.name(), Some("llama-cpp-python"));
        assert_eq!(c.trial_runtime.server(), None);
        let err = |runtime: &str, rest: &str| {
            let e = parse_with(dir.path(), runtime, rest).unwrap_err();
            (e.key.clone().unwrap_or_default(), e.message)
        };
        let (key, why) = err(python, "");
        assert_eq!(key, "sweep.runtime");
        assert!(
            why.contains("`python = \"path/to/venv/bin/python\"` under [app]"),
            "{why}"
        );
        let (key, why) = err(python, &with_python("[space]\nrepack = false\n"));
        assert_eq!(key, "space.repack");
        assert!(why.contains("Llama() has no argument for it"), "{why}");
        let (key, why) = err(
            python,
            &with_python("[baseline]\nmodel = \"m\"\nrepack = false\n"),
        );
        assert_eq!(key, "baseline.repack");
        assert!(
            why.contains("cannot be measured in llama-cpp-python"),
            "{why}"
        );
        let (key, why) = err(python, &with_python("[space]\nn_parallel = [1, 4]\n"));
        assert_eq!(key, "space.n_parallel");
        assert!(why.contains("one sequence at a time"), "{why}");
        let (key, why) = err(python, &with_python("[workload]\nn_depth = [512]\n"));
        assert_eq!(key, "sweep.runtime");
        assert!(why.contains("trials through llama-cpp-python"), "{why}");
        let (_, why) = err("runtime = \"pyhton\"", "");
        assert!(why.contains("did you mean \"python\""), "{why}");
    }

    #[test]
    fn speculation_through_llama_server_with_text_and_a_draft_model() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_with(
            dir.path(),
            SERVER,
            "[space]\nspec_type = [\"none\", \"draft-simple\", \"ngram-mod\"]\n\
             draft_model = \"draft.gguf\"\ndraft_p_min = 0.75\ncont_batching = false\n\
             [workload]\nprompts = \"shipped\"\n",
        )
        .unwrap();
        assert_eq!(c.workload.prompts, Prompts::Shipped);
        let draft = c.space.get(knobs::DRAFT_MODEL).unwrap()[0].to_string();
        assert!(Path::new(&draft).is_absolute(), "{draft}");
        assert!(
            draft.ends_with("draft.gguf"),
            "relative to the sweep file: {draft}"
        );
        assert_eq!(
            c.space.get(knobs::DRAFT_P_MIN).unwrap(),
            [Value::Text("0.75".into())]
        );
        let text = dir.path().join("mine.txt");
        std::fs::write(&text, "the app's words").unwrap();
        let c = parse_with(dir.path(), SERVER, "[workload]\nprompts = \"mine.txt\"\n").unwrap();
        assert!(matches!(c.workload.prompts, Prompts::File(p) if p.ends_with("mine.txt")));
    }

    #[test]
    fn server_knobs_and_text_outside_llama_server_or_speculation_on_noise_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = |runtime: &str, rest: &str| {
            let e = parse_with(dir.path(), runtime, rest).unwrap_err();
            (e.key.clone().unwrap_or_default(), e.message)
        };
        let (key, why) = err("", "[space]\nspec_type = \"ngram-mod\"\n");
        assert_eq!(key, "space.spec_type");
        assert!(why.contains("llama-server's own knob"), "{why}");
        let (key, why) = err("", "[baseline]\ncont_batching = false\n");
        assert_eq!(key, "baseline.cont_batching");
        assert!(why.contains("runtime = \"server\""), "{why}");
        let (key, why) = err("", "[workload]\nprompts = \"shipped\"\n");
        assert_eq!(key, "workload.prompts");
        assert!(why.contains("random tokens"), "{why}");
        let (key, why) = err(SERVER, "[space]\nspec_type = [\"none\", \"ngram-mod\"]\n");
        assert_eq!(key, "space.spec_type");
        assert!(why.contains("workload.prompts = \"shipped\""), "{why}");
        let (key, why) = err(
            SERVER,
            "[space]\nspec_type = \"draft-simple\"\n[workload]\nprompts = \"shipped\"\n",
        );
        assert_eq!(key, "space.spec_type");
        assert!(why.contains("name one as space.draft_model"), "{why}");
        let (key, why) = err(SERVER, "[space]\ndraft_model = \"nowhere.gguf\"\n");
        assert_eq!(key, "space.draft_model");
        assert!(why.contains("no such draft model"), "{why}");
        let (key, why) = err(SERVER, "[workload]\nprompts = \"nowhere.txt\"\n");
        assert_eq!(key, "workload.prompts");
        assert!(why.contains("cannot read"), "{why}");
        let (key, why) = err(SERVER, "[space]\ndraft_p_min = 2\n");
        assert_eq!(key, "space.draft_p_min");
        assert!(why.contains("not a probability"), "{why}");
    }
}
