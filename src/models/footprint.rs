//! What a model's header implies for memory and speed, without loading it:
//! the bytes of its weights, the bytes one generated token reads from memory
//! (which, divided into the memory bandwidth, bounds generation speed), and
//! the KV cache a context of n tokens needs.

use super::ggml_type;
use super::gguf::{GgufHeader, TensorInfo};
use crate::knobs::KvType;

/// The token embedding table: looked up by token id, not multiplied.
const TOKEN_EMBD: &str = "token_embd.weight";
/// The output (LM head) matrix; absent when it is tied to the embeddings.
const OUTPUT: &str = "output.weight";

impl GgufHeader {
    /// Bytes of all tensor data; `None` when a tensor has a type
    /// `ggml_type` does not know.
    pub fn weight_bytes(&self) -> Option<u64> {
        self.tensors.iter().map(TensorInfo::bytes).sum()
    }

    /// Bytes of weights read from memory to generate one token.
    ///
    /// A decode step multiplies the hidden state of the one new token by
    /// every weight matrix of every layer and by the output matrix, so each
    /// of those is read once in full. The token embedding table is the
    /// exception: it is indexed, not multiplied, so only the new token's row
    /// is read. A model with tied embeddings has no `output.weight` and uses
    /// `token_embd.weight` as its output matrix too: then the table is read
    /// whole. In a mixture of experts, the expert tensors (`*_exps`) are read
    /// only for the `expert_used_count` of `expert_count` experts the router
    /// picks, so they count pro rata.
    ///
    /// Not included: the KV cache that attention reads (it grows with the
    /// context; small next to the weights for short ones) and activations.
    pub fn bytes_read_per_token(&self) -> Option<u64> {
        let tied = self.tensor(OUTPUT).is_none();
        let experts = self.expert_fraction();
        let mut total = 0f64;
        for t in &self.tensors {
            let bytes = t.bytes()? as f64;
            total += if t.name == TOKEN_EMBD && !tied {
                bytes / t.dims.get(1).copied().unwrap_or(1).max(1) as f64
            } else if t.name.contains("_exps") {
                bytes * experts
            } else {
                bytes
            };
        }
        Some(total.round() as u64)
    }

    /// The share of experts one token uses (1 for a dense model).
    fn expert_fraction(&self) -> f64 {
        let Some(arch) = self.architecture() else {
            return 1.0;
        };
        let count = |key: &str| self.int(&format!("{arch}.{key}")).filter(|&n| n > 0);
        match (count("expert_used_count"), count("expert_count")) {
            (Some(used), Some(all)) if used <= all => used as f64 / all as f64,
            _ => 1.0,
        }
    }

    /// Bytes of the KV cache for `n_ctx` tokens: per layer and token, a key
    /// of `n_head_kv × key_length` elements of `type_k` and a value of
    /// `n_head_kv × value_length` elements of `type_v`. This is what
    /// standard attention allocates; models with sliding-window layers need
    /// less, and recurrent models none. `None` when the header lacks the
    /// attention shape (or gives it per layer).
    pub fn kv_cache_bytes(&self, n_ctx: u32, type_k: KvType, type_v: KvType) -> Option<u64> {
        let layers = self.block_count()? as f64;
        let heads = self.n_head_kv()? as f64;
        let k = heads
            * self.key_length()? as f64
            * ggml_type::bytes_per_element(type_k.ggml_type_id())?;
        let v = heads
            * self.value_length()? as f64
            * ggml_type::bytes_per_element(type_v.ggml_type_id())?;
        Some((layers * n_ctx as f64 * (k + v)).ceil() as u64)
    }
}

#[cfg(test)]
mod tests {
    use crate::knobs::KvType;
    use crate::models::gguf::GgufHeader;
    use crate::models::gguf::tests::{Tensor, model_bytes, parse};
    use std::path::Path;

    const F32: u32 = 0;
    const Q8_0: u32 = 8;

    /// A two-layer toy model: embeddings 64 wide, vocabulary 1000.
    fn toy(output: bool, ints: &[(&str, u32)]) -> GgufHeader {
        let mut tensors: Vec<Tensor> = vec![
            ("token_embd.weight", Q8_0, &[64, 1000]),
            ("blk.0.attn_q.weight", Q8_0, &[64, 64]),
            ("blk.1.attn_q.weight", Q8_0, &[64, 64]),
            ("output_norm.weight", F32, &[64]),
        ];
        if output {
            tensors.push(("output.weight", Q8_0, &[64, 1000]));
        }
        parse(&model_bytes(
            &[("general.architecture", "llama")],
            ints,
            &tensors,
        ))
    }

    const EMBD: u64 = 64 * 1000 / 32 * 34; // 68 000
    const ROW: u64 = EMBD / 1000; // 68
    const LAYERS: u64 = 2 * 64 * 64 / 32 * 34; // 8 704
    const NORM: u64 = 64 * 4;

    #[test]
    fn an_untied_model_reads_one_embedding_row_and_the_whole_output_matrix() {
        let h = toy(true, &[]);
        assert_eq!(h.weight_bytes(), Some(2 * EMBD + LAYERS + NORM));
        assert_eq!(h.bytes_read_per_token(), Some(ROW + LAYERS + NORM + EMBD));
    }

    #[test]
    fn a_tied_model_reads_its_embedding_table_whole() {
        let h = toy(false, &[]);
        assert_eq!(h.weight_bytes(), Some(EMBD + LAYERS + NORM));
        assert_eq!(h.bytes_read_per_token(), h.weight_bytes());
    }

    #[test]
    fn experts_count_pro_rata() {
        let tensors: &[Tensor] = &[
            ("output.weight", F32, &[8, 10]),
            ("blk.0.ffn_up_exps.weight", F32, &[8, 16, 8]),
        ];
        let ints = &[("llama.expert_count", 8), ("llama.expert_used_count", 2)];
        let bytes = model_bytes(&[("general.architecture", "llama")], ints, tensors);
        let h = parse(&bytes);
        assert_eq!(h.bytes_read_per_token(), Some(320 + 8 * 16 * 8 * 4 / 4));
    }

    #[test]
    fn an_unknown_tensor_type_leaves_the_totals_unknown() {
        let bytes = model_bytes(&[], &[], &[("a", F32, &[4])]);
        let mut h = parse(&bytes);
        h.tensors[0].ggml_type = 4; // Q4_2, removed from ggml
        assert_eq!(h.weight_bytes(), None);
        assert_eq!(h.bytes_read_per_token(), None);
    }

    #[test]
    fn kv_cache_bytes_follow_layers_heads_and_types() {
        let h = toy(
            true,
            &[
                ("llama.block_count", 30),
                ("llama.embedding_length", 576),
                ("llama.attention.head_count", 9),
                ("llama.attention.head_count_kv", 3),
            ],
        );
        // 30 layers × 3 KV heads × 64 wide × (K + V).
        let per_token_f16 = 30 * 3 * 64 * 2 * 2;
        assert_eq!(
            h.kv_cache_bytes(4096, KvType::F16, KvType::F16),
            Some(4096 * per_token_f16)
        );
        assert_eq!(
            h.kv_cache_bytes(4096, KvType::Q8_0, KvType::Q4_0),
            Some(4096 * 30 * 3 * (64 / 32) * (34 + 18))
        );
        assert_eq!(
            h.kv_cache_bytes(100, KvType::F32, KvType::F16),
            Some(100 * 30 * 3 * 64 * (4 + 2))
        );
        assert_eq!(
            toy(true, &[]).kv_cache_bytes(1, KvType::F16, KvType::F16),
            None
        );
    }

    /// The real demo model, when it is present (the synthetic tests above
    /// cover the logic either way).
    #[test]
    fn the_demo_model_adds_up() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        let Ok(h) = GgufHeader::read(&path) else {
            eprintln!("skipped: {} is absent", path.display());
            return;
        };
        let params = h.parameter_count();
        assert!((134_000_000..135_000_000).contains(&params), "{params}");
        assert_eq!(h.block_count(), Some(30));
        assert_eq!(
            (h.n_head(), h.n_head_kv(), h.key_length()),
            (Some(9), Some(3), Some(64))
        );
        assert_eq!(h.n_ctx_train(), Some(8192));
        let file = std::fs::metadata(&path).unwrap().len();
        let weights = h.weight_bytes().unwrap();
        let data = file - h.data_offset;
        // The data section is the tensors, each padded to the alignment.
        assert!(weights <= data && data - weights < 32 * h.tensors.len() as u64);
        // SmolLM2 ties its embeddings: every weight is read per token.
        assert!(h.tensor("output.weight").is_none());
        assert_eq!(h.bytes_read_per_token(), Some(weights));
        assert_eq!(
            h.kv_cache_bytes(2048, KvType::F16, KvType::F16),
            Some(2048 * 30 * 3 * 64 * 2 * 2)
        );
    }
}
