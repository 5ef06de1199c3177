//! A small, defensive reader of a GGUF file's header metadata (architecture,
//! quantization, layer count), in pure Rust so the parent can label models
//! without loading them into llama.cpp. Arrays (the vocabulary) are skipped.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

const MAGIC: &[u8; 4] = b"GGUF";
/// Limits that no real header reaches; a corrupt file fails fast instead of
/// allocating gigabytes.
const MAX_STRING: u64 = 16 << 20;
const MAX_KV: u64 = 1 << 20;

/// A scalar metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    Int(i128),
    Float(f64),
    Bool(bool),
    Str(String),
    /// An array, with its length (its items are skipped).
    Array(u64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    pub tensor_count: u64,
    pub metadata: BTreeMap<String, GgufValue>,
}

impl GgufHeader {
    pub fn read(path: &Path) -> io::Result<GgufHeader> {
        let mut reader = BufReader::new(File::open(path)?);
        read_header(&mut reader)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.metadata.get(key) {
            Some(GgufValue::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i128> {
        match self.metadata.get(key) {
            Some(GgufValue::Int(i)) => Some(*i),
            _ => None,
        }
    }

    pub fn architecture(&self) -> Option<&str> {
        self.str("general.architecture")
    }

    /// `general.file_type`: a `llama_ftype` value.
    pub fn file_type(&self) -> Option<u32> {
        self.int("general.file_type")
            .and_then(|v| u32::try_from(v).ok())
    }

    /// Number of repeating layers (`<arch>.block_count`).
    pub fn block_count(&self) -> Option<u32> {
        let arch = self.architecture()?;
        self.int(&format!("{arch}.block_count"))
            .and_then(|v| u32::try_from(v).ok())
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_header(r: &mut impl Read) -> io::Result<GgufHeader> {
    let mut magic = [0u8; 4];
    r.read_exact(&mut magic)
        .map_err(|_| invalid("file is too short to be a GGUF model"))?;
    if &magic != MAGIC {
        return Err(invalid(format!(
            "not a GGUF file (it starts with {magic:02x?}, a GGUF file starts with \"GGUF\")"
        )));
    }
    let version = u32_le(r)?;
    if !(2..=3).contains(&version) {
        return Err(invalid(format!("unsupported GGUF version {version}")));
    }
    let tensor_count = u64_le(r)?;
    let kv_count = u64_le(r)?;
    if kv_count > MAX_KV {
        return Err(invalid(format!(
            "implausible metadata count {kv_count}: corrupt header"
        )));
    }
    let mut metadata = BTreeMap::new();
    for _ in 0..kv_count {
        let key = string(r)?;
        let kind = u32_le(r)?;
        let value = value(r, kind)?;
        metadata.insert(key, value);
    }
    Ok(GgufHeader {
        version,
        tensor_count,
        metadata,
    })
}

fn value(r: &mut impl Read, kind: u32) -> io::Result<GgufValue> {
    Ok(match kind {
        0 => GgufValue::Int(bytes::<1>(r)?[0] as i128),
        1 => GgufValue::Int(bytes::<1>(r)?[0] as i8 as i128),
        2 => GgufValue::Int(u16::from_le_bytes(bytes(r)?) as i128),
        3 => GgufValue::Int(i16::from_le_bytes(bytes(r)?) as i128),
        4 => GgufValue::Int(u32_le(r)? as i128),
        5 => GgufValue::Int(i32::from_le_bytes(bytes(r)?) as i128),
        6 => GgufValue::Float(f32::from_le_bytes(bytes(r)?) as f64),
        7 => GgufValue::Bool(bytes::<1>(r)?[0] != 0),
        8 => GgufValue::Str(string(r)?),
        9 => {
            let item_kind = u32_le(r)?;
            let len = u64_le(r)?;
            skip_array(r, item_kind, len)?;
            GgufValue::Array(len)
        }
        10 => GgufValue::Int(u64_le(r)? as i128),
        11 => GgufValue::Int(i64::from_le_bytes(bytes(r)?) as i128),
        12 => GgufValue::Float(f64::from_le_bytes(bytes(r)?)),
        other => {
            return Err(invalid(format!(
                "unknown metadata value type {other}: corrupt header"
            )));
        }
    })
}

fn skip_array(r: &mut impl Read, item_kind: u32, len: u64) -> io::Result<()> {
    let fixed = match item_kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    };
    match fixed {
        Some(size) => {
            let total = len
                .checked_mul(size)
                .ok_or_else(|| invalid("implausible array length: corrupt header"))?;
            let skipped = io::copy(&mut r.take(total), &mut io::sink())?;
            if skipped != total {
                return Err(invalid("file ends inside the header: truncated GGUF"));
            }
        }
        None => {
            for _ in 0..len {
                value(r, item_kind)?;
            }
        }
    }
    Ok(())
}

fn bytes<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    r.read_exact(&mut buf)
        .map_err(|_| invalid("file ends inside the header: truncated GGUF"))?;
    Ok(buf)
}

fn u32_le(r: &mut impl Read) -> io::Result<u32> {
    Ok(u32::from_le_bytes(bytes(r)?))
}

fn u64_le(r: &mut impl Read) -> io::Result<u64> {
    Ok(u64::from_le_bytes(bytes(r)?))
}

fn string(r: &mut impl Read) -> io::Result<String> {
    let len = u64_le(r)?;
    if len > MAX_STRING {
        return Err(invalid(format!(
            "implausible string length {len}: corrupt header"
        )));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)
        .map_err(|_| invalid("file ends inside the header: truncated GGUF"))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a minimal GGUF header: the given string and u32 metadata and a
    /// string array.
    pub fn header_bytes(strings: &[(&str, &str)], ints: &[(&str, u32)]) -> Vec<u8> {
        fn s(out: &mut Vec<u8>, v: &str) {
            out.extend((v.len() as u64).to_le_bytes());
            out.extend(v.as_bytes());
        }
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend(0u64.to_le_bytes());
        out.extend(((strings.len() + ints.len() + 1) as u64).to_le_bytes());
        for (k, v) in strings {
            s(&mut out, k);
            out.extend(8u32.to_le_bytes());
            s(&mut out, v);
        }
        for (k, v) in ints {
            s(&mut out, k);
            out.extend(4u32.to_le_bytes());
            out.extend(v.to_le_bytes());
        }
        s(&mut out, "tokenizer.ggml.tokens");
        out.extend(9u32.to_le_bytes());
        out.extend(8u32.to_le_bytes());
        out.extend(2u64.to_le_bytes());
        s(&mut out, "<s>");
        s(&mut out, "</s>");
        out
    }

    #[test]
    fn reads_scalars_and_skips_arrays() {
        let bytes = header_bytes(
            &[("general.architecture", "llama")],
            &[("general.file_type", 3), ("llama.block_count", 30)],
        );
        let h = read_header(&mut bytes.as_slice()).unwrap();
        assert_eq!(h.version, 3);
        assert_eq!(h.architecture(), Some("llama"));
        assert_eq!(h.file_type(), Some(3));
        assert_eq!(h.block_count(), Some(30));
        assert_eq!(h.metadata["tokenizer.ggml.tokens"], GgufValue::Array(2));
    }

    #[test]
    fn rejects_other_files_and_truncation() {
        let err = read_header(&mut b"PK\x03\x04rest".as_slice()).unwrap_err();
        assert!(err.to_string().contains("not a GGUF file"), "{err}");
        let bytes = header_bytes(&[("general.architecture", "llama")], &[]);
        let err = read_header(&mut &bytes[..bytes.len() - 3]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        assert!(read_header(&mut b"GG".as_slice()).is_err());
    }

    #[test]
    fn implausible_lengths_fail_without_allocating() {
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend(0u64.to_le_bytes());
        bytes.extend(1u64.to_le_bytes());
        bytes.extend(u64::MAX.to_le_bytes()); // key length
        let err = read_header(&mut bytes.as_slice()).unwrap_err();
        assert!(err.to_string().contains("implausible"), "{err}");
    }
}
