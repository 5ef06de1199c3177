//! Each run of a trial measured on a quiet machine: the CPU time other
//! processes used while it ran is read from /proc (`machine_load`); a run
//! they disturbed beyond the rule is not kept, the child waits for a quiet
//! moment and runs it again. When the machine never gets quiet, the run is
//! kept but counted, and the trial is recorded as measured while busy (its
//! figures decide nothing) and never dropped on such a run.

use crate::machine_load::{QuietRule, Snapshot};
use crate::protocol::BusyRecord;

/// The watch over one trial's runs.
pub struct QuietWatch {
    rule: Option<QuietRule>,
    /// The processes that measure: this child, and a server it runs.
    measurers: Vec<u32>,
    /// Runs measured again, per test, before one is kept busy anyway.
    retries: u32,
    /// A wait ran out: the machine stays busy, and later runs are kept
    /// at once (marked) rather than waited for again.
    gave_up: bool,
    pub record: BusyRecord,
}

impl QuietWatch {
    pub fn new(rule: Option<QuietRule>, measurers: Vec<u32>, retries: u32) -> QuietWatch {
        QuietWatch {
            rule,
            measurers,
            retries,
            gave_up: false,
            record: BusyRecord::default(),
        }
    }

    /// Runs `run` until one run of it was quiet (or the retries and the
    /// wait ran out): its value, and whether it was measured while busy.
    pub fn run<T>(
        &mut self,
        what: &str,
        mut run: impl FnMut() -> Result<T, String>,
    ) -> Result<(T, bool), String> {
        let Some(rule) = self.rule else {
            return run().map(|v| (v, false));
        };
        let mut tries = 0;
        loop {
            let before = Snapshot::take(&self.measurers);
            let value = run()?;
            let load = before.until(&Snapshot::take(&self.measurers));
            self.record.other_cores_max = self.record.other_cores_max.max(load.other_cores);
            if !load.busy(rule.cores_max) {
                return Ok((value, false));
            }
            tries += 1;
            let why = load.describe(None);
            if tries > self.retries || self.gave_up {
                self.record.kept += 1;
                eprintln!(
                    "llama-sweep: {what} measured while the machine was busy ({why}): kept, the trial decides nothing"
                );
                return Ok((value, true));
            }
            self.record.discarded += 1;
            eprintln!(
                "llama-sweep: {what} measured while the machine was busy ({why}): measured again once it is quiet"
            );
            if let Err(busy) = rule.wait_until_quiet(&self.measurers, &mut |line| {
                eprintln!("llama-sweep: {line}")
            }) {
                if crate::interrupt::requested() {
                    return Err("interrupted".into());
                }
                self.gave_up = true;
                let value = run()?;
                self.record.kept += 1;
                eprintln!(
                    "llama-sweep: the machine stayed busy ({}): {what} kept, the trial decides nothing",
                    busy.load.describe(None)
                );
                return Ok((value, true));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_rule_every_run_is_kept_as_it_is() {
        let mut watch = QuietWatch::new(None, vec![std::process::id()], 2);
        let (v, busy) = watch.run("run 1", || Ok(7)).unwrap();
        assert_eq!((v, busy), (7, false));
        assert_eq!(watch.record, BusyRecord::default());
    }

    #[test]
    fn a_run_beside_a_busy_process_is_measured_again_then_kept_and_counted() {
        // Counted as nobody's, this test's own spinning makes every run busy.
        let rule = QuietRule {
            cores_max: 0.2,
            wait_s: 0.0,
        };
        let mut watch = QuietWatch::new(Some(rule), Vec::new(), 1);
        let mut runs = 0;
        let (_, busy) = watch
            .run("run 1", || {
                runs += 1;
                let until = std::time::Instant::now() + std::time::Duration::from_millis(300);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
                Ok(())
            })
            .unwrap();
        assert!(busy);
        assert!(runs >= 2, "measured again: {runs}");
        assert_eq!(watch.record.kept, 1);
        assert!(watch.record.discarded >= 1);
        assert!(watch.record.other_cores_max > 0.2);
    }
}
