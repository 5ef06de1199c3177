//! Makes the derived quantizations a sweep needs and does not have yet, each
//! in a child process running llama.cpp's quantizer. A file is written under
//! a temporary name and renamed into the cache only once complete, so an
//! interrupted quantization never leaves a file that looks finished. A
//! variant that cannot be made is reported, not fatal: its trials become
//! failed rows.

use super::PlannedVariant;
use crate::protocol::{ChildJob, ChildReply, QuantizeJob};
use crate::runner::Children;
use anyhow::Context;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

/// Quantizing a 70B model takes a while; a hang still ends.
const QUANTIZE_TIMEOUT: Duration = Duration::from_secs(4 * 3600);

/// `name` with everything but letters, digits, '.', '_' and '-' replaced, so
/// a model name cannot reach outside the logs folder.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_string()
}

/// Removes `<output>.partial-<pid>` files left by quantizations whose process
/// is gone (a sweep killed while deriving): they can be gigabytes.
fn remove_stale_partials(output: &Path) {
    let (Some(folder), Some(name)) = (output.parent(), output.file_name()) else {
        return;
    };
    let prefix = format!("{}.partial-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file_name
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        if !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Derives every variant in `needed` (by identity) whose file is missing.
/// Returns the variants that could not be made, identity → reason.
pub fn derive_missing(
    variants: &[PlannedVariant],
    needed: &HashSet<String>,
    children: &mut dyn Children,
    logs: &Path,
    say: &mut dyn FnMut(String),
) -> anyhow::Result<HashMap<String, String>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let mut unavailable = HashMap::new();
    for planned in variants {
        let Some((source, quant)) = &planned.derive_from else {
            continue;
        };
        if planned.is_ready() || !needed.contains(&planned.variant.identity) {
            continue;
        }
        let output = &planned.variant.path;
        let folder = output.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create the model cache {}", folder.display()))?;
        remove_stale_partials(output);
        let partial = output.with_extension(format!("gguf.partial-{}", std::process::id()));
        let log = logs.join(format!(
            "quantize-{}-{}.log",
            file_safe(&planned.variant.name),
            quant.name
        ));
        say(format!(
            "deriving {} {} from {} (llama.cpp quantizer, log: {})",
            planned.variant.name,
            quant.name,
            source.display(),
            log.display()
        ));
        let job = ChildJob::Quantize(QuantizeJob {
            source: source.clone(),
            output: partial.clone(),
            quant_type: quant.name.to_string(),
            threads,
        });
        let ending = children.run(&job, &log, QUANTIZE_TIMEOUT)?;
        if ending.interrupted {
            let _ = std::fs::remove_file(&partial);
            say(format!(
                "  stopped deriving {} {}",
                planned.variant.name, quant.name
            ));
            return Ok(unavailable);
        }
        match ending.reply {
            Ok(ChildReply::Quantized(report)) => {
                // llama.cpp's writer does not sync: make the file durable
                // before it gets the name that marks it complete.
                std::fs::File::open(&partial)
                    .and_then(|f| f.sync_all())
                    .and_then(|_| std::fs::rename(&partial, output))
                    .with_context(|| {
                        format!("cannot move the quantized model into {}", output.display())
                    })?;
                crate::store::sync_parent(output)?;
                say(format!(
                    "  {} written: {:.1} MiB in {:.1} s",
                    output.display(),
                    report.output_bytes as f64 / (1 << 20) as f64,
                    report.seconds
                ));
            }
            other => {
                let _ = std::fs::remove_file(&partial);
                let reason = match other {
                    Ok(ChildReply::Failed { reason }) => reason,
                    Ok(reply) => format!("unexpected reply {reply:?}"),
                    Err(why) if ending.timed_out => format!("quantization timed out: {why}"),
                    Err(why) => format!(
                        "the quantizer process ended ({}) without a result: {why}",
                        ending.exit
                    ),
                };
                let reason = format!(
                    "could not derive {} {}: {reason}",
                    planned.variant.name, quant.name
                );
                say(format!("  {reason}"));
                unavailable.insert(planned.variant.identity.clone(), reason);
            }
        }
    }
    Ok(unavailable)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stale_partial_files_are_removed_and_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("m.Q8_0.gguf");
        let dead = dir.path().join("m.Q8_0.gguf.partial-999999999");
        let live = dir
            .path()
            .join(format!("m.Q8_0.gguf.partial-{}", std::process::id()));
        let other = dir.path().join("x.gguf.partial-999999999");
        for f in [&dead, &live, &other] {
            std::fs::write(f, b"x").unwrap();
        }
        super::remove_stale_partials(&output);
        assert!(!dead.exists() && live.exists() && other.exists());
    }

    #[test]
    fn model_names_become_safe_file_names() {
        assert_eq!(super::file_safe("../../etc/x y"), "_.._etc_x_y");
        assert_eq!(super::file_safe("qwen2.5-7b"), "qwen2.5-7b");
    }
}
