//! Which trial to run next. A [`Strategy`] proposes trials one at a time and
//! observes each stored row (failures included), so strategies that learn —
//! random and Bayesian search, to come — plug into the same sweep loop as the
//! exhaustive grid.

mod grid;

pub use grid::GridStrategy;

use crate::protocol::TrialSpec;
use crate::store::row::TrialRow;

pub trait Strategy {
    /// The next trial to run, or `None` when the strategy is done.
    fn propose(&mut self) -> Option<TrialSpec>;
    /// The recorded outcome of a proposed trial.
    fn observe(&mut self, spec: &TrialSpec, row: &TrialRow);
    /// Trials the strategy still expects to propose, if it knows.
    fn remaining(&self) -> Option<usize>;
}
