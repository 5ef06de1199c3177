//! A small, defensive reader of a GGUF file's header: its metadata
//! (architecture, quantization, shape hyperparameters) and its tensor table
//! (name, ggml type, dimensions), in pure Rust so the parent can label and
//! size models without loading them into llama.cpp. Metadata arrays (the
//! vocabulary) are skipped. What the figures imply for memory and speed is
//! in `footprint`.

use super::ggml_type;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

const MAGIC: &[u8; 4] = b"GGUF";
/// Limits that no real header reaches; a corrupt file fails fast instead of
/// allocating gigabytes.
const MAX_STRING: u64 = 16 << 20;
const MAX_KV: u64 = 1 << 20;
const MAX_TENSORS: u64 = 1 << 20;
/// ggml tensors have at most 4 dimensions.
const MAX_DIMS: u32 = 4;
/// Where tensor data starts is padded to this unless `general.alignment`
/// says otherwise.
const DEFAULT_ALIGNMENT: u64 = 32;

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

/// One entry of the tensor table.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// A `ggml_type` id (see `ggml_type`).
    pub ggml_type: u32,
    /// ggml's `ne`: the first dimension is the row length.
    pub dims: Vec<u64>,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Bytes of the tensor's data; `None` for a type `ggml_type` does not
    /// know.
    pub fn bytes(&self) -> Option<u64> {
        ggml_type::bytes_for(self.ggml_type, self.n_elements())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GgufHeader {
    pub version: u32,
    pub tensor_count: u64,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<TensorInfo>,
    /// Where the tensor data starts in the file: the header's length padded
    /// to the alignment.
    pub data_offset: u64,
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

    /// Why a server cannot simply keep this model's cache of a
    /// conversation for its next request, or `None` (plain attention):
    /// sliding-window layers drop what fell out of the window, and
    /// recurrent state (SSM, RWKV, short convolutions) cannot be cut back
    /// to the part the next request shares.
    pub fn cache_not_reusable(&self) -> Option<&'static str> {
        let arch = self.architecture()?;
        let prefix = format!("{arch}.");
        let has = |part: &str| {
            self.metadata.keys().any(|k| {
                k.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.starts_with(part))
            })
        };
        if has("ssm.") || has("wkv.") || has("shortconv.") {
            return Some("recurrent layers, whose state cannot be cut back to a shared prefix");
        }
        if self
            .int(&format!("{arch}.attention.sliding_window"))
            .is_some_and(|w| w > 0)
        {
            return Some("sliding-window attention, which drops what fell out of the window");
        }
        None
    }

    /// `general.file_type`: a `llama_ftype` value.
    pub fn file_type(&self) -> Option<u32> {
        self.int("general.file_type")
            .and_then(|v| u32::try_from(v).ok())
    }

    /// An integer hyperparameter of the architecture, `<arch>.<key>`.
    fn arch_u32(&self, key: &str) -> Option<u32> {
        let arch = self.architecture()?;
        self.int(&format!("{arch}.{key}"))
            .and_then(|v| u32::try_from(v).ok())
    }

    /// Number of repeating layers (`<arch>.block_count`).
    pub fn block_count(&self) -> Option<u32> {
        self.arch_u32("block_count")
    }

    /// Experts per layer of a mixture-of-experts model (`<arch>.expert_count`).
    pub fn n_expert(&self) -> Option<u32> {
        self.arch_u32("expert_count").filter(|&n| n > 0)
    }

    /// The context length the model was trained with.
    pub fn n_ctx_train(&self) -> Option<u32> {
        self.arch_u32("context_length")
    }

    /// The embedding width.
    pub fn n_embd(&self) -> Option<u32> {
        self.arch_u32("embedding_length")
    }

    /// Attention (query) heads per layer.
    pub fn n_head(&self) -> Option<u32> {
        self.arch_u32("attention.head_count")
    }

    /// Key/value heads per layer: fewer than `n_head` with grouped-query
    /// attention, the same without (the key's absence means the same).
    /// `None` where the count differs per layer (stored as an array).
    pub fn n_head_kv(&self) -> Option<u32> {
        let arch = self.architecture()?;
        match self
            .metadata
            .get(&format!("{arch}.attention.head_count_kv"))
        {
            Some(GgufValue::Int(v)) => u32::try_from(*v).ok(),
            Some(_) => None,
            None => self.n_head(),
        }
    }

    /// Width of one key head: `<arch>.attention.key_length`, else
    /// n_embd / n_head (llama.cpp's own fallback).
    pub fn key_length(&self) -> Option<u32> {
        self.arch_u32("attention.key_length")
            .or_else(|| self.default_head_dim())
    }

    /// Width of one value head, as `key_length`.
    pub fn value_length(&self) -> Option<u32> {
        self.arch_u32("attention.value_length")
            .or_else(|| self.default_head_dim())
    }

    fn default_head_dim(&self) -> Option<u32> {
        let n_head = self.n_head().filter(|&n| n > 0)?;
        Some(self.n_embd()? / n_head)
    }

    /// The number of parameters: elements summed over every tensor.
    pub fn parameter_count(&self) -> u64 {
        self.tensors.iter().map(TensorInfo::n_elements).sum()
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Counts the bytes read, so the reader knows where the header ends.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_header(r: &mut impl Read) -> io::Result<GgufHeader> {
    let r = &mut Counting { inner: r, count: 0 };
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
    if tensor_count > MAX_TENSORS {
        return Err(invalid(format!(
            "implausible tensor count {tensor_count}: corrupt header"
        )));
    }
    let tensors = (0..tensor_count)
        .map(|_| tensor_info(r))
        .collect::<io::Result<Vec<_>>>()?;
    let alignment = match metadata.get("general.alignment") {
        Some(GgufValue::Int(a)) if *a > 0 => u64::try_from(*a).unwrap_or(DEFAULT_ALIGNMENT),
        _ => DEFAULT_ALIGNMENT,
    };
    Ok(GgufHeader {
        version,
        tensor_count,
        metadata,
        tensors,
        data_offset: r.count.div_ceil(alignment) * alignment,
    })
}

fn tensor_info(r: &mut impl Read) -> io::Result<TensorInfo> {
    let name = string(r)?;
    let n_dims = u32_le(r)?;
    if n_dims > MAX_DIMS {
        return Err(invalid(format!(
            "tensor {name} has {n_dims} dimensions (at most {MAX_DIMS}): corrupt header"
        )));
    }
    let dims = (0..n_dims)
        .map(|_| u64_le(r))
        .collect::<io::Result<Vec<_>>>()?;
    if dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .is_none()
    {
        return Err(invalid(format!(
            "tensor {name} has implausible dimensions {dims:?}: corrupt header"
        )));
    }
    Ok(TensorInfo {
        name,
        ggml_type: u32_le(r)?,
        dims,
        offset: u64_le(r)?,
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

    /// A tensor of a synthetic model: name, ggml type id, dimensions.
    pub type Tensor<'a> = (&'a str, u32, &'a [u64]);

    /// Writes a minimal GGUF header: the given string and u32 metadata and a
    /// string array.
    pub fn header_bytes(strings: &[(&str, &str)], ints: &[(&str, u32)]) -> Vec<u8> {
        header_with_tensors(strings, ints, &[])
    }

    fn s(out: &mut Vec<u8>, v: &str) {
        out.extend((v.len() as u64).to_le_bytes());
        out.extend(v.as_bytes());
    }

    /// `header_bytes` with a tensor table, each tensor's data at the next
    /// 32-byte boundary.
    pub fn header_with_tensors(
        strings: &[(&str, &str)],
        ints: &[(&str, u32)],
        tensors: &[Tensor],
    ) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(3u32.to_le_bytes());
        out.extend((tensors.len() as u64).to_le_bytes());
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
        let mut offset = 0u64;
        for &(name, ggml_type, dims) in tensors {
            s(&mut out, name);
            out.extend((dims.len() as u32).to_le_bytes());
            for d in dims {
                out.extend(d.to_le_bytes());
            }
            out.extend(ggml_type.to_le_bytes());
            out.extend(offset.to_le_bytes());
            let n: u64 = dims.iter().product();
            offset += ggml_type::bytes_for(ggml_type, n)
                .unwrap()
                .next_multiple_of(32);
        }
        out
    }

    pub fn parse(bytes: &[u8]) -> GgufHeader {
        read_header(&mut &bytes[..]).unwrap()
    }

    /// A whole synthetic model file: the header, padding, and zeroed data.
    pub fn model_bytes(
        strings: &[(&str, &str)],
        ints: &[(&str, u32)],
        tensors: &[Tensor],
    ) -> Vec<u8> {
        let mut out = header_with_tensors(strings, ints, tensors);
        out.resize(out.len().next_multiple_of(32), 0);
        for &(_, ggml_type, dims) in tensors {
            let bytes = ggml_type::bytes_for(ggml_type, dims.iter().product()).unwrap();
            out.resize(out.len() + bytes.next_multiple_of(32) as usize, 0);
        }
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
    fn names_the_models_whose_conversation_cache_a_server_cannot_keep() {
        let read = |arch: &str, ints: &[(&str, u32)]| {
            let bytes = header_bytes(&[("general.architecture", arch)], ints);
            read_header(&mut bytes.as_slice()).unwrap()
        };
        assert_eq!(
            read("llama", &[("llama.block_count", 30)]).cache_not_reusable(),
            None
        );
        let gemma = read("gemma3", &[("gemma3.attention.sliding_window", 512)]);
        assert!(
            gemma
                .cache_not_reusable()
                .unwrap()
                .contains("sliding-window")
        );
        let mamba = read("mamba", &[("mamba.ssm.state_size", 16)]);
        assert!(mamba.cache_not_reusable().unwrap().contains("recurrent"));
        // Another architecture's key says nothing about this one.
        let llama = read("llama", &[("gemma3.attention.sliding_window", 512)]);
        assert_eq!(llama.cache_not_reusable(), None);
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

    #[test]
    fn reads_the_tensor_table_and_where_the_data_starts() {
        let tensors: &[Tensor] = &[
            ("token_embd.weight", 3, &[64, 100]),
            ("output_norm.weight", 0, &[64]),
        ];
        let bytes = model_bytes(&[("general.architecture", "llama")], &[], tensors);
        let h = read_header(&mut bytes.as_slice()).unwrap();
        assert_eq!(h.tensors.len(), 2);
        let embd = h.tensor("token_embd.weight").unwrap();
        assert_eq!((embd.ggml_type, embd.dims.as_slice()), (3, &[64, 100][..]));
        assert_eq!(embd.n_elements(), 6400);
        assert_eq!(embd.bytes(), Some(200 * 20));
        assert_eq!(h.tensors[1].offset, 4000);
        assert_eq!(h.parameter_count(), 6464);
        assert_eq!(h.data_offset % 32, 0);
        let header_len =
            header_with_tensors(&[("general.architecture", "llama")], &[], tensors).len();
        assert_eq!(h.data_offset, (header_len as u64).next_multiple_of(32));
        let last = &h.tensors[1];
        assert_eq!(h.data_offset + last.offset + 256, bytes.len() as u64);
    }

    #[test]
    fn reads_attention_shape_with_fallbacks() {
        let strings = &[("general.architecture", "llama")];
        let full = header_bytes(
            strings,
            &[
                ("llama.context_length", 8192),
                ("llama.embedding_length", 576),
                ("llama.attention.head_count", 9),
                ("llama.attention.head_count_kv", 3),
                ("llama.attention.key_length", 128),
            ],
        );
        let h = read_header(&mut full.as_slice()).unwrap();
        assert_eq!(h.n_ctx_train(), Some(8192));
        assert_eq!((h.n_head(), h.n_head_kv()), (Some(9), Some(3)));
        assert_eq!(h.key_length(), Some(128));
        assert_eq!(h.value_length(), Some(64), "n_embd / n_head");
        let bare = header_bytes(
            strings,
            &[
                ("llama.embedding_length", 576),
                ("llama.attention.head_count", 9),
            ],
        );
        let h = read_header(&mut bare.as_slice()).unwrap();
        assert_eq!(
            h.n_head_kv(),
            Some(9),
            "no GQA key: as many KV heads as heads"
        );
        assert_eq!(h.key_length(), Some(64));
        assert_eq!(h.n_ctx_train(), None);
    }

    #[test]
    fn a_corrupt_tensor_table_is_refused() {
        let mut bytes = header_with_tensors(&[], &[], &[("t", 0, &[4])]);
        let dims_at = bytes.len() - 8 - 4 - 8 - 4;
        bytes[dims_at..dims_at + 4].copy_from_slice(&9u32.to_le_bytes());
        let err = read_header(&mut bytes.as_slice()).unwrap_err();
        assert!(err.to_string().contains("dimensions"), "{err}");
    }
}
