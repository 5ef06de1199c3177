//! Expands a [`Space`] into the list of parameter combinations.
//!
//! Axes are nested like llama-bench's: model-level parameters (n_gpu_layers,
//! use_mmap) outermost, so consecutive trials load the same model the same
//! way, then the context-level ones, threads innermost.

use crate::config::Space;
use crate::protocol::Params;

/// All combinations of the space's values, outermost axis first, with the
/// number of combinations dropped because n_ubatch > n_batch.
pub fn expand(space: &Space) -> (Vec<Params>, usize) {
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

    let mut combos = Vec::new();
    let mut skipped = 0;
    let mut index = vec![0usize; axes.len()];
    loop {
        let mut params = Params::default();
        for ((_, set), &i) in axes.iter().zip(&index) {
            set(&mut params, i);
        }
        match (params.n_ubatch, params.n_batch) {
            (Some(u), Some(b)) if u > b => skipped += 1,
            _ => combos.push(params),
        }
        // Odometer: the innermost (last) axis turns fastest.
        let mut pos = axes.len();
        loop {
            if pos == 0 {
                return (combos, skipped);
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
    use crate::protocol::FlashAttn;

    #[test]
    fn empty_space_is_one_all_default_trial() {
        let (combos, skipped) = expand(&Space::default());
        assert_eq!(combos, vec![Params::default()]);
        assert_eq!(skipped, 0);
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
        let (combos, _) = expand(&space);
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
    fn ubatch_larger_than_batch_is_dropped() {
        let space = Space {
            n_batch: Some(vec![512, 1024]),
            n_ubatch: Some(vec![256, 1024]),
            ..Space::default()
        };
        let (combos, skipped) = expand(&space);
        assert_eq!(skipped, 1);
        assert_eq!(combos.len(), 3);
        assert!(combos.iter().all(|p| p.n_ubatch <= p.n_batch));
    }
}
