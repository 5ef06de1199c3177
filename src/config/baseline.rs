//! `[baseline]`: the configuration the user runs today, so every figure of
//! the sweep can be stated against it. It names one `[[model]]` entry (and
//! optionally one of its derived quantizations) and takes the `[space]`
//! keys, each with exactly one value; a key left out keeps llama.cpp's
//! default, as in `[space]`.

use super::error::{ConfigError, did_you_mean};
use super::raw::{RawBaseline, RawConfig};
use super::validate::{Ctx, check_space, space_values};
use super::{Baseline, ModelEntry, Space};
use crate::models::quant_types::QuantType;
use crate::protocol::{FlashAttn, KvType, Params, Workload};
use toml::Spanned;

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
    let b = spanned.get_ref();
    let entry = model(ctx, spanned, models)?;
    let quant = match &b.quant {
        None => None,
        Some(q) => Some(quant(ctx, q, entry)?),
    };
    let raw_space = b.space();
    let space = space_values(ctx, "baseline", &raw_space)?;
    single_values(ctx, b, &space)?;
    check_space(ctx, "baseline", &raw_space, &space, workload)?;
    let params = params_of(&space);
    if params.type_v.is_some_and(KvType::is_quantized) && params.flash_attn == Some(FlashAttn::Off)
    {
        let span = b.type_v.as_ref().map(Spanned::span);
        return ctx.err(
            "baseline.type_v",
            span,
            "a quantized V cache needs flash attention: llama.cpp refuses it with flash_attn = \"off\"",
        );
    }
    Ok(Some(Baseline {
        model: entry.name.clone(),
        quant,
        params,
    }))
}

/// The `[[model]]` entry the baseline runs.
fn model<'a>(
    ctx: &Ctx,
    spanned: &Spanned<RawBaseline>,
    models: &'a [ModelEntry],
) -> Result<&'a ModelEntry, ConfigError> {
    let names: Vec<&str> = models.iter().map(|m| m.name.as_str()).collect();
    let listed = names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    match &spanned.get_ref().model {
        None if models.len() == 1 => Ok(&models[0]),
        None => ctx.err(
            "baseline.model",
            Some(spanned.span()),
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
fn single_values(ctx: &Ctx, b: &RawBaseline, space: &Space) -> Result<(), ConfigError> {
    type Key<'a> = (&'a str, Option<usize>, &'a Option<Spanned<toml::Value>>);
    let counts: [Key; 11] = [
        (
            "n_gpu_layers",
            space.n_gpu_layers.as_ref().map(Vec::len),
            &b.n_gpu_layers,
        ),
        ("n_ctx", space.n_ctx.as_ref().map(Vec::len), &b.n_ctx),
        ("n_batch", space.n_batch.as_ref().map(Vec::len), &b.n_batch),
        (
            "n_ubatch",
            space.n_ubatch.as_ref().map(Vec::len),
            &b.n_ubatch,
        ),
        (
            "n_threads",
            space.n_threads.as_ref().map(Vec::len),
            &b.n_threads,
        ),
        (
            "n_threads_batch",
            space.n_threads_batch.as_ref().map(Vec::len),
            &b.n_threads_batch,
        ),
        (
            "flash_attn",
            space.flash_attn.as_ref().map(Vec::len),
            &b.flash_attn,
        ),
        ("type_k", space.type_k.as_ref().map(Vec::len), &b.type_k),
        ("type_v", space.type_v.as_ref().map(Vec::len), &b.type_v),
        (
            "use_mmap",
            space.use_mmap.as_ref().map(Vec::len),
            &b.use_mmap,
        ),
        (
            "offload_kqv",
            space.offload_kqv.as_ref().map(Vec::len),
            &b.offload_kqv,
        ),
    ];
    for (name, count, raw) in counts {
        if let Some(n) = count.filter(|n| *n > 1) {
            return ctx.err(
                &format!("baseline.{name}"),
                raw.as_ref().map(Spanned::span),
                format!(
                    "the baseline is one configuration: give one value, not {n} \
                     (lists and ranges belong in [space])"
                ),
            );
        }
    }
    Ok(())
}

/// The parameters of a space whose every key has at most one value.
fn params_of(space: &Space) -> Params {
    fn one<T: Copy>(values: &Option<Vec<T>>) -> Option<T> {
        values.as_ref().and_then(|v| v.first().copied())
    }
    Params {
        n_gpu_layers: one(&space.n_gpu_layers),
        n_ctx: one(&space.n_ctx),
        n_batch: one(&space.n_batch),
        n_ubatch: one(&space.n_ubatch),
        n_threads: one(&space.n_threads),
        n_threads_batch: one(&space.n_threads_batch),
        flash_attn: one(&space.flash_attn),
        type_k: one(&space.type_k),
        type_v: one(&space.type_v),
        use_mmap: one(&space.use_mmap),
        offload_kqv: one(&space.offload_kqv),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, SweepConfig, parse};
    use crate::protocol::{FlashAttn, Params};
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
            Params {
                n_batch: Some(512),
                n_threads: Some(4),
                flash_attn: Some(FlashAttn::Off),
                ..Params::default()
            },
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
