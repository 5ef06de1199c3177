//! The exhaustive grid: every planned trial once, in plan order, skipping the
//! ones already recorded (which is how a stopped sweep resumes).

use super::Strategy;
use crate::protocol::TrialSpec;
use crate::store::row::TrialRow;
use std::collections::{HashSet, VecDeque};

pub struct GridStrategy {
    queue: VecDeque<TrialSpec>,
}

impl GridStrategy {
    pub fn new(trials: &[TrialSpec], recorded: &HashSet<String>) -> GridStrategy {
        GridStrategy {
            queue: trials
                .iter()
                .filter(|t| !recorded.contains(&t.trial_id))
                .cloned()
                .collect(),
        }
    }
}

impl Strategy for GridStrategy {
    fn propose(&mut self) -> Option<TrialSpec> {
        self.queue.pop_front()
    }

    fn observe(&mut self, _spec: &TrialSpec, _row: &TrialRow) {}

    fn remaining(&self) -> Option<usize> {
        Some(self.queue.len())
    }
}
