//! The sweep loop: ask the strategy for a trial, run it (again, when it
//! crashed or timed out and retries are left), store its row, tell the
//! strategy, watch for drift — until the strategy is done, the budget is
//! spent, or a stop is asked for. A trial that fails is a row like any other;
//! only a failure of the sweep's own machinery (the store cannot be written)
//! ends the loop with an error.

use crate::clock::now_rfc3339;
use crate::config::DriftSettings;
use crate::drift::{DriftMonitor, Verdict};
use crate::failure_watch::{Diagnosis, FailureWatch};
use crate::knobs::EffectiveParams;
use crate::objective::Objective;
use crate::protocol::TrialSpec;
use crate::runner::{Execution, Executor, TrialOutcome, TrialStatus};
use crate::search::Strategy;
use crate::store::Store;
use crate::store::anchors::{self, AnchorCheck};
use crate::store::row::{RowContext, TrialRow};
use crate::workers::claims::{Claim, Holder};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// How often a run waiting for other workers' trials looks again.
const CLAIM_POLL: Duration = Duration::from_millis(500);

/// What the loop needs besides the strategy, executor and store.
pub struct SweepContext<'a> {
    pub sweep_name: &'a str,
    /// Recorded in every row: llama-sweep's version and llama.cpp's build.
    pub build: &'a str,
    pub defaults: &'a EffectiveParams,
    pub objective: &'a Objective,
    /// Every trial of the plan, in plan order (a row's `seq` is its
    /// position; the drift anchor is looked up here).
    pub plan: &'a [TrialSpec],
    /// Model variants that could not be prepared (identity → reason): their
    /// trials are recorded as failed without being run.
    pub unavailable: HashMap<String, String>,
    /// Quality and bytes per token of the variants, copied into the rows.
    pub facts: Option<&'a crate::quality::VariantFacts>,
    /// Where the trials run, for the rows.
    pub origin: &'a crate::workers::Origin,
    /// Who measures what, when several workers share the folder.
    pub claims: &'a crate::workers::claims::Claims,
}

impl<'a> SweepContext<'a> {
    /// What its rows record, with this noise limit.
    pub fn row_facts(
        &self,
        noise_cv_max: f64,
        quiet: Option<crate::machine_load::QuietRule>,
    ) -> RowFacts<'a> {
        RowFacts {
            sweep_name: self.sweep_name,
            build: self.build,
            defaults: self.defaults,
            objective: self.objective,
            noise_cv_max,
            facts: self.facts,
            origin: self.origin,
            quiet,
        }
    }
}

/// What every row records besides its trial and how it ended.
#[derive(Clone, Copy)]
pub struct RowFacts<'a> {
    pub sweep_name: &'a str,
    pub build: &'a str,
    pub defaults: &'a EffectiveParams,
    pub objective: &'a Objective,
    /// Coefficient of variation above which a row is flagged noisy.
    pub noise_cv_max: f64,
    pub facts: Option<&'a crate::quality::VariantFacts>,
    pub origin: &'a crate::workers::Origin,
    /// When a run counts (none: every run does).
    pub quiet: Option<crate::machine_load::QuietRule>,
}

/// One measurement of `spec` and its row: the one way the sweep loop, the
/// drift anchor check and the confirmation round measure a trial. The log
/// goes to `log_file`, relative to `folder`; `seq` is the trial's position
/// in the plan. `None` when a stop was asked for.
pub fn measure_once(
    executor: &mut dyn Executor,
    spec: &TrialSpec,
    folder: &std::path::Path,
    log_file: String,
    seq: u32,
    facts: &RowFacts,
) -> anyhow::Result<Option<TrialRow>> {
    let started_at = now_rfc3339();
    // Every trial runs the objective's test first: the same order for the
    // trials, the references and the confirmation.
    let ordered;
    let spec = if spec.schedule.first.is_some() && spec.schedule.quiet == facts.quiet {
        spec
    } else {
        let mut s = spec.clone();
        s.schedule.first.get_or_insert(facts.objective.metric);
        s.schedule.quiet = facts.quiet;
        ordered = s;
        &ordered
    };
    let outcome = match executor.execute(spec, &folder.join(&log_file))? {
        Execution::Done(outcome) => outcome,
        Execution::Interrupted => return Ok(None),
    };
    Ok(Some(row_of(
        spec, &outcome, seq, started_at, log_file, facts,
    )))
}

fn row_of(
    spec: &TrialSpec,
    outcome: &TrialOutcome,
    seq: u32,
    started_at: String,
    log_file: String,
    facts: &RowFacts,
) -> TrialRow {
    TrialRow::new(
        spec,
        outcome,
        RowContext {
            sweep: facts.sweep_name,
            seq,
            defaults: facts.defaults,
            objective: facts.objective,
            started_at,
            finished_at: now_rfc3339(),
            build: facts.build,
            log_file,
            attempts: 1,
            noise_cv_max: facts.noise_cv_max,
            facts: facts.facts,
            origin: facts.origin,
        },
    )
}

/// How the loop runs: retries, budget, drift and noise watching.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOptions {
    /// Extra runs of a trial that crashed or timed out.
    pub retries: u32,
    /// Stop once this many trials of the plan are recorded (earlier runs
    /// included).
    pub max_trials: Option<usize>,
    /// Stop before a trial that would end after this much time in this run.
    pub max_time: Option<Duration>,
    pub drift: DriftSettings,
    /// Coefficient of variation above which a trial is flagged noisy.
    pub noise_cv_max: f64,
    /// When the strategy is done but trials it proposed are being measured
    /// by other workers: wait for them (taking over those whose worker
    /// died) rather than end. A plain `run` waits; a worker ends, and a
    /// later worker or the finishing run picks up what a dead one left.
    pub wait_for_others: bool,
    /// Drop a trial whose best run misses the best trial's worst run (or a
    /// constraint's limit) by more than this fraction (`early_drop`);
    /// `None` measures every trial to its last run.
    pub early_drop: Option<f64>,
    /// When a run counts: one other processes disturbed is measured again
    /// (none: every run counts).
    pub quiet: Option<crate::machine_load::QuietRule>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            retries: 1,
            max_trials: None,
            max_time: None,
            drift: DriftSettings {
                every: 0,
                ..DriftSettings::default()
            },
            noise_cv_max: 0.05,
            wait_for_others: true,
            early_drop: None,
            quiet: None,
        }
    }
}

/// How the loop ended.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepEnd {
    /// The strategy has nothing left to run.
    Completed,
    /// A stop was asked for; the running trial was discarded.
    Interrupted,
    /// The budget was spent with `left` trials not run; `out_of_time` when
    /// it was the time budget.
    BudgetReached {
        reason: String,
        left: usize,
        out_of_time: bool,
    },
    /// The first trials all failed the same way (`failure_watch`).
    SystematicFailure(Diagnosis),
    /// The backend self-test failed for every model variant: no trial ran.
    BackendBroken,
    /// Other processes kept the machine busy longer than the sweep waits
    /// for it (what they did, in words).
    MachineBusy(String),
}

/// A finished trial, for progress display.
pub struct TrialEvent<'a> {
    pub done: usize,
    pub total: usize,
    pub row: &'a TrialRow,
    pub spec: &'a TrialSpec,
}

/// Progress display and the sweep log.
pub trait SweepObserver {
    fn trial_started(&mut self, _spec: &TrialSpec, _done: usize, _total: usize) {}
    fn trial_finished(&mut self, _event: TrialEvent) {}
    /// Something worth a line: a retry, an anchor check, drift.
    fn note(&mut self, _text: &str) {}
    /// A trial another worker holds, skipped for now.
    fn claimed_elsewhere(&mut self, _spec: &TrialSpec, _holder: &Holder) {}
}

/// An observer that shows nothing.
pub struct Silent;
impl SweepObserver for Silent {}

/// Statuses worth another try: they can be transient. `failed` and `oom`
/// would fail the same way again.
fn is_retryable(status: TrialStatus) -> bool {
    matches!(status, TrialStatus::Crashed | TrialStatus::Timeout)
}

struct Loop<'a, 'b> {
    /// The plan by trial id: (position, spec).
    plan: HashMap<&'b str, (u32, &'b TrialSpec)>,
    executor: &'a mut dyn Executor,
    store: &'a mut Store,
    ctx: &'a SweepContext<'b>,
    options: &'a SweepOptions,
    observer: &'a mut dyn SweepObserver,
    watch: &'a mut FailureWatch,
    drift: DriftMonitor,
    /// Wall times of the trials run so far in this run.
    walls: Vec<Duration>,
    anchor_checks: usize,
    /// Trials the strategy proposed that another worker held.
    elsewhere: Vec<TrialSpec>,
    /// Trials other processes kept busy, measured once more after the
    /// others (the machine was quiet again, or the sweep would have
    /// stopped), and those that were, which wait for a resumed sweep.
    busy_again: VecDeque<TrialSpec>,
    busy_retried: HashSet<String>,
}

/// Runs trials until the strategy has none left, the budget is spent, a
/// stop is asked for, or `watch` sees the first trials all fail the same
/// way.
pub fn run(
    strategy: &mut dyn Strategy,
    executor: &mut dyn Executor,
    store: &mut Store,
    ctx: &SweepContext,
    options: &SweepOptions,
    observer: &mut dyn SweepObserver,
    watch: &mut FailureWatch,
) -> anyhow::Result<SweepEnd> {
    let mut drift = DriftMonitor::new(options.drift.clone());
    // A named anchor recorded by an earlier run keeps its first value.
    if let Some(anchor) = &options.drift.anchor {
        if let Some(row) = store
            .rows()
            .iter()
            .find(|r| &r.trial_id == anchor && r.feasible)
        {
            drift.recorded(&row.trial_id, ctx.objective.score(row));
        }
    }
    let mut state = Loop {
        plan: ctx
            .plan
            .iter()
            .enumerate()
            .map(|(i, s)| (s.trial_id.as_str(), (i as u32, s)))
            .collect(),
        executor,
        store,
        ctx,
        options,
        observer,
        watch,
        drift,
        walls: Vec::new(),
        anchor_checks: 0,
        elsewhere: Vec::new(),
        busy_again: VecDeque::new(),
        busy_retried: HashSet::new(),
    };
    state.run(strategy)
}

impl Loop<'_, '_> {
    fn run(&mut self, strategy: &mut dyn Strategy) -> anyhow::Result<SweepEnd> {
        let started = Instant::now();
        let total = strategy.remaining().unwrap_or(0);
        let mut done = 0;
        loop {
            self.learn_from_others(strategy)?;
            if crate::interrupt::requested() {
                return Ok(SweepEnd::Interrupted);
            }
            let left = strategy.remaining().unwrap_or(0);
            if let Some(max) = self.options.max_trials {
                let recorded = self.store.recorded_ids();
                let in_plan = self
                    .plan
                    .keys()
                    .filter(|id| recorded.contains(**id))
                    .count();
                if in_plan >= max && left > 0 {
                    return Ok(SweepEnd::BudgetReached {
                        reason: format!("max_trials = {max} reached"),
                        left,
                        out_of_time: false,
                    });
                }
            }
            if let (Some(max), Some(next)) = (self.options.max_time, self.expected_trial_time()) {
                if started.elapsed() + next > max && left > 0 {
                    return Ok(SweepEnd::BudgetReached {
                        reason: format!(
                            "the next trial (about {:.0} s) would end after max_hours ({:.2} h)",
                            next.as_secs_f64(),
                            max.as_secs_f64() / 3600.0
                        ),
                        left,
                        out_of_time: true,
                    });
                }
            }
            let Some(spec) = strategy
                .propose()
                .or_else(|| self.next_left_by_others())
                .or_else(|| self.busy_again.pop_front())
            else {
                if self.options.wait_for_others && !self.elsewhere.is_empty() {
                    if !interruptible_sleep(CLAIM_POLL) {
                        return Ok(SweepEnd::Interrupted);
                    }
                    continue;
                }
                return Ok(SweepEnd::Completed);
            };
            let guard = match self.ctx.claims.claim(&spec.trial_id)? {
                Claim::Taken(guard) => guard,
                Claim::Busy(holder) => {
                    self.observer.claimed_elsewhere(&spec, &holder);
                    self.elsewhere.push(spec);
                    continue;
                }
            };
            // Claimed: a trial another worker recorded meanwhile is done.
            self.learn_from_others(strategy)?;
            if self.store.recorded_ids().contains(&spec.trial_id) {
                guard.release();
                continue;
            }
            self.observer
                .trial_started(&spec, done, total.max(done + 1));
            let Some(row) = self.measure(&spec)? else {
                guard.release();
                self.observer.note(&format!(
                    "stop requested: trial {} was stopped and is not recorded; everything recorded is kept",
                    spec.trial_id
                ));
                return Ok(SweepEnd::Interrupted);
            };
            // A worker whose claim lapsed while it measured (stalled, or cut
            // off from the shared folder) may have been overtaken: the trial
            // is another worker's now, and this measurement is discarded.
            if let Err(why) = guard.still_held() {
                drop(guard);
                self.observer.note(&format!(
                    "trial {} not recorded: this worker lost its claim ({why}); the measurement \
                     is discarded",
                    spec.trial_id
                ));
                self.elsewhere.push(spec);
                continue;
            }
            self.store.append(row.clone())?;
            guard.release();
            strategy.observe(&spec, &row);
            done += 1;
            let ran = !self.ctx.unavailable.contains_key(&spec.model.identity);
            let diagnosis = self
                .watch
                .observe(&row, ran)
                // With nothing left to run there is nothing to save by stopping.
                .filter(|_| strategy.remaining().unwrap_or(0) > 0);
            if let Some(diagnosis) = diagnosis {
                let marked: Vec<TrialRow> = self
                    .store
                    .rows()
                    .iter()
                    .filter(|r| diagnosis.trial_ids.contains(&r.trial_id))
                    .map(|r| TrialRow {
                        systematic: Some(true),
                        ..r.clone()
                    })
                    .collect();
                self.store.replace(&marked)?;
                self.observer.trial_finished(TrialEvent {
                    done,
                    total: total.max(done),
                    row: &row,
                    spec: &spec,
                });
                return Ok(SweepEnd::SystematicFailure(diagnosis));
            }
            self.observer.trial_finished(TrialEvent {
                done,
                total: total.max(done),
                row: &row,
                spec: &spec,
            });
            let again =
                row.status == TrialStatus::Busy && self.busy_retried.insert(spec.trial_id.clone());
            if let Some(why) = self.after_busy_runs(&row, again) {
                return Ok(SweepEnd::MachineBusy(why));
            }
            if again {
                self.busy_again.push_back(spec.clone());
            }
            let value = row
                .feasible
                .then(|| self.ctx.objective.score(&row))
                .flatten();
            if self.drift.recorded(&row.trial_id, value) {
                match self.check_anchor(done)? {
                    Some(()) => {}
                    None => return Ok(SweepEnd::Interrupted),
                }
            }
        }
    }

    /// Tells the strategy what other workers recorded since the last look
    /// (their trials were pending for it until now).
    fn learn_from_others(&mut self, strategy: &mut dyn Strategy) -> anyhow::Result<()> {
        for row in self.store.refresh()? {
            if let Some((_, spec)) = self.plan.get(row.trial_id.as_str()) {
                strategy.observe(spec, &row);
            }
        }
        let recorded = self.store.recorded_ids();
        self.elsewhere.retain(|s| !recorded.contains(&s.trial_id));
        Ok(())
    }

    /// A trial held by another worker earlier whose claim has lapsed since
    /// (its worker died): it is this worker's to measure now.
    fn next_left_by_others(&mut self) -> Option<TrialSpec> {
        let live: HashSet<String> = self
            .ctx
            .claims
            .live()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        let i = self
            .elsewhere
            .iter()
            .position(|s| !live.contains(&s.trial_id))?;
        Some(self.elsewhere.remove(i))
    }

    /// Marks rows measured while the anchor had drifted.
    fn mark_drift(&mut self, ids: &[String], note: &str) -> anyhow::Result<()> {
        let marked: Vec<TrialRow> = self
            .store
            .rows()
            .iter()
            .filter(|r| ids.contains(&r.trial_id))
            .map(|r| TrialRow {
                drift: format!("measured while the machine drifted: {note}"),
                ..r.clone()
            })
            .collect();
        self.store.replace(&marked)
    }

    /// Mean wall time of this run's trials, else of the recorded ones.
    fn expected_trial_time(&self) -> Option<Duration> {
        let walls: Vec<f64> = if self.walls.is_empty() {
            self.store
                .rows()
                .iter()
                .map(|r| r.wall_s)
                .filter(|w| *w > 0.0)
                .collect()
        } else {
            self.walls.iter().map(Duration::as_secs_f64).collect()
        };
        (!walls.is_empty())
            .then(|| Duration::from_secs_f64(walls.iter().sum::<f64>() / walls.len() as f64))
    }

    /// Runs a trial, retrying crashes and timeouts, and builds its row.
    /// `None` when a stop was asked for.
    fn measure(&mut self, spec: &TrialSpec) -> anyhow::Result<Option<TrialRow>> {
        let started_at = now_rfc3339();
        let log_file = Store::log_file(&spec.trial_id);
        let log_path = self.store.folder().join(&log_file);
        let seq = self
            .plan
            .get(spec.trial_id.as_str())
            .map_or(u32::MAX, |(seq, _)| *seq);
        let facts = self
            .ctx
            .row_facts(self.options.noise_cv_max, self.options.quiet);
        if let Some(reason) = self.ctx.unavailable.get(&spec.model.identity) {
            let outcome = unavailable_outcome(reason);
            return Ok(Some(row_of(
                spec, &outcome, seq, started_at, log_file, &facts,
            )));
        }
        let spec = &self.with_drop_rule(spec);
        let mut attempts = 1;
        let mut earlier = Vec::new();
        let mut row = loop {
            let folder = self.store.folder().to_path_buf();
            let Some(row) =
                measure_once(self.executor, spec, &folder, log_file.clone(), seq, &facts)?
            else {
                return Ok(None);
            };
            self.walls.push(Duration::from_secs_f64(row.wall_s));
            // A stop asked for while it ran (SLURM's SIGTERM reaches the
            // child too): its ending says nothing about the trial.
            if crate::interrupt::requested() {
                return Ok(None);
            }
            if !is_retryable(row.status) || attempts > self.options.retries {
                break row;
            }
            let first_line = crate::runner::outcome::first_line(row.error.as_deref());
            earlier.push(format!("attempt {attempts} {}: {first_line}", row.status));
            let kept = log_path.with_extension(format!("try{attempts}.log"));
            let _ = std::fs::rename(&log_path, &kept);
            self.observer.note(&format!(
                "trial {} {} ({}); trying again (log of the failed attempt: {})",
                spec.trial_id,
                row.status,
                first_line,
                kept.display()
            ));
            attempts += 1;
        };
        if !earlier.is_empty() {
            let last = row
                .error
                .take()
                .map(|e| format!("; attempt {attempts}: {e}"))
                .unwrap_or_default();
            row.error = Some(format!("{}{last}", earlier.join("; ")));
        }
        row.attempts = attempts;
        row.started_at = started_at;
        Ok(Some(row))
    }

    /// Says when other processes disturbed a trial's runs, and waits for
    /// the machine to be quiet before the next trial: the load that never
    /// let it be, when it did not get quiet within the rule's wait. A trial
    /// kept busy is measured `again` after the others, or (once it was)
    /// when the sweep resumes.
    fn after_busy_runs(&mut self, row: &TrialRow, again: bool) -> Option<String> {
        let (Some(n), Some(rule)) = (row.busy_runs, self.options.quiet) else {
            return None;
        };
        self.observer.note(&format!(
            "trial {}: other processes disturbed its runs {n} time(s) (up to {:.1} of a \
             core){}",
            row.trial_id,
            row.other_cores_max.unwrap_or(0.0),
            if again {
                ": it decides nothing and is measured again once the machine is quiet"
            } else if row.status == TrialStatus::Busy {
                ": it decides nothing and runs again when the sweep resumes"
            } else {
                "; each was measured again"
            }
        ));
        let observer = &mut *self.observer;
        let busy = rule
            .wait_until_quiet(&[], &mut |line| observer.note(line))
            .err()?;
        Some(format!(
            "the machine stayed busy for {:.0} s ({}): measurements beside it would decide \
             nothing",
            rule.wait_s,
            busy.describe()
        ))
    }

    /// Re-measures the anchor and handles drift. `None` when a stop was
    /// asked for.
    fn check_anchor(&mut self, done: usize) -> anyhow::Result<Option<()>> {
        let Some((anchor_id, first)) = self.drift.anchor().map(|(id, v)| (id.to_string(), v))
        else {
            return Ok(Some(()));
        };
        let Some(value) = self.measure_anchor(&anchor_id, done, first)? else {
            return Ok(None);
        };
        let suspects = self.drift.take_suspects();
        let Some(Verdict::Drifted { change }) = value.and_then(|v| self.drift.judge(v)) else {
            return Ok(Some(()));
        };
        let note = format!(
            "anchor {anchor_id} measured {:+.1}% from its first value after trial {}",
            change * 100.0,
            done
        );
        self.observer.note(&format!(
            "drift: {note}; {} trials since the last good check are suspect",
            suspects.len()
        ));
        self.mark_drift(&suspects, &note)?;
        let settings = self.drift.settings().clone();
        if !settings.remeasure || suspects.is_empty() {
            return Ok(Some(()));
        }
        if settings.cooldown_s > 0.0 {
            self.observer
                .note(&format!("cooling down for {:.0} s", settings.cooldown_s));
            if !interruptible_sleep(Duration::from_secs_f64(settings.cooldown_s)) {
                return Ok(None);
            }
        }
        let Some(again) = self.measure_anchor(&anchor_id, done, first)? else {
            return Ok(None);
        };
        if !matches!(
            again.and_then(|v| self.drift.judge(v)),
            Some(Verdict::Steady { .. })
        ) {
            self.observer
                .note("the anchor has not come back: the suspect trials keep their mark");
            return Ok(Some(()));
        }
        self.observer.note(&format!(
            "the anchor is back: measuring the {} suspect trials again",
            suspects.len()
        ));
        let specs: Vec<TrialSpec> = suspects.iter().filter_map(|id| self.spec_of(id)).collect();
        let mut redone = Vec::new();
        for spec in specs {
            let Some(mut row) = self.measure(&spec)? else {
                return Ok(None);
            };
            row.drift = format!("re-measured after drift ({note})");
            redone.push(row);
        }
        self.store.replace(&redone)?;
        Ok(Some(()))
    }

    /// One anchor measurement, recorded in anchors.csv: `Some(value)` (the
    /// value is `None` when the anchor failed), or `None` when a stop was
    /// asked for.
    fn measure_anchor(
        &mut self,
        anchor_id: &str,
        done: usize,
        first: f64,
    ) -> anyhow::Result<Option<Option<f64>>> {
        let Some(spec) = self.spec_of(anchor_id) else {
            return Ok(Some(None));
        };
        self.anchor_checks += 1;
        let log = format!("logs/{anchor_id}.anchor{}.log", self.anchor_checks);
        let folder = self.store.folder().to_path_buf();
        let facts = self
            .ctx
            .row_facts(self.options.noise_cv_max, self.options.quiet);
        let Some(row) = measure_once(self.executor, &spec, &folder, log, 0, &facts)? else {
            return Ok(None);
        };
        let value = self.ctx.objective.score(&row);
        let verdict = match value.and_then(|v| self.drift.judge(v)) {
            Some(Verdict::Steady { .. }) => "steady",
            Some(Verdict::Drifted { .. }) => "drifted",
            None => "failed",
        };
        anchors::append(
            self.store.folder(),
            &AnchorCheck {
                at: now_rfc3339(),
                after_trials: done,
                anchor_trial_id: anchor_id.to_string(),
                metric: self.ctx.objective.metric.name().to_string(),
                first_value: first,
                value,
                change_pct: value.map(|v| (v / first - 1.0) * 100.0),
                verdict: verdict.to_string(),
            },
        )?;
        self.observer.note(&format!(
            "anchor check after {done} trials: {} {}",
            value.map_or("not measured".to_string(), |v| format!(
                "{v:.1} ({:+.1}%)",
                (v / first - 1.0) * 100.0
            )),
            verdict
        ));
        Ok(Some(value))
    }

    /// `spec` with the drop rule of this moment (`early_drop`): the best
    /// feasible trial recorded so far, another than this one, sets the
    /// objective's bar. Unchanged when drops are off.
    fn with_drop_rule(&self, spec: &TrialSpec) -> TrialSpec {
        let mut spec = spec.clone();
        if let Some(margin) = self.options.early_drop {
            let rows = self.store.rows();
            spec.schedule.drop = drop_rule(self.ctx.objective, rows, &spec.trial_id, margin);
        }
        spec
    }

    /// The spec of a planned trial.
    fn spec_of(&self, trial_id: &str) -> Option<TrialSpec> {
        self.plan.get(trial_id).map(|(_, spec)| (*spec).clone())
    }
}

/// The drop rule for trial `id` (`early_drop`): the worst run of the best
/// feasible trial of `rows` measured to the end, another than this one,
/// sets the objective's bar.
fn drop_rule(
    objective: &Objective,
    rows: &[TrialRow],
    id: &str,
    margin: f64,
) -> Option<crate::early_drop::DropRule> {
    let others: Vec<&TrialRow> = rows.iter().filter(|r| r.trial_id != id).collect();
    let set_by = objective.rank(&others).first().and_then(|&best| {
        let best = others[best];
        let runs = best.samples_of(objective.metric);
        let worst = crate::early_drop::worst_of(objective.direction, &runs)?;
        Some((best.trial_id.as_str(), worst))
    });
    crate::early_drop::rule(objective, set_by, margin)
}

/// Sleeps, waking early when a stop is asked for; false if it was.
fn interruptible_sleep(duration: Duration) -> bool {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        if crate::interrupt::requested() {
            return false;
        }
        std::thread::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
        );
    }
    !crate::interrupt::requested()
}

fn unavailable_outcome(reason: &str) -> TrialOutcome {
    TrialOutcome {
        status: TrialStatus::Failed,
        error: Some(reason.to_string()),
        metrics: None,
        exit: None,
        peak_rss_kib: None,
        wall: Duration::ZERO,
        log_tail: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::Params;
    use crate::protocol::{ModelVariant, Workload};
    use crate::runner::mock::{self, MockExecutor};
    use crate::search::GridStrategy;
    use crate::test_support::defaults;
    use crate::workers::Origin;
    use crate::workers::claims::Claims;
    use std::cell::Cell;

    fn specs(n: usize) -> Vec<TrialSpec> {
        (0..n)
            .map(|i| TrialSpec {
                schedule: Default::default(),
                server: None,
                python: None,
                trial_id: format!("t{i}"),
                model: ModelVariant {
                    name: "m".into(),
                    variant: if i == 3 { "Q8_0".into() } else { "Q4_1".into() },
                    path: "m.gguf".into(),
                    identity: if i == 3 {
                        "derived".into()
                    } else {
                        "file".into()
                    },
                },
                params: Params::default().with(crate::knobs::N_THREADS, (i as i32 + 1).into()),
                workload: Workload {
                    prompt_tokens: 8,
                    gen_tokens: 4,
                    repetitions: 2,
                    warmup: 0,
                    request_prompt_tokens: 8,
                    request_max_tokens: 4,
                    n_depth: Vec::new(),
                    request_history_tokens: 0,
                    prompts: Default::default(),
                },
                seed: 0,
                sampling: Default::default(),
                forced: Default::default(),
            })
            .collect()
    }

    /// Runs a sweep of `trials` with `answer`, returning how it ended and
    /// the store.
    fn sweep(
        dir: &std::path::Path,
        trials: &[TrialSpec],
        options: &SweepOptions,
        answer: impl FnMut(&TrialSpec) -> Execution,
    ) -> (SweepEnd, Vec<String>, Store) {
        let defaults = defaults();
        let objective = Objective::default();
        let claims = Claims::new(dir, "test", "host", Duration::from_secs(60)).unwrap();
        let ctx = SweepContext {
            sweep_name: "s",
            build: "test build",
            defaults: &defaults,
            objective: &objective,
            plan: trials,
            unavailable: [("derived".to_string(), "could not derive Q8_0".to_string())].into(),
            facts: None,
            origin: &Origin::default(),
            claims: &claims,
        };
        let mut store = Store::open(dir).unwrap();
        let mut strategy = GridStrategy::new(trials, &store.recorded_ids());
        let mut executor = MockExecutor::new(answer);
        let end = run(
            &mut strategy,
            &mut executor,
            &mut store,
            &ctx,
            options,
            &mut Silent,
            &mut FailureWatch::new(false),
        )
        .unwrap();
        (end, executor.executed, store)
    }

    /// An answer by trial id and how many times that trial was executed
    /// (1 the first time).
    fn by_call(answer: impl Fn(&str, u32) -> Execution) -> impl FnMut(&TrialSpec) -> Execution {
        let mut calls: HashMap<String, u32> = HashMap::new();
        move |spec| {
            let n = calls.entry(spec.trial_id.clone()).or_default();
            *n += 1;
            answer(spec.trial_id.as_str(), *n)
        }
    }

    fn ok(tg: f64) -> Execution {
        Execution::Done(mock::measured(tg, 500.0))
    }

    #[test]
    fn every_trial_becomes_one_row_whatever_its_ending() {
        let dir = tempfile::tempdir().unwrap();
        let options = SweepOptions {
            retries: 0,
            ..SweepOptions::default()
        };
        let (end, executed, store) = sweep(dir.path(), &specs(5), &options, |spec| {
            match spec.trial_id.as_str() {
                "t1" => Execution::Done(mock::failed(TrialStatus::Crashed, "signal 11")),
                "t2" => Execution::Done(mock::failed(TrialStatus::Timeout, "too slow")),
                _ => ok(100.0),
            }
        });
        assert_eq!(end, SweepEnd::Completed);
        // The unavailable variant's trial was not executed but recorded.
        assert_eq!(executed, vec!["t0", "t1", "t2", "t4"]);
        let statuses: Vec<_> = store.rows().iter().map(|r| r.status).collect();
        use TrialStatus::{Crashed, Failed, Ok, Timeout};
        assert_eq!(statuses, vec![Ok, Crashed, Timeout, Failed, Ok]);
        assert_eq!(
            store.rows()[3].error.as_deref(),
            Some("could not derive Q8_0")
        );
        assert_eq!(store.rows()[4].seq, 4);
        assert!(store.rows().iter().all(|r| r.build == "test build"));
    }

    /// An outcome measured while other processes kept the machine busy.
    fn busy(tg: f64) -> Execution {
        let mut outcome = mock::measured(tg, 500.0);
        outcome.status = TrialStatus::Busy;
        outcome.metrics.as_mut().unwrap().busy.kept = 1;
        Execution::Done(outcome)
    }

    #[test]
    fn a_trial_kept_busy_is_measured_again_after_the_others_once() {
        let dir = tempfile::tempdir().unwrap();
        let (end, executed, store) = sweep(
            dir.path(),
            &specs(3),
            &SweepOptions::default(),
            by_call(|id, n| match (id, n) {
                // Busy the first time only: its second measurement counts.
                ("t0", 1) => busy(100.0),
                // Busy every time: left for a resumed sweep.
                ("t1", _) => busy(100.0),
                _ => ok(90.0),
            }),
        );
        assert_eq!(end, SweepEnd::Completed);
        assert_eq!(executed, vec!["t0", "t1", "t2", "t0", "t1"]);
        let status = |id: &str| {
            store
                .rows()
                .iter()
                .find(|r| r.trial_id == id)
                .map(|r| r.status)
                .unwrap()
        };
        assert_eq!(status("t0"), TrialStatus::Ok);
        assert_eq!(status("t1"), TrialStatus::Busy);
        assert!(
            !store.recorded_ids().contains("t1"),
            "t1 runs again on resume"
        );
    }

    #[test]
    fn recorded_trials_are_not_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let trials = specs(5);
        let (_, first, store) = sweep(dir.path(), &trials[..2], &SweepOptions::default(), |_| {
            ok(50.0)
        });
        drop(store);
        assert_eq!(first, vec!["t0", "t1"]);
        let (end, executed, store) =
            sweep(dir.path(), &trials, &SweepOptions::default(), |_| ok(50.0));
        assert_eq!(end, SweepEnd::Completed);
        assert_eq!(executed, vec!["t2", "t4"]);
        let ids: Vec<_> = store.rows().iter().map(|r| r.trial_id.as_str()).collect();
        assert_eq!(ids, vec!["t0", "t1", "t2", "t3", "t4"]);
    }

    #[test]
    fn crashes_and_timeouts_are_retried_failures_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (_, executed, store) = sweep(
            dir.path(),
            &specs(3),
            &SweepOptions::default(),
            by_call(|id, n| match (id, n) {
                ("t0", 1) => {
                    Execution::Done(mock::failed(TrialStatus::Crashed, "signal 11 (SIGSEGV)"))
                }
                ("t1", _) => Execution::Done(mock::failed(TrialStatus::Timeout, "hung")),
                ("t2", _) => Execution::Done(mock::failed(TrialStatus::Failed, "bad context")),
                _ => ok(100.0),
            }),
        );
        assert_eq!(executed, vec!["t0", "t0", "t1", "t1", "t2"]);
        let rows = store.rows();
        assert_eq!((rows[0].status, rows[0].attempts), (TrialStatus::Ok, 2));
        assert!(
            rows[0]
                .error
                .as_deref()
                .unwrap()
                .starts_with("attempt 1 crashed: signal 11"),
            "{:?}",
            rows[0].error
        );
        assert_eq!(
            (rows[1].status, rows[1].attempts),
            (TrialStatus::Timeout, 2)
        );
        assert_eq!((rows[2].status, rows[2].attempts), (TrialStatus::Failed, 1));
        assert!(
            dir.path().join("logs/t0.try1.log").exists(),
            "the failed attempt's log is kept"
        );
    }

    #[test]
    fn an_interrupted_trial_is_not_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let (end, executed, store) =
            sweep(dir.path(), &specs(4), &SweepOptions::default(), |spec| {
                if spec.trial_id == "t1" {
                    Execution::Interrupted
                } else {
                    ok(10.0)
                }
            });
        assert_eq!(end, SweepEnd::Interrupted);
        assert_eq!(executed, vec!["t0", "t1"]);
        assert_eq!(store.rows().len(), 1);
    }

    #[test]
    fn max_trials_counts_recorded_rows_and_resuming_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let trials: Vec<_> = specs(6)
            .into_iter()
            .filter(|t| t.trial_id != "t3")
            .collect();
        let options = SweepOptions {
            max_trials: Some(2),
            ..SweepOptions::default()
        };
        let (end, executed, store) = sweep(dir.path(), &trials, &options, |_| ok(10.0));
        assert_eq!(executed.len(), 2);
        assert!(
            matches!(end, SweepEnd::BudgetReached { left: 3, .. }),
            "{end:?}"
        );
        drop(store);
        let options = SweepOptions {
            max_trials: Some(4),
            ..options
        };
        let (end, executed, _) = sweep(dir.path(), &trials, &options, |_| ok(10.0));
        assert_eq!(executed.len(), 2, "two more, to four in all");
        assert!(
            matches!(end, SweepEnd::BudgetReached { left: 1, .. }),
            "{end:?}"
        );
    }

    #[test]
    fn max_time_stops_before_a_trial_that_would_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let trials: Vec<_> = (0..50)
            .map(|i| TrialSpec {
                schedule: Default::default(),
                server: None,
                python: None,
                trial_id: format!("x{i}"),
                ..specs(1)[0].clone()
            })
            .collect();
        let options = SweepOptions {
            max_time: Some(Duration::from_millis(300)),
            ..SweepOptions::default()
        };
        let (end, executed, store) = sweep(dir.path(), &trials, &options, |_| {
            std::thread::sleep(Duration::from_millis(40));
            let mut outcome = mock::measured(10.0, 10.0);
            outcome.wall = Duration::from_millis(40);
            Execution::Done(outcome)
        });
        assert!(matches!(end, SweepEnd::BudgetReached { .. }), "{end:?}");
        assert!(!executed.is_empty() && executed.len() < 50);
        assert_eq!(store.rows().len(), executed.len());
    }

    /// A machine whose speed drops to 80% for calls `slow` (1-based).
    fn drifting(slow: std::ops::Range<u32>) -> impl FnMut(&TrialSpec) -> Execution {
        let calls = Cell::new(0);
        move |_| {
            calls.set(calls.get() + 1);
            ok(if slow.contains(&calls.get()) {
                80.0
            } else {
                100.0
            })
        }
    }

    #[test]
    fn the_best_trial_so_far_sets_the_bar_with_its_worst_run() {
        use crate::objective::{Direction, Metric};
        let objective = Objective::default();
        let row = |id: &str, tg: f64| crate::test_support::row(id, &mock::measured(tg, 500.0));
        let mut fast = row("fast", 150.0);
        fast.request_tps_samples = "160;140;150".into();
        let failed =
            crate::test_support::row("failed", &mock::failed(TrialStatus::Crashed, "abort"));
        let rows = [row("slow", 100.0), failed, fast];
        let rule = drop_rule(&objective, &rows, "next", 0.1).unwrap();
        assert_eq!(rule.bars[0].value, 140.0);
        assert!(rule.bars[0].what.contains("(fast, 140 t/s)"));
        // Never its own bar: measured again, it is held to the next best.
        let rule = drop_rule(&objective, &rows, "fast", 0.1).unwrap();
        assert!(rule.bars[0].what.contains("(slow, "), "{:?}", rule.bars);
        // Latency objectives: the worst run is the longest.
        let mut quick = row("quick", 150.0);
        quick.ttft_ms_samples = "450;550;500".into();
        let ttft = Objective {
            metric: Metric::TtftMs,
            direction: Direction::Minimize,
            constraints: Vec::new(),
        };
        let rule = drop_rule(&ttft, &[quick], "next", 0.1).unwrap();
        assert_eq!(rule.bars[0].value, 550.0);
    }

    fn drift_options(remeasure: bool) -> SweepOptions {
        SweepOptions {
            drift: DriftSettings {
                every: 3,
                remeasure,
                ..DriftSettings::default()
            },
            ..SweepOptions::default()
        }
    }

    #[test]
    fn drift_marks_the_trials_since_the_last_good_check() {
        let dir = tempfile::tempdir().unwrap();
        let trials: Vec<_> = (0..8)
            .map(|i| TrialSpec {
                schedule: Default::default(),
                server: None,
                python: None,
                trial_id: format!("x{i}"),
                ..specs(1)[0].clone()
            })
            .collect();
        // Calls: x0 (anchor, 100), x1 x2 x3, check (steady), x4 x5 x6 slow,
        // check slow → drift; re-check slow → marks stay.
        let (_, executed, store) =
            sweep(dir.path(), &trials, &drift_options(true), drifting(6..20));
        assert_eq!(
            executed.iter().filter(|id| *id == "x0").count(),
            1 + 3,
            "anchor + three checks"
        );
        let marked: Vec<_> = store
            .rows()
            .iter()
            .filter(|r| !r.drift.is_empty())
            .map(|r| r.trial_id.as_str())
            .collect();
        assert_eq!(marked, vec!["x4", "x5", "x6"]);
        let checks = anchors::read(dir.path()).unwrap();
        let verdicts: Vec<_> = checks.iter().map(|c| c.verdict.as_str()).collect();
        assert_eq!(verdicts, vec!["steady", "drifted", "drifted"]);
        assert!((checks[1].change_pct.unwrap() + 20.0).abs() < 1e-9);
        // What is stored on disk agrees.
        let on_disk = crate::store::read_rows(dir.path()).unwrap();
        assert_eq!(on_disk.iter().filter(|r| !r.drift.is_empty()).count(), 3);
    }

    #[test]
    fn after_drift_the_suspects_are_measured_again_once_the_anchor_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let trials: Vec<_> = (0..7)
            .map(|i| TrialSpec {
                schedule: Default::default(),
                server: None,
                python: None,
                trial_id: format!("x{i}"),
                ..specs(1)[0].clone()
            })
            .collect();
        // x0 anchor; x1 x2 x3 slow; check slow → drift; re-check fast →
        // x1 x2 x3 measured again at full speed.
        let (_, _, store) = sweep(dir.path(), &trials, &drift_options(true), drifting(2..6));
        let rows = store.rows();
        assert_eq!(
            rows.len(),
            7,
            "re-measuring replaces rows, it does not add any"
        );
        for id in ["x1", "x2", "x3"] {
            let r = rows.iter().find(|r| r.trial_id == id).unwrap();
            assert!(
                r.drift.starts_with("re-measured after drift"),
                "{id}: {}",
                r.drift
            );
            assert_eq!(r.tg_tps_mean.map(f64::round), Some(100.0), "{id}");
        }
        let ids: HashSet<_> = crate::store::read_rows(dir.path())
            .unwrap()
            .into_iter()
            .map(|r| r.trial_id)
            .collect();
        assert_eq!(ids.len(), 7);
    }
}
