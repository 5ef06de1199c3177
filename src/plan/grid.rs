//! Expands a [`Space`] into the list of parameter combinations.
//!
//! Axes are nested like llama-bench's: model-level parameters (n_gpu_layers,
//! use_mmap) outermost, so consecutive trials load the same model the same
//! way, then the context-level ones, threads innermost.

use crate::config::Space;
use crate::protocol::{FlashAttn, KvType, Params};
use std::collections::HashSet;

/// The combinations of a space, and the ones left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expansion {
    pub combos: Vec<Params>,
    /// Combinations that llama.cpp would run as another one of the grid: it
    /// clamps n_batch to n_ctx and n_ubatch to n_batch.
    pub equivalent: usize,
    /// Combinations llama.cpp refuses: a quantized V cache with flash
    /// attention off.
    pub impossible: usize,
}

/// The batch sizes llama.cpp would really use, where both sides are set: the
/// key two combinations share when they are the same trial.
fn clamped(params: &Params) -> Params {
    let mut p = params.clone();
    if let (Some(batch), Some(ctx)) = (p.n_batch, p.n_ctx) {
        p.n_batch = Some(batch.min(ctx));
    }
    if let (Some(ubatch), Some(batch)) = (p.n_ubatch, p.n_batch) {
        p.n_ubatch = Some(ubatch.min(batch));
    }
    p
}

fn is_impossible(params: &Params) -> bool {
    params.type_v.is_some_and(KvType::is_quantized) && params.flash_attn == Some(FlashAttn::Off)
}

/// All combinations of the space's values, outermost axis first.
pub fn expand(space: &Space) -> Expansion {
    // One closure per axis, in nesting order: (number of values, setter).
    type Setter<'a> = Box<dyn Fn(&mut Params, usize) + 'a>;
    let mut axes: Vec<(usize, Setter)> = Vec::new();
    macro_rules! axis {
        ($field:ident) => {
            if let Some(values) = &space.$field {
                axes.push((
                    values.len(),
                    Box::new(move |p: &mut Params, i: usize| p.$field = Some(values[i])),
                ));
            }
        };
    }
    axis!(n_gpu_layers);
    axis!(use_mmap);
    axis!(n_ctx);
    axis!(n_batch);
    axis!(n_ubatch);
    axis!(type_k);
    axis!(type_v);
    axis!(flash_attn);
    axis!(offload_kqv);
    axis!(n_threads);
    axis!(n_threads_batch);

    let mut out = Expansion::default();
    let mut seen = HashSet::new();
    let mut index = vec![0usize; axes.len()];
    loop {
        let mut params = Params::default();
        for ((_, set), &i) in axes.iter().zip(&index) {
            set(&mut params, i);
        }
        if is_impossible(&params) {
            out.impossible += 1;
        } else if !seen.insert(clamped(&params)) {
            out.equivalent += 1;
        } else {
            out.combos.push(params);
        }
        // Odometer: the innermost (last) axis turns fastest.
        let mut pos = axes.len();
        loop {
            if pos == 0 {
                return out;
            }
            pos -= 1;
            index[pos] += 1;
            if index[pos] < axes[pos].0 {
                break;
            }
            index[pos] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_space_is_one_all_default_trial() {
        let e = expand(&Space::default());
        assert_eq!(e.combos, vec![Params::default()]);
        assert_eq!((e.equivalent, e.impossible), (0, 0));
    }

    #[test]
    fn product_size_and_nesting_order() {
        let space = Space {
            n_threads: Some(vec![1, 2]),
            n_batch: Some(vec![512, 1024, 2048]),
            n_gpu_layers: Some(vec![0, 99]),
            flash_attn: Some(vec![FlashAttn::On, FlashAttn::Off]),
            ..Space::default()
        };
        let combos = expand(&space).combos;
        assert_eq!(combos.len(), 2 * 3 * 2 * 2);
        // n_gpu_layers (model-level) changes only once, halfway.
        let changes = combos
            .windows(2)
            .filter(|w| w[0].n_gpu_layers != w[1].n_gpu_layers)
            .count();
        assert_eq!(changes, 1);
        // threads turn fastest.
        assert_eq!(combos[0].n_threads, Some(1));
        assert_eq!(combos[1].n_threads, Some(2));
        assert_eq!(combos[0].n_batch, combos[1].n_batch);
        // every combination appears exactly once.
        let mut seen = std::collections::HashSet::new();
        assert!(combos.iter().all(|c| seen.insert(c.clone())));
    }

    #[test]
    fn combinations_llama_cpp_would_clamp_into_others_are_dropped() {
        let space = Space {
            n_batch: Some(vec![512, 1024]),
            n_ubatch: Some(vec![512, 1024]),
            ..Space::default()
        };
        let e = expand(&space);
        // (512, 1024) runs as (512, 512).
        assert_eq!(e.combos.len(), 3);
        assert_eq!(e.equivalent, 1);
        let space = Space {
            n_ctx: Some(vec![512, 4096]),
            n_batch: Some(vec![1024, 2048]),
            ..Space::default()
        };
        let e = expand(&space);
        // At n_ctx 512 both batch sizes are 512.
        assert_eq!(e.combos.len(), 3);
        assert_eq!(e.equivalent, 1);
    }

    #[test]
    fn a_quantized_v_cache_without_flash_attention_is_left_out() {
        let space = Space {
            type_v: Some(vec![KvType::F16, KvType::Q8_0]),
            flash_attn: Some(vec![FlashAttn::On, FlashAttn::Off, FlashAttn::Auto]),
            ..Space::default()
        };
        let e = expand(&space);
        assert_eq!(e.combos.len(), 5);
        assert_eq!(e.impossible, 1);
        assert!(
            !e.combos
                .iter()
                .any(|p| p.type_v == Some(KvType::Q8_0) && p.flash_attn == Some(FlashAttn::Off))
        );
    }
}
