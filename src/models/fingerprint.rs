//! A fast, stable identity for a model file: sha256 over its size and 16
//! windows of 64 KiB spread evenly from its first to its last byte (the whole
//! file when it is under 1 MiB). It changes when the weights change, stays the
//! same when the file is moved or renamed, and costs milliseconds even for a
//! 70 GB model, so trial ids and the quantization cache can use it freely.

use anyhow::Context;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const WINDOW: u64 = 64 << 10;
const WINDOWS: u64 = 16;

/// Hex sha256 of the sampled file content (see the module comment).
pub fn fingerprint(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file
        .metadata()
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    let mut hasher = Sha256::new();
    hasher.update(size.to_le_bytes());
    let mut buf = vec![0u8; WINDOW as usize];
    if size <= WINDOW * WINDOWS {
        let mut all = Vec::with_capacity(size as usize);
        file.read_to_end(&mut all)
            .with_context(|| format!("cannot read {}", path.display()))?;
        hasher.update(&all);
    } else {
        let last_start = size - WINDOW;
        for i in 0..WINDOWS {
            let offset = last_start * i / (WINDOWS - 1);
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut buf))
                .with_context(|| format!("cannot read {}", path.display()))?;
            hasher.update(&buf);
        }
    }
    Ok(crate::digest::hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.join(name);
        File::create(&path).unwrap().write_all(bytes).unwrap();
        path
    }

    #[test]
    fn same_content_same_fingerprint_wherever_it_lives() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let a = fingerprint(&write(dir.path(), "a.gguf", &data)).unwrap();
        let b = fingerprint(&write(dir.path(), "b.gguf", &data)).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn changes_in_sampled_bytes_or_size_change_it() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let base = fingerprint(&write(dir.path(), "a", &data)).unwrap();
        let mut last_byte = data.clone();
        *last_byte.last_mut().unwrap() ^= 1;
        assert_ne!(
            base,
            fingerprint(&write(dir.path(), "b", &last_byte)).unwrap()
        );
        let mut first_byte = data.clone();
        first_byte[0] ^= 1;
        assert_ne!(
            base,
            fingerprint(&write(dir.path(), "c", &first_byte)).unwrap()
        );
        assert_ne!(
            base,
            fingerprint(&write(dir.path(), "d", &data[..data.len() - 1])).unwrap()
        );
        let small = fingerprint(&write(dir.path(), "e", b"tiny")).unwrap();
        assert_ne!(
            small,
            fingerprint(&write(dir.path(), "f", b"tinY")).unwrap()
        );
    }
}
