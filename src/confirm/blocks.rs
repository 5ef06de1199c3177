//! The confirmation's subjects side by side: each is loaded once in its own
//! resident child (`runner::Resident`), and the parent alternates short
//! blocks between them, one run of the objective's test each (one round of
//! the app's requests, or one pp or tg run), in a new random order every
//! cycle. Only one child measures at a time; the others wait, loaded. Two
//! subjects' blocks of a cycle are seconds apart and meet the same moment
//! of the machine, so their ratio is paired within the cycle and a slow
//! minute cancels out: randomized multiple interleaved trials (Abedi &
//! Brecht, "Conducting Repeatable Experiments in Highly Variable Cloud
//! Computing Environments", ICPE 2017), instead of rounds of whole trials
//! minutes apart, each reloading its model.
//!
//! A block measured while other processes took the machine's cores
//! (`machine_load`) is written to confirm.csv as `busy`, never used, and
//! measured again once the machine is quiet; a machine that stays busy
//! ends the confirmation, undecided. Subjects that would not fit in memory
//! together, objectives that no test measures (memory), and trials run
//! through llama-server are confirmed in rounds instead
//! ([`cannot_be_resident`] says why).

use super::{ConfirmRun, Subject, append_run};
use crate::clock::now_rfc3339;
use crate::machine_load::{QuietRule, Snapshot};
use crate::objective::{Measured, Objective};
use crate::protocol::{BlockFigures, ResidentJob};
use crate::rng::SplitMix64;
use crate::runner::{Resident, Residents, TrialStatus};
use crate::store::row::TrialRow;
use crate::sweep::SweepObserver;
use std::path::Path;

/// What the caller lends the confirmation for resident subjects.
pub struct ResidentSetup<'a> {
    pub residents: &'a mut dyn Residents,
    /// When a block counts.
    pub quiet: QuietRule,
    /// Seeds the order of the blocks in each cycle.
    pub seed: u64,
}

/// Memory a subject used in the sweep: host MiB (peak RSS) and device MiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Footprint {
    pub host_mib: Option<f64>,
    pub device_mib: Option<f64>,
}

impl Footprint {
    pub fn of(row: &TrialRow) -> Footprint {
        Footprint {
            host_mib: row.peak_rss_mib,
            device_mib: row.device_memory_mib,
        }
    }
}

/// Why the subjects cannot be confirmed side by side, if they cannot: the
/// objective has no test a block can run, a subject runs through
/// llama-server, or their memory together (with a tenth more for safety)
/// is more than is free (`host_free_mib`, `device_free_mib`).
pub fn cannot_be_resident(
    objective: &Objective,
    app_runtime: Option<&str>,
    footprints: &[Footprint],
    host_free_mib: Option<f64>,
    device_free_mib: Option<f64>,
) -> Option<String> {
    if crate::early_drop::Test::of(objective.metric).is_none() {
        return Some(format!(
            "{} is measured once per trial, not by a test a block can repeat",
            objective.metric
        ));
    }
    if let Some(runtime) = app_runtime.filter(|r| *r == crate::runtime::RuntimeKind::Server.name())
    {
        return Some(format!(
            "the trials run through {runtime}, which the confirmation does not keep resident"
        ));
    }
    let sum = |f: fn(&Footprint) -> Option<f64>| footprints.iter().filter_map(f).sum::<f64>();
    let (host, device) = (sum(|f| f.host_mib), sum(|f| f.device_mib));
    if let Some(free) = host_free_mib.filter(|free| host * 1.1 > *free) {
        return Some(format!(
            "the {} subjects together need about {host:.0} MiB of host memory and {free:.0} MiB \
             is free",
            footprints.len()
        ));
    }
    if let Some(free) = device_free_mib.filter(|free| device * 1.1 > *free && device > 0.0) {
        return Some(format!(
            "the {} subjects together need about {device:.0} MiB of device memory and {free:.0} \
             MiB is free",
            footprints.len()
        ));
    }
    None
}

/// How a cycle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CycleEnd {
    Measured,
    Interrupted,
    /// The machine stayed busy longer than the rule waits.
    Busy,
}

/// The resident subjects and the order of their blocks.
pub struct Cycles<'a> {
    residents: Vec<Result<Box<dyn Resident>, String>>,
    rng: SplitMix64,
    quiet: QuietRule,
    objective: &'a Objective,
}

impl<'a> Cycles<'a> {
    /// Loads every subject in its own resident child (logs in `folder`'s
    /// logs/); one that cannot load is a reason, recorded at every cycle.
    pub(super) fn start(
        subjects: &[Subject],
        setup: ResidentSetup,
        objective: &'a Objective,
        folder: &Path,
        observer: &mut dyn SweepObserver,
    ) -> anyhow::Result<Cycles<'a>> {
        let mut residents = Vec::new();
        for s in subjects {
            let log = folder.join(format!("logs/{}.resident.log", s.spec.trial_id));
            let job = ResidentJob {
                spec: s.spec.clone(),
                metric: objective.metric,
            };
            let started = setup.residents.start(&job, &log)?;
            if let Err(why) = &started {
                observer.note(&format!(
                    "confirmation: {} could not be loaded: {why}",
                    s.spec.trial_id
                ));
            }
            residents.push(started);
        }
        Ok(Cycles {
            residents,
            rng: SplitMix64::new(setup.seed ^ 0x5eed_b10c),
            quiet: setup.quiet,
            objective,
        })
    }

    /// Measures one block of every subject, in a random order, as cycle
    /// `cycle` (from 0): each subject's `rounds` get the log of its value.
    pub(super) fn cycle(
        &mut self,
        cycle: usize,
        subjects: &mut [Subject],
        rows: &[Option<&TrialRow>],
        folder: &Path,
        observer: &mut dyn SweepObserver,
    ) -> anyhow::Result<CycleEnd> {
        let mut order: Vec<usize> = (0..subjects.len()).collect();
        self.rng.shuffle(&mut order);
        for i in order {
            if crate::interrupt::requested() {
                return Ok(CycleEnd::Interrupted);
            }
            let block = match self.quiet_block(i, cycle, subjects, folder, observer)? {
                Ok(block) => Ok(block),
                Err(BlockFailure::Interrupted) => return Ok(CycleEnd::Interrupted),
                Err(BlockFailure::Busy) => return Ok(CycleEnd::Busy),
                Err(BlockFailure::Failed(status, why)) => Err((status, why)),
            };
            self.record(cycle, &mut subjects[i], rows[i], block, folder)?;
        }
        Ok(CycleEnd::Measured)
    }

    /// One block of subject `i` measured while the machine was quiet: a
    /// busy one is written down as such, and measured again after a wait.
    fn quiet_block(
        &mut self,
        i: usize,
        cycle: usize,
        subjects: &[Subject],
        folder: &Path,
        observer: &mut dyn SweepObserver,
    ) -> anyhow::Result<Result<BlockFigures, BlockFailure>> {
        let id = subjects[i].spec.trial_id.clone();
        loop {
            let resident = match &mut self.residents[i] {
                Ok(r) => r,
                Err(why) => {
                    return Ok(Err(BlockFailure::Failed(status_of(why), why.clone())));
                }
            };
            let mut measurers = resident.pids();
            measurers.push(std::process::id());
            let before = Snapshot::take(&measurers);
            let block = resident.block();
            let load = before.until(&Snapshot::take(&measurers));
            let figures = match block {
                Ok(f) => f,
                Err(why) if why == "interrupted" => return Ok(Err(BlockFailure::Interrupted)),
                Err(why) => {
                    observer.note(&format!("confirmation: {id} failed: {why}"));
                    self.residents[i] = Err(why.clone());
                    return Ok(Err(BlockFailure::Failed(status_of(&why), why)));
                }
            };
            if !load.busy(self.quiet.cores_max) {
                return Ok(Ok(figures));
            }
            append_run(
                folder,
                &self.run_of(&id, cycle, figures.value(self.objective.metric), "busy"),
            )?;
            let waited = self.quiet.wait_until_quiet(&measurers, &mut |line| {
                observer.note(&format!("confirmation: {line}"))
            });
            if waited.is_err() {
                return Ok(Err(if crate::interrupt::requested() {
                    BlockFailure::Interrupted
                } else {
                    BlockFailure::Busy
                }));
            }
        }
    }

    /// Adds subject `s`'s block (or failure) of `cycle` to its rounds, its
    /// record and confirm.csv.
    fn record(
        &self,
        cycle: usize,
        s: &mut Subject,
        row: Option<&TrialRow>,
        block: Result<BlockFigures, (TrialStatus, String)>,
        folder: &Path,
    ) -> anyhow::Result<()> {
        let objective = self.objective;
        let (status, value) = match &block {
            Ok(b) => (TrialStatus::Ok, b.value(objective.metric)),
            Err((status, _)) => (*status, None),
        };
        s.rounds.push(value.map(|v| v.max(1e-12).ln()));
        let value_of = |m| match &block {
            Ok(b) => b.mean_of(m).or_else(|| row.and_then(|r| r.mean_of(m))),
            Err(_) => None,
        };
        s.record
            .record_figures(cycle + 1, status, value, objective, &value_of);
        append_run(
            folder,
            &self.run_of(&s.spec.trial_id, cycle, value, status.name()),
        )
    }

    fn run_of(&self, id: &str, cycle: usize, value: Option<f64>, status: &str) -> ConfirmRun {
        ConfirmRun {
            trial_id: id.to_string(),
            round: cycle + 1,
            metric: self.objective.metric.name().into(),
            value,
            sd: None,
            repetitions: 1,
            status: status.into(),
            at: now_rfc3339(),
        }
    }
}

/// Why a block gave no figures.
enum BlockFailure {
    Failed(TrialStatus, String),
    Interrupted,
    Busy,
}

/// The status a resident child's failure stands for (its reason starts
/// with how it ended).
fn status_of(why: &str) -> TrialStatus {
    if why.starts_with("crashed") {
        TrialStatus::Crashed
    } else if why.starts_with("timed out") {
        TrialStatus::Timeout
    } else if crate::runner::outcome::mentions_oom(why) {
        TrialStatus::Oom
    } else {
        TrialStatus::Failed
    }
}

/// The looks of a resident confirmation: after `first` pairs of blocks,
/// then about half as many again each time, and at `max`: few looks, so
/// that the split of the error rate over them costs little.
pub fn look_points(first: usize, max: usize) -> Vec<usize> {
    let mut points = vec![first.max(2)];
    while let Some(&last) = points.last() {
        let next = (last + last.div_ceil(2)).min(max);
        if next <= last {
            break;
        }
        points.push(next);
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::Metric;

    #[test]
    fn looks_grow_by_half_up_to_the_limit() {
        assert_eq!(look_points(10, 60), [10, 15, 23, 35, 53, 60]);
        assert_eq!(look_points(10, 10), [10]);
        assert_eq!(look_points(1, 4), [2, 3, 4]);
    }

    #[test]
    fn subjects_that_do_not_fit_or_cannot_block_fall_back_to_rounds() {
        let speed = Objective::default();
        let each = Footprint {
            host_mib: Some(3000.0),
            device_mib: None,
        };
        assert_eq!(
            cannot_be_resident(&speed, None, &[each; 4], Some(16_000.0), None),
            None
        );
        let why = cannot_be_resident(&speed, None, &[each; 4], Some(12_000.0), None).unwrap();
        assert!(why.contains("12000 MiB is free"), "{why}");
        let gpu = Footprint {
            host_mib: Some(500.0),
            device_mib: Some(20_000.0),
        };
        let why = cannot_be_resident(&speed, None, &[gpu; 2], Some(64_000.0), Some(24_000.0));
        assert!(why.unwrap().contains("device memory"));
        assert!(
            cannot_be_resident(&speed, Some("llama-server"), &[each], None, None)
                .unwrap()
                .contains("llama-server")
        );
        // llama-cpp-python keeps its Llama() loaded (the driver's serve mode).
        assert_eq!(
            cannot_be_resident(&speed, Some("llama-cpp-python"), &[each], None, None),
            None
        );
        let memory = Objective {
            metric: Metric::PeakRssMib,
            direction: crate::objective::Direction::Minimize,
            constraints: Vec::new(),
        };
        assert!(
            cannot_be_resident(&memory, None, &[each], None, None)
                .unwrap()
                .contains("once per trial")
        );
    }

    #[test]
    fn a_failure_reads_as_its_status() {
        assert_eq!(
            status_of("crashed: the resident child ..."),
            TrialStatus::Crashed
        );
        assert_eq!(status_of("timed out: no answer"), TrialStatus::Timeout);
        assert_eq!(status_of("failed: cannot load"), TrialStatus::Failed);
    }
}
