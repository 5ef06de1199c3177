//! `llama-sweep quality`: the quality of one model on an evaluation text,
//! optionally against a reference model — the same child jobs a sweep's
//! quality phase runs, for one model, a quick check or a script.

use crate::cli::QualityArgs;
use crate::config::QualitySettings;
use crate::exit;
use crate::knobs::KvType;
use crate::protocol::{ChildJob, ModelVariant, QualityJob, QualityMetrics};
use crate::quality;
use crate::runner::child::ChildRunner;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};

pub fn run(args: &QualityArgs) -> anyhow::Result<u8> {
    let kv = |name: &str, flag: &str| {
        KvType::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = KvType::ALL.iter().map(|t| t.name()).collect();
            crate::config::ConfigError::new(
                Path::new("command line"),
                Some(flag),
                format!(
                    "unknown cache type {name:?}; expected one of {}",
                    names.join(", ")
                ),
            )
        })
    };
    let (type_k, type_v) = (kv(&args.type_k, "--type-k")?, kv(&args.type_v, "--type-v")?);
    for path in std::iter::once(&args.model).chain(&args.reference) {
        if !path.is_file() {
            return Err(crate::config::ConfigError::new(
                Path::new("command line"),
                None,
                format!("no such model file: {}", path.display()),
            )
            .into());
        }
    }
    let mut runner = ChildRunner::current()?;
    let work = tempfile::Builder::new()
        .prefix("llama-sweep-quality-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    // llama.cpp's kernels crash on some CPUs (its AMX kernels on some
    // Xeons): the backend self-test finds what works, as before a sweep,
    // and that is what the quality is measured with.
    let variant = |model: &Path| ModelVariant {
        name: model.display().to_string(),
        variant: String::new(),
        path: model.to_path_buf(),
        identity: model.display().to_string(),
    };
    let tested: Vec<(ModelVariant, crate::knobs::Params)> = std::iter::once(&args.model)
        .chain(&args.reference)
        .map(|m| (variant(m), crate::knobs::Params::default()))
        .collect();
    std::fs::create_dir_all(work.path().join(crate::store::LOGS))?;
    let Some(check) = crate::selftest::check(
        &mut runner,
        &tested,
        &|_, _| crate::selftest::Use::Force,
        work.path(),
        &mut |_| {},
    )?
    else {
        bail!("interrupted");
    };
    if let Some(broken) = check.broken().first() {
        bail!(
            "llama.cpp's kernels fail on this machine with every setting tried for {}: {}",
            broken.identity,
            check.lines().join("; ")
        );
    }
    if !args.json {
        for line in check.lines() {
            eprintln!("warning: {line}");
        }
    }
    let settings = QualitySettings {
        text: args.text.clone(),
        n_ctx: args.n_ctx,
        chunks: args.chunks,
        ..QualitySettings::default()
    };
    let (text, text_name, _) = quality::phase::text_file(&settings, work.path())?;
    let threads = args.threads.unwrap_or_else(|| {
        crate::machine::Machine::detect()
            .physical_cores
            .unwrap_or(1)
            .max(1) as i32
    });
    let job = |model: &Path, k: KvType, v: KvType, save: Option<PathBuf>, base: Option<PathBuf>| {
        ChildJob::Quality(QualityJob {
            model: variant(model),
            type_k: k,
            type_v: v,
            n_ctx: settings.n_ctx,
            max_chunks: settings.chunks,
            text: text.clone(),
            n_threads: threads,
            n_gpu_layers: None,
            forced: check.forced_for(&model.display().to_string()),
            save_base: save,
            base,
        })
    };
    let measure = |job: ChildJob, name: &str| -> anyhow::Result<QualityMetrics> {
        let log = work.path().join(format!("{name}.log"));
        let ending = runner.run(&job, &log, settings.timeout)?;
        if ending.interrupted {
            bail!("interrupted");
        }
        quality::phase::result_of(ending, settings.timeout).map_err(|(status, why)| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(5).collect();
            anyhow::anyhow!(
                "the {name} measurement {status}: {why}\n  last lines of llama.cpp's log:\n    {}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n    ")
            )
        })
    };
    if !args.json {
        eprintln!(
            "llama-sweep quality: {} tokens per chunk, up to {} chunks of {text_name}",
            settings.n_ctx, settings.chunks
        );
    }
    let reference = match &args.reference {
        Some(path) => {
            let base = work.path().join("reference.ref");
            let m = measure(
                job(path, KvType::F16, KvType::F16, Some(base.clone()), None),
                "reference",
            )?;
            if !args.json {
                println!("reference {} (KV f16/f16):", path.display());
                println!("  {}", describe(&m));
            }
            Some((m, base))
        }
        None => None,
    };
    let base = reference.as_ref().map(|(_, b)| b.clone());
    let m = measure(job(&args.model, type_k, type_v, None, base), "model")?;
    if args.json {
        let json = serde_json::json!({
            "text": text_name,
            "n_ctx": settings.n_ctx,
            "reference": reference.as_ref().map(|(m, _)| m),
            "model": m,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{} (KV {type_k}/{type_v}):", args.model.display());
        println!("  {}", describe(&m));
    }
    Ok(exit::OK)
}

fn describe(m: &QualityMetrics) -> String {
    let mut line = format!(
        "PPL {:.4} ± {:.4} over {} tokens ({} chunks), {:.1} s",
        m.ppl, m.ppl_se, m.tokens_scored, m.chunks, m.seconds
    );
    if let (Some(kld), Some(se), Some(p99), Some(top1), Some(base)) =
        (m.kld_mean, m.kld_se, m.kld_p99, m.top1_pct, m.base_ppl)
    {
        line.push_str(&format!(
            "\n  PPL {:+.2}% vs the reference's {base:.4}; mean KLD {kld:.6} ± {se:.6} (99th percentile {p99:.4}); same top token {top1:.2}%",
            (m.ppl / base - 1.0) * 100.0
        ));
    }
    line
}
