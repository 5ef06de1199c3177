//! `[baseline]`: the configuration the user runs today, so every figure of
//! the sweep can be stated against it. It names one `[[model]]` entry (and
//! optionally one of its derived quantizations) and takes the `[space]`
//! keys, each with exactly one value; a key left out keeps llama.cpp's
//! default, as in `[space]`.

use super::error::{ConfigError, did_you_mean};
use super::raw::{RawConfig, RawKnobs};
use super::validate::{Ctx, check_space, space_values, span_of};
use super::{Baseline, ModelEntry, Space};
use crate::knobs::{Params, rules};
use crate::models::quant_types::QuantType;
use crate::protocol::Workload;
use std::ops::Range;
use toml::Spanned;

/// The keys of `[baseline]` that are not knobs.
const OWN_KEYS: [&str; 2] = ["model", "quant"];

/// The validated `[baseline]`, if the file has one.
pub(super) fn baseline(
    ctx: &Ctx,
    raw: &RawConfig,
    models: &[ModelEntry],
    workload: &Workload,
) -> Result<Option<Baseline>, ConfigError> {
    let Some(spanned) = &raw.baseline else {
        return Ok(None);
    };
    let table = spanned.get_ref();
    let entry = model(ctx, spanned.span(), string(ctx, table, "model")?, models)?;
    let quant = match string(ctx, table, "quant")? {
        None => None,
        Some(q) => Some(quant(ctx, &q, entry)?),
    };
    let space = space_values(ctx, "baseline", table, &OWN_KEYS)?;
    single_values(ctx, table, &space)?;
    check_space(ctx, "baseline", table, &space, workload)?;
    let params = params_of(&space);
    if let Some((knob, why)) = rules::refusal(&params) {
        let key = knob.name();
        return ctx.err(&format!("baseline.{key}"), span_of(table, key), why);
    }
    Ok(Some(Baseline {
        model: entry.name.clone(),
        quant,
        params,
    }))
}

/// A string key of `[baseline]` that is not a knob (`model`, `quant`).
fn string(ctx: &Ctx, table: &RawKnobs, key: &str) -> Result<Option<Spanned<String>>, ConfigError> {
    let Some((_, value)) = table.iter().find(|(k, _)| k.get_ref() == key) else {
        return Ok(None);
    };
    match value.get_ref() {
        toml::Value::String(s) => Ok(Some(Spanned::new(value.span(), s.clone()))),
        _ => ctx.err(
            &format!("baseline.{key}"),
            Some(value.span()),
            "must be a string",
        ),
    }
}

/// The `[[model]]` entry the baseline runs.
fn model<'a>(
    ctx: &Ctx,
    table_span: Range<usize>,
    name: Option<Spanned<String>>,
    models: &'a [ModelEntry],
) -> Result<&'a ModelEntry, ConfigError> {
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let listed = names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    match name {
        None if models.len() == 1 => Ok(&models[0]),
        None => ctx.err(
            "baseline.model",
            Some(table_span),
            format!(
                "the sweep has {} [[model]] entries: say which one the baseline runs with \
                 model = \"<name>\" (one of {listed})",
                models.len()
            ),
        ),
        Some(name) => match models.iter().find(|m| &m.name == name.get_ref()) {
            Some(entry) => Ok(entry),
            None => {
                let hint = did_you_mean(name.get_ref(), names.iter().copied())
                    .map(|n| format!("did you mean {n:?}? "))
                    .unwrap_or_default();
                ctx.err(
                    "baseline.model",
                    Some(name.span()),
                    format!(
                        "no [[model]] is named {:?}; {hint}the models are {listed}",
                        name.get_ref()
                    ),
                )
            }
        },
    }
}

/// `quant`: one of the entry's derived quantizations.
fn quant(ctx: &Ctx, q: &Spanned<String>, entry: &ModelEntry) -> Result<QuantType, ConfigError> {
    let derived: Vec<&str> = entry.quantize.iter().map(|q| q.name).collect();
    let found = QuantType::from_name(q.get_ref()).filter(|t| entry.quantize.contains(t));
    if let Some(found) = found {
        return Ok(found);
    }
    let message = if derived.is_empty() {
        format!(
            "model {:?} derives no quantizations: add `quantize = [{:?}]` to its [[model]] \
             table, or leave quant out to run the model's own file",
            entry.name,
            q.get_ref()
        )
    } else {
        let hint = did_you_mean(q.get_ref(), derived.iter().copied())
            .map(|n| format!("did you mean {n:?}? "))
            .unwrap_or_default();
        format!(
            "{:?} is not one of model {:?}'s quantize list; {hint}expected one of {} \
             (or leave quant out to run the model's own file)",
            q.get_ref(),
            entry.name,
            derived.join(", ")
        )
    };
    ctx.err("baseline.quant", Some(q.span()), message)
}

/// Refuses a key with more than one value: the baseline is one configuration.
fn single_values(ctx: &Ctx, table: &RawKnobs, space: &Space) -> Result<(), ConfigError> {
    for (knob, values) in space.iter() {
        if values.len() > 1 {
            let name = knob.name();
            return ctx.err(
                &format!("baseline.{name}"),
                span_of(table, name),
                format!(
                    "the baseline is one configuration: give one value, not {} \
                     (lists and ranges belong in [space])",
                    values.len()
                ),
            );
        }
    }
    Ok(())
}

/// The settings of a space whose every knob has one value.
fn params_of(space: &Space) -> Params {
    space
        .iter()
        .filter_map(|(knob, values)| values.first().map(|v| (knob, v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, SweepConfig, parse};
    use crate::knobs::{FLASH_ATTN, N_BATCH, N_THREADS, Params, Value};
    use std::path::Path;

    const HEAD: &str = "[sweep]\nname = \"s\"\n[[model]]\nname = \"small\"\npath = \"m.gguf\"\n\
                        quantize = [\"Q8_0\", \"Q4_K_M\"]\n[space]\nn_ctx = 1024\n";

    fn parse_in(dir: &Path, text: &str) -> Result<SweepConfig, ConfigError> {
        std::fs::write(dir.join("m.gguf"), b"GGUF").unwrap();
        std::fs::write(dir.join("other.gguf"), b"GGUF other").unwrap();
        parse(&dir.join("sweep.toml"), text)
    }

    #[test]
    fn a_baseline_is_one_configuration_on_one_model_variant() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(
            dir.path(),
            &format!(
                "{HEAD}[baseline]\nquant = \"q4_k_m\"\nn_batch = 512\nn_threads = [4]\nflash_attn = \"off\"\n"
            ),
        )
        .unwrap();
        let b = c.baseline.unwrap();
        assert_eq!(b.model, "small", "the only model needs no name");
        assert_eq!(b.quant.map(|q| q.name), Some("Q4_K_M"));
        assert_eq!(
            b.params,
            Params::default()
                .with(N_BATCH, Value::Int(512))
                .with(N_THREADS, Value::Int(4))
                .with(FLASH_ATTN, Value::Text("off".into())),
            "keys not given keep llama.cpp's defaults"
        );
        assert!(parse_in(dir.path(), HEAD).unwrap().baseline.is_none());
        let c = parse_in(dir.path(), &format!("{HEAD}[baseline]\n")).unwrap();
        let b = c.baseline.unwrap();
        assert_eq!((b.quant, b.params), (None, Params::default()));
    }

    #[test]
    fn the_model_is_named_when_there_are_several() {
        let dir = tempfile::tempdir().unwrap();
        let two = format!("{HEAD}[[model]]\nname = \"big\"\npath = \"other.gguf\"\n");
        let c = parse_in(
            dir.path(),
            &format!("{two}[baseline]\nmodel = \"big\"\nn_threads = 2\n"),
        )
        .unwrap();
        assert_eq!(c.baseline.unwrap().model, "big");

        let e = parse_in(dir.path(), &format!("{two}[baseline]\nn_threads = 2\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("baseline.model"));
        assert!(e.message.contains("\"small\", \"big\""), "{e}");
        let e = parse_in(dir.path(), &format!("{two}[baseline]\nmodel = \"bigg\"\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("baseline.model"));
        assert_eq!(e.location.unwrap().0, 13);
        assert!(e.message.contains("no [[model]] is named \"bigg\""), "{e}");
        assert!(e.message.contains("did you mean \"big\""), "{e}");
    }

    #[test]
    fn bad_baselines_name_the_key_and_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let bad = |extra: &str| {
            parse_in(dir.path(), &format!("{HEAD}[baseline]\n{extra}\n")).unwrap_err()
        };
        // Line 10 is the first key of [baseline].
        let e = bad("n_batch = [256, 512]");
        assert_eq!(e.key.as_deref(), Some("baseline.n_batch"));
        assert_eq!(e.location.unwrap().0, 10);
        assert!(e.message.contains("one value, not 2"), "{e}");
        let e = bad("n_threads = { min = 1, max = 4 }");
        assert_eq!(e.key.as_deref(), Some("baseline.n_threads"));
        assert!(e.message.contains("not 4"), "{e}");
        let e = bad("n_bacth = 512");
        assert!(e.message.contains("did you mean `n_batch`"), "{e}");
        assert_eq!(e.location.unwrap().0, 10);
        let e = bad("n_threads = 0");
        assert_eq!(e.key.as_deref(), Some("baseline.n_threads"));
        assert!(e.message.contains("at least 1"), "{e}");
        let e = bad("flash_attn = \"maybe\"");
        assert_eq!(e.key.as_deref(), Some("baseline.flash_attn"));
        let e = bad("n_ctx = 64");
        assert_eq!(e.key.as_deref(), Some("baseline.n_ctx"));
        assert!(e.message.contains("smaller than the workload needs"), "{e}");
        let e = bad("type_v = \"q8_0\"\nflash_attn = \"off\"");
        assert_eq!(e.key.as_deref(), Some("baseline.type_v"));
        let e = bad("quant = \"Q5_K_M\"");
        assert_eq!(e.key.as_deref(), Some("baseline.quant"));
        assert!(e.message.contains("Q8_0, Q4_K_M"), "{e}");
        let e = bad("quant = \"Q4_K_N\"");
        assert!(e.message.contains("did you mean \"Q4_K_M\""), "{e}");
    }

    #[test]
    fn a_quant_needs_a_quantize_list() {
        let dir = tempfile::tempdir().unwrap();
        let e = parse_in(
            dir.path(),
            "[sweep]\nname = \"s\"\n[[model]]\npath = \"m.gguf\"\n[baseline]\nquant = \"Q8_0\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("baseline.quant"));
        assert!(e.message.contains("derives no quantizations"), "{e}");
    }
}
