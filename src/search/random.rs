//! Random search: the candidates in a seeded random order, each once (and,
//! unshuffled, the grid's order for replays).
//! Surprisingly hard to beat when only a few axes matter; the baseline the
//! Bayesian search is measured against.

use super::core::{Observation, SearchCore};
use crate::rng::SplitMix64;

pub struct RandomCore {
    order: Vec<usize>,
    next: usize,
    measured: Vec<bool>,
}

impl RandomCore {
    pub fn new(candidates: usize, seed: u64) -> Self {
        let mut core = RandomCore::in_order(candidates);
        SplitMix64::new(seed ^ 0x7261_6e64_6f6d).shuffle(&mut core.order);
        core
    }

    /// The candidates in their given order: the grid, as a core (replay).
    pub fn in_order(candidates: usize) -> Self {
        RandomCore {
            order: (0..candidates).collect(),
            next: 0,
            measured: vec![false; candidates],
        }
    }
}

impl SearchCore for RandomCore {
    fn propose(&mut self) -> Option<usize> {
        while self.next < self.order.len() {
            let i = self.order[self.next];
            self.next += 1;
            if !self.measured[i] {
                self.measured[i] = true;
                return Some(i);
            }
        }
        None
    }

    fn observe(&mut self, index: usize, _: Observation) {
        self.measured[index] = true;
    }

    fn remaining(&self) -> usize {
        self.measured.iter().filter(|m| !**m).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_candidate_once_in_a_seeded_order_skipping_known_ones() {
        let mut a = RandomCore::new(20, 1);
        a.observe(3, Observation::Failed);
        let seen: Vec<usize> = std::iter::from_fn(|| a.propose()).collect();
        assert_eq!(seen.len(), 19);
        assert!(!seen.contains(&3));
        let mut b = RandomCore::new(20, 1);
        b.observe(3, Observation::Failed);
        assert_eq!(std::iter::from_fn(|| b.propose()).collect::<Vec<_>>(), seen);
        let mut c = RandomCore::new(20, 2);
        c.observe(3, Observation::Failed);
        assert_ne!(std::iter::from_fn(|| c.propose()).collect::<Vec<_>>(), seen);
        assert_eq!(a.remaining(), 0);
    }
}
