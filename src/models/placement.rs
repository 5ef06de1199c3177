//! Where a placement puts a model's weights and KV cache, from the GGUF
//! header alone, before anything is loaded: the memory plan `doctor`
//! prints for the sweep's placements. It follows llama.cpp's rules: the
//! last `n_gpu_layers` layers (the output layer counting as one) go to the
//! GPUs, split between them by layers in proportion to the tensor split;
//! the token embeddings stay on the CPU; `n_cpu_moe` keeps the expert
//! tensors of the first layers on the CPU; each layer's KV cache sits with
//! its layer when `offload_kqv` is on. An estimate: compute buffers and
//! llama.cpp's rounding are left out.

use super::gguf::{GgufHeader, TensorInfo};

/// A placement of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// llama.cpp's n_gpu_layers: negative for all.
    pub n_gpu_layers: i64,
    pub n_cpu_moe: u32,
    /// Proportions per GPU; empty: in proportion to `gpu_free`.
    pub tensor_split: Vec<f32>,
    pub offload_kqv: bool,
}

/// Bytes on one device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Share {
    pub weights: u64,
    pub kv: u64,
}

impl Share {
    pub fn total(&self) -> u64 {
        self.weights + self.kv
    }
}

/// The plan: the host's share, then one per GPU.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    pub cpu: Share,
    pub gpus: Vec<Share>,
}

/// The layer a tensor belongs to: `Some(i)` for `blk.i.*`, `None` for the
/// input (token embeddings) and `Some(n_layer)` for the output layer.
fn layer_of(tensor: &TensorInfo, n_layer: u32) -> Option<u32> {
    if let Some(rest) = tensor.name.strip_prefix("blk.") {
        return rest.split('.').next().and_then(|i| i.parse().ok());
    }
    if tensor.name.starts_with("token_embd") {
        return None;
    }
    Some(n_layer)
}

fn is_expert(tensor: &TensorInfo) -> bool {
    tensor.name.contains("_exps")
}

/// Which GPU each of the `offloaded` layers (counted from the first
/// offloaded one) goes to, splitting them in proportion to `shares`.
fn gpu_of_layer(index: u32, offloaded: u32, shares: &[f64]) -> usize {
    let total: f64 = shares.iter().sum();
    if shares.len() <= 1 || total <= 0.0 || offloaded == 0 {
        return 0;
    }
    let position = (f64::from(index) + 0.5) / f64::from(offloaded);
    let mut edge = 0.0;
    for (gpu, share) in shares.iter().enumerate() {
        edge += share / total;
        if position < edge {
            return gpu;
        }
    }
    shares.len() - 1
}

/// The memory plan of `placement` for `header`'s model with a KV cache of
/// `kv_bytes` (all layers), on GPUs with `gpu_free` bytes free (none: a
/// CPU-only build, everything on the host). `None` when the header lacks
/// the layer count.
pub fn plan(
    header: &GgufHeader,
    placement: &Placement,
    kv_bytes: u64,
    gpu_free: &[u64],
) -> Option<MemoryPlan> {
    let n_layer = header.block_count()?;
    let with_output = n_layer + 1;
    let offloaded = if gpu_free.is_empty() {
        0
    } else if placement.n_gpu_layers < 0 {
        with_output
    } else {
        (placement.n_gpu_layers as u32).min(with_output)
    };
    let first_gpu_layer = with_output - offloaded;
    let shares: Vec<f64> = if placement.tensor_split.is_empty() {
        gpu_free.iter().map(|&b| b as f64).collect()
    } else {
        placement
            .tensor_split
            .iter()
            .map(|&p| f64::from(p))
            .collect()
    };
    let device_of = |layer: u32| -> Option<usize> {
        (layer >= first_gpu_layer).then(|| {
            gpu_of_layer(layer - first_gpu_layer, offloaded, &shares).min(gpu_free.len() - 1)
        })
    };
    let mut plan = MemoryPlan {
        cpu: Share::default(),
        gpus: vec![Share::default(); gpu_free.len()],
    };
    for tensor in &header.tensors {
        let bytes = tensor.bytes().unwrap_or(0);
        let layer = layer_of(tensor, n_layer);
        let on_cpu_by_moe =
            is_expert(tensor) && layer.is_some_and(|l| l < placement.n_cpu_moe.min(n_layer));
        match layer.and_then(device_of) {
            Some(gpu) if !on_cpu_by_moe => plan.gpus[gpu].weights += bytes,
            _ => plan.cpu.weights += bytes,
        }
    }
    let kv_per_layer = kv_bytes / u64::from(n_layer.max(1));
    for layer in 0..n_layer {
        match device_of(layer).filter(|_| placement.offload_kqv) {
            Some(gpu) => plan.gpus[gpu].kv += kv_per_layer,
            None => plan.cpu.kv += kv_per_layer,
        }
    }
    Some(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::gguf::tests::{Tensor, model_bytes, parse};

    const F32: u32 = 0;

    /// Two layers, each with 4 KiB of attention and 16 KiB of experts; 8 KiB
    /// of embeddings and of output.
    fn moe() -> GgufHeader {
        let tensors: &[Tensor] = &[
            ("token_embd.weight", F32, &[1024, 2]),
            ("blk.0.attn_q.weight", F32, &[1024]),
            ("blk.0.ffn_up_exps.weight", F32, &[1024, 4]),
            ("blk.1.attn_q.weight", F32, &[1024]),
            ("blk.1.ffn_up_exps.weight", F32, &[1024, 4]),
            ("output.weight", F32, &[1024, 2]),
        ];
        parse(&model_bytes(
            &[("general.architecture", "qwen3moe")],
            &[("qwen3moe.block_count", 2)],
            tensors,
        ))
    }

    const KIB: u64 = 1024;

    fn placement(n_gpu_layers: i64, n_cpu_moe: u32) -> Placement {
        Placement {
            n_gpu_layers,
            n_cpu_moe,
            tensor_split: vec![],
            offload_kqv: true,
        }
    }

    #[test]
    fn all_layers_on_one_gpu_leave_the_embeddings_on_the_cpu() {
        let p = plan(&moe(), &placement(-1, 0), 2 * KIB, &[1 << 30]).unwrap();
        assert_eq!(
            p.cpu,
            Share {
                weights: 8 * KIB,
                kv: 0
            }
        );
        assert_eq!(
            p.gpus[0],
            Share {
                weights: 48 * KIB,
                kv: 2 * KIB
            }
        );
    }

    #[test]
    fn n_cpu_moe_keeps_the_first_layers_experts_on_the_cpu() {
        let p = plan(&moe(), &placement(-1, 1), 0, &[1 << 30]).unwrap();
        assert_eq!(p.cpu.weights, 8 * KIB + 16 * KIB);
        assert_eq!(p.gpus[0].weights, 48 * KIB - 16 * KIB);
    }

    #[test]
    fn partial_offload_takes_the_last_layers_and_a_split_divides_them() {
        // 1 of 3 layers (2 blocks + output): the output layer only.
        let p = plan(&moe(), &placement(1, 0), 2 * KIB, &[1 << 30]).unwrap();
        assert_eq!(
            p.gpus[0],
            Share {
                weights: 8 * KIB,
                kv: 0
            }
        );
        assert_eq!(p.cpu.kv, 2 * KIB);
        let split = Placement {
            tensor_split: vec![2.0, 1.0],
            ..placement(-1, 0)
        };
        let p = plan(&moe(), &split, 0, &[1 << 30, 1 << 30]).unwrap();
        assert_eq!(p.gpus[0].weights, 40 * KIB, "blk.0 and blk.1");
        assert_eq!(p.gpus[1].weights, 8 * KIB, "the output layer");
    }

    #[test]
    fn without_a_gpu_everything_is_on_the_host() {
        let p = plan(&moe(), &placement(-1, 0), 2 * KIB, &[]).unwrap();
        assert_eq!(
            p.cpu,
            Share {
                weights: 56 * KIB,
                kv: 2 * KIB
            }
        );
        assert!(p.gpus.is_empty());
    }
}
