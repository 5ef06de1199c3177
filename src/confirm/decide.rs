//! The decision of the confirmation round. Only the candidates that ran best
//! compete: those that ran cleanly, else those faulty in at most half of
//! their runs (`faults`). Among them the one that measured best wins, unless
//! it cannot be told apart from others and one of them uses less memory of
//! the same kind (`footprint`). The verdict says how sure that is and why
//! any candidate was passed over.

use super::faults::{RunRecord, Standing};
use super::footprint::{self, Footprint};
use super::sequential::{Pairing, Rule};
use super::versus::{Ratio, reading};
use super::{Recommendation, RunnerUp};
use crate::objective::Objective;
use crate::search::core::orient;
use crate::stats::{Summary, ratio_by_rounds};
use crate::store::row::TrialRow;
use std::fmt::Write as _;

/// A confirmed candidate: its sweep row, the log values of its runs by
/// round (`None`: not measured) and what went wrong in them.
pub struct Candidate<'a> {
    pub row: &'a TrialRow,
    pub rounds: Vec<Option<f64>>,
    pub record: RunRecord,
}

impl Candidate<'_> {
    fn id(&self) -> &str {
        &self.row.trial_id
    }

    /// The log values of the runs that measured the metric.
    fn logs(&self) -> Vec<f64> {
        self.rounds.iter().flatten().copied().collect()
    }

    /// Geometric mean of the runs' means.
    fn value(&self) -> f64 {
        Summary::of(&self.logs()).map_or(0.0, |s| s.mean.exp())
    }
}

/// How `a` compares with `b`, round by round where both were measured
/// ([`ratio_by_rounds`]) with the interval of `rule`, in logs:
/// (difference, low, high, rounds paired); `None` without an interval.
fn log_interval(a: &Candidate, b: &Candidate, rule: Rule) -> Option<(f64, f64, f64, usize)> {
    let (r, paired) = ratio_by_rounds(&a.rounds, &b.rounds, rule.alpha)?;
    Some((r.ratio.ln(), r.low?.ln(), r.high?.ln(), paired))
}

/// How the memory tie-break went between the best and those it cannot be
/// told apart from.
enum TieBreak {
    /// Nothing to break: no other candidate measured as well.
    NoTie,
    /// The best uses the least memory of this kind.
    BestIsLightest(Footprint),
    /// Another uses less memory than the best, and is chosen.
    LighterThanBest { chosen: Footprint, best: Footprint },
    /// Their memory cannot be compared, and why.
    Incomparable(String),
}

/// The recommendation among `candidates` (in the sweep's order), or why
/// there is none; intervals and the margin within which two count as
/// equally good are `rule`'s.
pub fn decide(
    candidates: &[Candidate],
    objective: &Objective,
    rule: Rule,
) -> Result<Recommendation, String> {
    let standing = candidates
        .iter()
        .map(|c| c.record.standing())
        .filter(|s| *s != Standing::Disqualified)
        .min()
        .ok_or_else(|| no_candidate(candidates))?;
    let mut measured: Vec<(&Candidate, f64)> = candidates
        .iter()
        .filter(|c| c.record.standing() == standing)
        .filter_map(|c| Summary::of(&c.logs()).map(|s| (c, orient(objective, s.mean))))
        .collect();
    measured.sort_by(|a, b| b.1.total_cmp(&a.1));
    let &(best, _) = measured.first().ok_or_else(|| no_candidate(candidates))?;
    // Configurations the best cannot be told apart from: no significant
    // difference, and measured within the margin of it. (One measured
    // far slower whose interval is merely wide is not a tie: the best stays,
    // and the verdict says the runs were too noisy to be sure.)
    let ties: Vec<&Candidate> = measured
        .iter()
        .skip(1)
        .filter(|(c, _)| match log_interval(best, c, rule) {
            // How much better the best measured, whatever the direction.
            Some((d, lo, hi, _)) => {
                lo <= 0.0 && hi >= 0.0 && orient(objective, d) <= rule.margin.ln_1p()
            }
            None => false,
        })
        .map(|(c, _)| *c)
        .collect();
    let group: Vec<&Candidate> = std::iter::once(best).chain(ties.iter().copied()).collect();
    let (chosen, tie_break) = if ties.is_empty() {
        (best, TieBreak::NoTie)
    } else {
        let rows: Vec<&TrialRow> = group.iter().map(|c| c.row).collect();
        match footprint::lightest(&rows) {
            Ok((0, footprints)) => (best, TieBreak::BestIsLightest(footprints[0])),
            Ok((i, footprints)) => (
                group[i],
                TieBreak::LighterThanBest {
                    chosen: footprints[i],
                    best: footprints[0],
                },
            ),
            Err(why) => (best, TieBreak::Incomparable(why)),
        }
    };
    let runner_up = measured
        .iter()
        .map(|(c, _)| *c)
        .find(|c| c.id() != chosen.id())
        .map(|r| runner_up_of(chosen, r, objective, rule));
    let unit = objective.metric.unit();
    let mut verdict = format!(
        "{} measured {:.1} {unit} over {} {}",
        chosen.id(),
        chosen.value(),
        chosen.logs().len(),
        match rule.pairing {
            Pairing::Rounds => "confirmation runs",
            Pairing::Blocks => "blocks",
        }
    );
    if let Some(r) = &runner_up {
        let tied = ties.iter().any(|t| t.id() == r.trial_id) || chosen.id() != best.id();
        verdict.push_str(&comparison(r, tied, &tie_break, objective, rule));
    }
    report_faults(candidates, chosen, standing, &mut verdict);
    Ok(Recommendation {
        trial_id: chosen.id().to_string(),
        metric: objective.metric.name().into(),
        value: chosen.value(),
        runs: chosen.logs().len(),
        runner_up,
        verdict,
        candidates: candidates.iter().map(|c| c.id().to_string()).collect(),
        references: Vec::new(),
        versus: Vec::new(),
        reached: None,
    })
}

/// Adds to `verdict` what went wrong in the runs of each candidate, chosen
/// or not (the chosen one competed with those of its `standing`).
fn report_faults(
    candidates: &[Candidate],
    chosen: &Candidate,
    standing: Standing,
    verdict: &mut String,
) {
    for c in candidates.iter().filter(|c| !c.record.is_clean()) {
        let faults = c.record.describe();
        if c.id() == chosen.id() {
            let _ = write!(verdict, "; it {faults} (no candidate ran cleanly)");
        } else if c.record.standing() > standing {
            let _ = write!(verdict, "; {} was passed over: it {faults}", c.id());
        } else {
            let _ = write!(verdict, "; {} also {faults}", c.id());
        }
    }
}

/// Why no candidate can be recommended.
fn no_candidate(candidates: &[Candidate]) -> String {
    let each: Vec<String> = candidates
        .iter()
        .map(|c| match c.record.describe() {
            faults if faults.is_empty() => format!("{} was not measured", c.id()),
            faults => format!("{} {faults}", c.id()),
        })
        .collect();
    format!(
        "no candidate ran cleanly in most of its confirmation runs: {}",
        each.join("; ")
    )
}

/// The chosen candidate against the next best of those that competed.
fn runner_up_of(chosen: &Candidate, r: &Candidate, objective: &Objective, rule: Rule) -> RunnerUp {
    let mean = |c: &Candidate| Summary::of(&c.logs()).map_or(0.0, |s| s.mean);
    let (d, low, high, paired_rounds) = match log_interval(chosen, r, rule) {
        Some((d, lo, hi, paired)) => {
            let (a, b) = (orient(objective, lo).exp(), orient(objective, hi).exp());
            (d, Some(a.min(b)), Some(a.max(b)), paired)
        }
        None => (mean(chosen) - mean(r), None, None, 0),
    };
    RunnerUp {
        trial_id: r.id().to_string(),
        value: r.value(),
        ratio: orient(objective, d).exp(),
        ratio_low: low,
        ratio_high: high,
        distinguishable: matches!((low, high), (Some(l), Some(h)) if l > 1.0 || h < 1.0),
        paired_rounds,
    }
}

/// The verdict's clause on the runner-up `r`; `tied` when the two count as
/// equally good (the tie-break then decided): [`reading`] of their ratio,
/// and how the tie was broken.
fn comparison(
    r: &RunnerUp,
    tied: bool,
    tie_break: &TieBreak,
    objective: &Objective,
    rule: Rule,
) -> String {
    let ratio = Ratio {
        ratio: r.ratio,
        low: r.ratio_low,
        high: r.ratio_high,
        pairs: r.paired_rounds,
    };
    let them = reading(
        &ratio,
        &format!("the runner-up {}", r.trial_id),
        objective.metric,
        rule,
    );
    if r.distinguishable || !tied {
        return format!("; {them}");
    }
    match tie_break {
        TieBreak::Incomparable(why) => format!(
            "; {them}, but their memory cannot be compared ({why}), so the best measured stays"
        ),
        // The best was not chosen: `r` is the best measured.
        TieBreak::LighterThanBest { chosen, best } => format!(
            "; {them}, and this one uses less {} ({:.0} MiB against {:.0} MiB)",
            chosen.kind(),
            chosen.mib(),
            best.mib()
        ),
        TieBreak::BestIsLightest(least) => format!(
            "; {them}, and uses the least {} of those ({:.0} MiB)",
            least.kind(),
            least.mib()
        ),
        TieBreak::NoTie => format!("; {them}"),
    }
}
