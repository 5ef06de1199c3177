//! `llama-sweep init MODEL.gguf`: gathers what `doctor` knows (the model's
//! header, the GPUs this build sees and their free memory, the cores, the
//! host memory and its bandwidth), lets `init::propose` choose the sweep,
//! and writes it as a commented sweep file. It never overwrites a file and
//! needs no network.

use crate::cli::InitArgs;
use crate::config::ConfigError;
use crate::init::{self, Goal, Hardware, ModelShape, Wishes};
use crate::models::gguf::GgufHeader;
use crate::protocol::{ChildJob, ChildReply, TokenizeJob};
use crate::runner::child::ChildRunner;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub fn run(args: &InitArgs) -> anyhow::Result<()> {
    let bad = |message: String| ConfigError::new(&args.model, None, message);
    let goal = Goal::from_name(&args.objective).ok_or_else(|| {
        bad(format!(
            "--objective {:?} is not one of {}",
            args.objective,
            Goal::NAMES.join(", ")
        ))
    })?;
    let header = GgufHeader::read(&args.model)
        .map_err(|e| bad(format!("cannot read it as a GGUF model: {e}")))?;
    let name = args
        .model
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let out = match &args.output {
        Some(path) => path.clone(),
        None => PathBuf::from(format!("{}.toml", init::sweep_name(&name))),
    };
    if out.exists() {
        return Err(ConfigError::new(
            &out,
            None,
            "already exists: init never overwrites a file; remove it or name another with -o",
        )
        .into());
    }
    if let Some(python) = &args.app_python {
        if !python.is_file() {
            return Err(bad(format!("--app-python {}: no such file", python.display())).into());
        }
    }
    let shape =
        ModelShape::of(&header, model_path_for(&args.model, &out), name).ok_or_else(|| {
            bad("its header lacks the layer count or has unknown tensor types".into())
        })?;
    let prompt = match (&args.prompts, args.prompt_tokens) {
        (Some(file), _) => Some(prompt_of_file(&args.model, file)?),
        (None, Some(n)) => Some((n, "the app's prompt, as --prompt-tokens says".to_string())),
        (None, None) => None,
    };
    eprintln!("looking at this machine (llama.cpp's devices, memory bandwidth) ...");
    let mut hw = hardware()?;
    if !args.gpus.is_empty() {
        hw.gpus = args
            .gpus
            .iter()
            .enumerate()
            .map(|(i, gib)| init::Gpu {
                name: format!("GPU{i} (--gpu)"),
                free_bytes: (gib.max(0.0) * f64::from(1u32 << 30)) as u64,
            })
            .collect();
    }
    let wishes = Wishes {
        goal,
        budget: args.budget.into(),
        app_python: args.app_python.as_ref().map(|p| {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string()
        }),
        app_python_runs: args.app_python.as_deref().and_then(app_llama_cpp_python),
        users: args.users,
        context: args.context,
        prompt,
        answer_tokens: args.answer_tokens,
    };
    let proposal = init::propose(&shape, &hw, &wishes);
    let command = std::iter::once("llama-sweep".to_string())
        .chain(std::env::args().skip(1))
        .map(|a| if a.contains(' ') { format!("{a:?}") } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    let text = init::render::sweep_file(&proposal, &command);
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    // create_new: a file that appeared meanwhile is not overwritten either.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out)
        .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
        .with_context(|| format!("cannot write {}", out.display()))?;
    print!(
        "{}",
        init::render::summary(&proposal, &out.display().to_string())
    );
    Ok(())
}

/// The model's path as the sweep file at `out` reads it: relative to the
/// file's folder when the model lies below it, else absolute.
fn model_path_for(model: &Path, out: &Path) -> String {
    let model = std::path::absolute(model).unwrap_or_else(|_| model.to_path_buf());
    let folder = std::path::absolute(out)
        .ok()
        .and_then(|o| o.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    model
        .strip_prefix(&folder)
        .map(Path::to_path_buf)
        .unwrap_or(model)
        .display()
        .to_string()
}

/// The app's typical prompt length from its sample prompts in `file`,
/// counted by `model`'s own tokenizer in a child, and where it came from.
fn prompt_of_file(model: &Path, file: &Path) -> anyhow::Result<(u32, String)> {
    let texts = init::prompts::read(file)?;
    let job = ChildJob::Tokenize(TokenizeJob {
        model: model.to_path_buf(),
        texts,
    });
    let log = std::env::temp_dir().join(format!("llama-sweep-tokenize-{}.log", std::process::id()));
    let ending = ChildRunner::current()?.run(&job, &log, Duration::from_secs(300))?;
    let counts = match ending.reply {
        Ok(ChildReply::Tokenized { counts }) => counts,
        Ok(ChildReply::Failed { reason }) => {
            bail!(
                "cannot count the prompts' tokens: {reason} (log: {})",
                log.display()
            )
        }
        other => bail!(
            "cannot count the prompts' tokens: the tokenizer process ended ({}) with {other:?}; \
             see {}",
            ending.exit,
            log.display()
        ),
    };
    let _ = std::fs::remove_file(&log);
    init::prompts::typical(&counts, &file.display().to_string())
        .ok_or_else(|| anyhow::anyhow!("{} holds no prompt", file.display()))
}

/// This machine as `init` sees it: llama.cpp's devices from a probe child.
fn hardware() -> anyhow::Result<Hardware> {
    let (probe, log) = super::run_setup::probe(&mut ChildRunner::current()?)?;
    let _ = std::fs::remove_file(log);
    Ok(Hardware::here(&probe))
}

/// What `python`'s llama-cpp-python is, when it imports llama_cpp; `None`
/// (said on the terminal, with why) when it does not.
fn app_llama_cpp_python(python: &Path) -> Option<String> {
    use crate::runtime::Runtime;
    let log = std::env::temp_dir().join(format!("llama-sweep-init-{}.log", std::process::id()));
    let probed = crate::runtime::python::PythonRuntime::new(python).probe(&log);
    let _ = std::fs::remove_file(&log);
    match probed {
        Ok(info) => Some(info.describe()),
        Err(e) => {
            eprintln!(
                "note: {} cannot run the trials: {}",
                python.display(),
                e.reason
            );
            None
        }
    }
}
