//! What `init` needs to know about a model, read from its GGUF header: its
//! size by part (repeating layers, their experts, the rest), what one
//! token reads and the KV cache one token of context needs.

use crate::knobs::KvType;
use crate::models::gguf::GgufHeader;
use crate::models::quant_types;

#[derive(Debug, Clone, PartialEq)]
pub struct ModelShape {
    /// The path as the sweep file will hold it.
    pub path: String,
    pub name: String,
    pub architecture: String,
    /// `F16`, `Q4_K_M` ... (`None`: a type the quantizer table lacks).
    pub file_type: Option<&'static str>,
    pub n_layer: u32,
    /// Experts per MoE layer (`None`: a dense model).
    pub n_expert: Option<u32>,
    /// Bytes of the repeating layers (`blk.*`), experts included.
    pub layer_bytes: u64,
    /// Bytes of the expert tensors (`*_exps`), all layers.
    pub expert_bytes: u64,
    /// Bytes of the rest: token embeddings, output layer, norms.
    pub other_bytes: u64,
    /// Weights (parameters), all experts counted.
    pub n_params: u64,
    /// Bytes of weights one generated token reads.
    pub bytes_per_token: u64,
    /// KV-cache bytes per token of context (f16 K and V, all layers).
    pub kv_bytes_per_token: u64,
    /// The context the model was trained for (0: not in the header).
    pub n_ctx_train: u32,
}

impl ModelShape {
    /// The shape of the model whose header is `header`; `None` when the
    /// header lacks the layer count or has a tensor type this build does
    /// not know.
    pub fn of(header: &GgufHeader, path: String, name: String) -> Option<ModelShape> {
        let n_layer = header.block_count()?;
        let (mut layer_bytes, mut expert_bytes, mut other_bytes) = (0, 0, 0);
        for tensor in &header.tensors {
            let bytes = tensor.bytes()?;
            if tensor.name.starts_with("blk.") {
                layer_bytes += bytes;
                if tensor.name.contains("_exps") {
                    expert_bytes += bytes;
                }
            } else {
                other_bytes += bytes;
            }
        }
        Some(ModelShape {
            path,
            name,
            architecture: header.architecture().unwrap_or("?").to_string(),
            file_type: header.file_type().and_then(quant_types::name_of_ftype),
            n_layer,
            n_expert: header.n_expert().filter(|&n| n > 1),
            layer_bytes,
            expert_bytes,
            other_bytes,
            n_params: header.parameter_count(),
            bytes_per_token: header.bytes_read_per_token()?,
            kv_bytes_per_token: header
                .kv_cache_bytes(1, KvType::F16, KvType::F16)
                .unwrap_or(0),
            n_ctx_train: header.n_ctx_train().unwrap_or(0),
        })
    }

    pub fn weight_bytes(&self) -> u64 {
        self.layer_bytes + self.other_bytes
    }

    pub fn is_moe(&self) -> bool {
        self.n_expert.is_some() && self.expert_bytes > 0
    }
}
