//! Model files: which variants a sweep measures (each `[[model]]` source and
//! the quantizations derived from it), their identities, where derived files
//! are cached, and deriving the missing ones.
//!
//! Only `quantize` (which runs in a child process) touches llama.cpp; the rest
//! reads files in pure Rust.

pub mod derive;
pub mod fingerprint;
pub mod footprint;
pub mod ggml_type;
pub mod gguf;
pub mod placement;
pub mod quant_types;
pub mod quantize;

use crate::config::{ModelEntry, SweepConfig};
use crate::protocol::ModelVariant;
use quant_types::{QuantType, name_of_ftype};
use std::path::{Path, PathBuf};

/// A variant the sweep will measure, and how to obtain its file.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedVariant {
    pub variant: ModelVariant,
    /// `Some` for a derived quantization: its source and type.
    pub derive_from: Option<(PathBuf, QuantType)>,
}

impl PlannedVariant {
    /// Whether the file exists (a derived one may not be made yet).
    pub fn is_ready(&self) -> bool {
        self.variant.path.is_file()
    }
}

/// The variants of every model entry, in sweep.toml order: the source first
/// (unless `include_source = false`), then the derived types in the order
/// given.
pub fn plan_variants(config: &SweepConfig) -> anyhow::Result<Vec<PlannedVariant>> {
    let mut planned = Vec::new();
    for entry in &config.models {
        planned.extend(variants_of(entry, &config.sweep.model_cache)?);
    }
    Ok(planned)
}

fn variants_of(entry: &ModelEntry, cache: &Path) -> anyhow::Result<Vec<PlannedVariant>> {
    let source_fp = fingerprint::fingerprint(&entry.path)?;
    let mut variants = Vec::new();
    if entry.include_source {
        variants.push(PlannedVariant {
            variant: ModelVariant {
                name: entry.name.clone(),
                variant: source_label(&entry.path),
                path: entry.path.clone(),
                identity: format!("file:{}", &source_fp[..32]),
            },
            derive_from: None,
        });
    }
    for quant in &entry.quantize {
        variants.push(PlannedVariant {
            variant: ModelVariant {
                name: entry.name.clone(),
                variant: quant.name.to_string(),
                path: derived_path(cache, &entry.path, &source_fp, *quant),
                identity: format!("derived:{}:{}", &source_fp[..32], quant.name),
            },
            derive_from: Some((entry.path.clone(), *quant)),
        });
    }
    Ok(variants)
}

/// The quantization of a source file as its GGUF header states it, e.g.
/// `Q4_1`; `unknown` when the header cannot be read (the trial will then fail
/// with llama.cpp's own reason).
pub fn source_label(path: &Path) -> String {
    match gguf::GgufHeader::read(path) {
        Ok(header) => match header.file_type() {
            Some(ftype) => {
                name_of_ftype(ftype).map_or_else(|| format!("ftype{ftype}"), str::to_string)
            }
            None => "unknown".into(),
        },
        Err(_) => "unknown".into(),
    }
}

/// `<cache>/<stem>.<source fingerprint>.<TYPE>.gguf`: the cache key is the
/// source's content, so an edited source is never matched to a stale file.
pub fn derived_path(cache: &Path, source: &Path, source_fp: &str, quant: QuantType) -> PathBuf {
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    cache.join(format!("{stem}.{}.{}.gguf", &source_fp[..12], quant.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_files_are_keyed_by_source_content_and_type() {
        let q = QuantType::from_name("Q8_0").unwrap();
        let p = derived_path(
            Path::new("models/derived"),
            Path::new("m/Small.Q4_1.gguf"),
            "abcdef0123456789",
            q,
        );
        assert_eq!(
            p,
            Path::new("models/derived/Small.Q4_1.abcdef012345.Q8_0.gguf")
        );
    }

    #[test]
    fn source_label_reads_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gguf");
        std::fs::write(
            &path,
            gguf::tests::header_bytes(
                &[("general.architecture", "llama")],
                &[("general.file_type", 3)],
            ),
        )
        .unwrap();
        assert_eq!(source_label(&path), "Q4_1");
        std::fs::write(&path, b"not a model").unwrap();
        assert_eq!(source_label(&path), "unknown");
    }
}
