//! Expands a [`Space`] into the list of parameter combinations.
//!
//! Axes are nested like llama-bench's: model-level parameters (n_gpu_layers,
//! load_mode) outermost, so consecutive trials load the same model the same
//! way, then the context-level ones, threads innermost.

use crate::config::Space;
use crate::knobs::{self, KnobId, Params, Value, rules};
use std::collections::HashSet;

/// The combinations of a space, and the ones left out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expansion {
    pub combos: Vec<Params>,
    /// Combinations that llama.cpp would run as another one of the grid: it
    /// clamps n_batch to n_ctx and n_ubatch to n_batch, and a draft model's
    /// settings do nothing without its speculation (`rules::idle`).
    pub equivalent: usize,
    /// Combinations llama.cpp refuses (`knobs::rules`), e.g. a quantized V
    /// cache with flash attention off.
    pub impossible: usize,
}

/// All combinations of the space's values, outermost axis first.
pub fn expand(space: &Space) -> Expansion {
    let axes: Vec<(KnobId, &[Value])> = knobs::nesting_order()
        .into_iter()
        .filter_map(|k| space.get(k.id).map(|values| (k.id, values)))
        .collect();
    let mut out = Expansion::default();
    let mut seen = HashSet::new();
    let mut index = vec![0usize; axes.len()];
    loop {
        let params: Params = axes
            .iter()
            .zip(&index)
            .map(|((knob, values), &i)| (*knob, values[i].clone()))
            .collect();
        let idle = rules::idle(&params);
        let params = params.without(&idle);
        if rules::refusal(&params).is_some() {
            out.impossible += 1;
        } else if !seen.insert(params.clamped()) {
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
            if index[pos] < axes[pos].1.len() {
                break;
            }
            index[pos] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::{FLASH_ATTN, N_BATCH, N_CTX, N_GPU_LAYERS, N_THREADS, N_UBATCH, TYPE_V};

    fn ints(v: &[i64]) -> Vec<Value> {
        v.iter().map(|&i| Value::Int(i)).collect()
    }

    fn names(v: &[&str]) -> Vec<Value> {
        v.iter().map(|s| Value::Text(s.to_string())).collect()
    }

    fn space(axes: Vec<(KnobId, Vec<Value>)>) -> Space {
        let mut space = Space::default();
        for (knob, values) in axes {
            space.set(knob, values);
        }
        space
    }

    #[test]
    fn empty_space_is_one_all_default_trial() {
        let e = expand(&Space::default());
        assert_eq!(e.combos, vec![Params::default()]);
        assert_eq!((e.equivalent, e.impossible), (0, 0));
    }

    #[test]
    fn product_size_and_nesting_order() {
        let space = space(vec![
            (N_THREADS, ints(&[1, 2])),
            (N_BATCH, ints(&[512, 1024, 2048])),
            (N_GPU_LAYERS, ints(&[0, 99])),
            (FLASH_ATTN, names(&["on", "off"])),
        ]);
        let combos = expand(&space).combos;
        assert_eq!(combos.len(), 2 * 3 * 2 * 2);
        // n_gpu_layers (model-level) changes only once, halfway.
        let changes = combos
            .windows(2)
            .filter(|w| w[0].get(N_GPU_LAYERS) != w[1].get(N_GPU_LAYERS))
            .count();
        assert_eq!(changes, 1);
        // threads turn fastest.
        assert_eq!(combos[0].int(N_THREADS), Some(1));
        assert_eq!(combos[1].int(N_THREADS), Some(2));
        assert_eq!(combos[0].get(N_BATCH), combos[1].get(N_BATCH));
        // every combination appears exactly once.
        let mut seen = std::collections::HashSet::new();
        assert!(combos.iter().all(|c| seen.insert(c.clone())));
    }

    #[test]
    fn combinations_llama_cpp_would_clamp_into_others_are_dropped() {
        let e = expand(&space(vec![
            (N_BATCH, ints(&[512, 1024])),
            (N_UBATCH, ints(&[512, 1024])),
        ]));
        // (512, 1024) runs as (512, 512).
        assert_eq!(e.combos.len(), 3);
        assert_eq!(e.equivalent, 1);
        let e = expand(&space(vec![
            (N_CTX, ints(&[512, 4096])),
            (N_BATCH, ints(&[1024, 2048])),
        ]));
        // At n_ctx 512 both batch sizes are 512.
        assert_eq!(e.combos.len(), 3);
        assert_eq!(e.equivalent, 1);
    }

    #[test]
    fn a_quantized_v_cache_without_flash_attention_is_left_out() {
        let e = expand(&space(vec![
            (TYPE_V, names(&["f16", "q8_0"])),
            (FLASH_ATTN, names(&["on", "off", "auto"])),
        ]));
        assert_eq!(e.combos.len(), 5);
        assert_eq!(e.impossible, 1);
        assert!(
            !e.combos
                .iter()
                .any(|p| p.text(TYPE_V) == Some("q8_0") && p.text(FLASH_ATTN) == Some("off"))
        );
    }
}
