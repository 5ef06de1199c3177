//! Everything a report is made from, read from a sweep's output folder:
//! rows, manifest, the confirmation round's recommendation, the reference
//! trials (the user's baseline and llama-server's defaults) — and the facts
//! derived from them that every part of the report shares: the winner, how
//! it compares with each reference, each variant's quality and each trial's
//! generation ceiling.

use super::ceiling::Ceiling;
use crate::confirm::{self, Recommendation};
use crate::objective::{Direction, Metric, Objective};
use crate::plan::references::Role;
use crate::quality::record::QualityRow;
use crate::stats::{RatioInterval, ratio_of};
use crate::store;
use crate::store::manifest::{self, Manifest};
use crate::store::plan_file::{self, PlannedReference};
use crate::store::row::TrialRow;
use std::path::{Path, PathBuf};

/// How the winner compares with a reference, oriented so that above 1 is
/// better whatever the metric's direction.
#[derive(Debug, Clone, PartialEq)]
pub struct Gain {
    pub role: Role,
    pub trial_id: String,
    pub ratio: RatioInterval,
    /// Where the interval comes from.
    pub source: String,
    pub note: Option<String>,
    /// The reference's own row, when it completed.
    pub measured: bool,
}

pub struct ReportData {
    pub folder: PathBuf,
    pub manifest: Manifest,
    /// The rows of the folder's current plan (all rows when it has none).
    pub rows: Vec<TrialRow>,
    /// The confirmation round's decision, when its trial is among `rows`.
    pub recommendation: Option<Recommendation>,
    /// The reference trials (baseline, defaults) plan.json lists.
    pub references: Vec<PlannedReference>,
    /// The trial ids the search planned (references excluded), when the
    /// folder has a plan.json.
    planned: Option<std::collections::HashSet<String>>,
    /// Index into `rows` of the recommended trial.
    pub winner: Option<usize>,
    /// quality.csv's rows for the models of `rows`, the last of each
    /// (model file, KV types); none in folders from before quality.
    pub quality: Vec<QualityRow>,
    /// The recommendation verified in the app's runtimes (verify.json).
    pub verification: Option<crate::verify::Verification>,
}

impl ReportData {
    pub fn load(folder: &Path) -> anyhow::Result<ReportData> {
        let manifest_path = folder.join(store::MANIFEST);
        if !manifest_path.exists() {
            anyhow::bail!(
                "{} is not a sweep folder (it has no {}); give the folder `llama-sweep run` wrote, e.g. reports/demo",
                folder.display(),
                store::MANIFEST
            );
        }
        let manifest = manifest::read(&manifest_path)?;
        let mut rows = store::read_rows(folder)?;
        let (planned, references) = match plan_file::read(folder)? {
            Some(plan) => (
                Some(
                    plan.trial_ids
                        .into_iter()
                        .collect::<std::collections::HashSet<_>>(),
                ),
                plan.references,
            ),
            None => (None, Vec::new()),
        };
        if let Some(planned) = &planned {
            rows.retain(|r| {
                planned.contains(&r.trial_id) || references.iter().any(|x| x.trial_id == r.trial_id)
            });
        }
        let recommendation = confirm::read_recommendation(folder)
            .filter(|r| rows.iter().any(|row| row.trial_id == r.trial_id));
        let objective = &manifest.sweep.objective;
        let winner = match &recommendation {
            Some(r) => rows.iter().rposition(|row| row.trial_id == r.trial_id),
            None => objective.rank(&rows).first().copied(),
        };
        let quality = current_quality(crate::quality::record::read(folder)?, &rows);
        Ok(ReportData {
            folder: folder.to_path_buf(),
            manifest,
            rows,
            recommendation,
            references,
            planned,
            winner,
            quality,
            verification: crate::verify::record::read(folder).ok().flatten(),
        })
    }

    /// The quality measurement of a row's model file and KV types.
    pub fn quality_of(&self, row: &TrialRow) -> Option<&QualityRow> {
        self.quality.iter().rev().find(|q| {
            q.model_identity == row.model_identity
                && q.type_k == row.params.kv_type(crate::knobs::TYPE_K)
                && q.type_v == row.params.kv_type(crate::knobs::TYPE_V)
        })
    }

    /// The ceiling memory bandwidth puts on a row's generation speed, or why
    /// it has none.
    pub fn ceiling(&self, row: &TrialRow) -> Ceiling {
        Ceiling::in_sweep(row, &self.manifest)
    }

    /// The ceiling in tokens/s: known only for rows that ran all on the CPU
    /// of a machine whose bandwidth was measured, with known bytes per token.
    pub fn ceiling_tps(&self, row: &TrialRow) -> Option<f64> {
        self.ceiling(row).tps()
    }

    /// A row's generation speed in percent of its ceiling.
    pub fn ceiling_pct(&self, row: &TrialRow) -> Option<f64> {
        self.ceiling(row).percent_of(row)
    }

    pub fn objective(&self) -> &Objective {
        &self.manifest.sweep.objective
    }

    /// The rows of the search itself: the reference trials (baseline,
    /// defaults) differ from the searched space in several parameters at
    /// once, so they would confound the parameter effects, unless they are
    /// also trials of the plan.
    pub fn searched_rows(&self) -> Vec<TrialRow> {
        match &self.planned {
            Some(planned) => self
                .rows
                .iter()
                .filter(|r| planned.contains(&r.trial_id))
                .cloned()
                .collect(),
            None => self.rows.clone(),
        }
    }

    pub fn winner(&self) -> Option<&TrialRow> {
        self.winner.map(|i| &self.rows[i])
    }

    /// The last row of a trial.
    pub fn row(&self, trial_id: &str) -> Option<&TrialRow> {
        self.rows.iter().rev().find(|r| r.trial_id == trial_id)
    }

    /// The roles (baseline, defaults) a trial plays.
    pub fn roles_of(&self, trial_id: &str) -> Vec<Role> {
        self.references
            .iter()
            .filter(|r| r.trial_id == trial_id)
            .map(|r| r.role)
            .collect()
    }

    /// The winner against each reference: from the confirmation round's
    /// interleaved runs when it measured the reference, else from the two
    /// trials' own repetitions.
    pub fn gains(&self) -> Vec<Gain> {
        let Some(winner) = self.winner() else {
            return Vec::new();
        };
        let objective = self.objective();
        self.references
            .iter()
            .map(|reference| {
                let row = self.row(&reference.trial_id);
                let measured = row.is_some_and(|r| objective.score(r).is_some());
                let confirmed = self
                    .recommendation
                    .iter()
                    .flat_map(|r| &r.versus)
                    .find(|v| v.role == reference.role && v.trial_id == reference.trial_id);
                let (ratio, source) = match (confirmed, row) {
                    (Some(v), _) => (
                        RatioInterval {
                            ratio: v.ratio,
                            low: v.ratio_low,
                            high: v.ratio_high,
                        },
                        match v.paired_rounds {
                            0 => format!("{} interleaved confirmation runs each", v.runs),
                            n => format!("{n} confirmation rounds, the two compared within each"),
                        } + &self
                            .recommendation
                            .as_ref()
                            .and_then(|r| r.reached.as_ref())
                            .filter(|reached| reached.looks > 1)
                            .map_or(String::new(), |reached| {
                                format!(
                                    "; the interval allows for the rounds stopping after any of {}",
                                    reached.looks
                                )
                            }),
                    ),
                    (None, Some(r)) if measured => (
                        oriented_ratio(objective, winner, r),
                        "the sweep's repetitions of both trials".into(),
                    ),
                    _ => (
                        RatioInterval {
                            ratio: f64::NAN,
                            low: None,
                            high: None,
                        },
                        String::new(),
                    ),
                };
                Gain {
                    role: reference.role,
                    trial_id: reference.trial_id.clone(),
                    ratio,
                    source,
                    note: reference.note.clone(),
                    measured,
                }
            })
            .collect()
    }
}

/// The quality rows of the models `rows` measured (all of them when there
/// are no rows yet), the last of each (model file, KV types): a measurement
/// that failed and was retried counts once.
fn current_quality(all: Vec<QualityRow>, rows: &[TrialRow]) -> Vec<QualityRow> {
    let mut out: Vec<QualityRow> = Vec::new();
    for q in all {
        if !rows.is_empty() && !rows.iter().any(|r| r.model_identity == q.model_identity) {
            continue;
        }
        out.retain(|o| {
            (&o.model_identity, o.type_k, o.type_v) != (&q.model_identity, q.type_k, q.type_v)
        });
        out.push(q);
    }
    out
}

/// How many times better `a` is than `b` on the objective (above 1 better),
/// from their repetitions.
pub fn oriented_ratio(objective: &Objective, a: &TrialRow, b: &TrialRow) -> RatioInterval {
    let metric = objective.metric;
    let (sa, sb) = (
        super::effects::samples(a, metric),
        super::effects::samples(b, metric),
    );
    let raw = ratio_of(&sa, &sb).unwrap_or(RatioInterval {
        ratio: f64::NAN,
        low: None,
        high: None,
    });
    match objective.direction {
        Direction::Maximize => raw,
        Direction::Minimize => raw.inverted(),
    }
}

/// What the metric measures, for sentences: "generation speed".
pub fn metric_noun(metric: Metric) -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed(match metric {
        Metric::RequestTps => "request generation speed",
        Metric::TpotMs => "time per generated token of the request",
        Metric::OutputTps => "tokens per second of all requests together",
        Metric::TgTps => "empty-cache generation speed",
        Metric::ItlMsP50 => "median time between tokens",
        Metric::PpTps => "prompt processing speed",
        Metric::AggregateTps => "generation speed of all sequences together",
        Metric::TtftMsP95 => "95th percentile of time to first token",
        Metric::ItlMsP95 => "95th percentile of time between tokens",
        Metric::AtDepth(speed, depth) => {
            return std::borrow::Cow::Owned(format!(
                "{} with {depth} tokens in the cache",
                metric_noun(speed.metric())
            ));
        }
        Metric::TtftMs => "time to first token",
        Metric::E2eMs => "end-to-end latency",
        Metric::PeakRssMib => "peak memory",
        Metric::DeviceMemoryMib => "device memory",
        Metric::Kld => "KL divergence",
        Metric::PplIncreasePct => "perplexity increase",
        Metric::Top1Pct => "top-1 agreement",
    })
}

/// The recorded demo grid (no quality, no bandwidth), for tests to change.
#[cfg(test)]
pub(crate) fn fixture() -> ReportData {
    ReportData::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-demo-grid"))
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::record::example;

    #[test]
    fn an_old_folder_has_no_quality_and_no_ceiling() {
        let data = fixture();
        assert!(data.quality.is_empty());
        let winner = data.winner().unwrap();
        assert_eq!(data.ceiling(winner), Ceiling::NoBandwidth);
        assert_eq!(data.ceiling_pct(winner), None);
    }

    #[test]
    fn quality_keeps_the_last_row_of_each_model_file_and_kv_types() {
        let mut data = fixture();
        let mut row = data.rows[0].clone();
        row.model_identity = "id-Q4_K_M".into();
        let mut failed = example("a", "Q4_K_M", None);
        failed.status = "failed".into();
        let retried = example("b", "Q4_K_M", Some(0.02));
        let other_model = example("c", "Q2_K", Some(0.3));
        let quality = current_quality(
            vec![failed, retried.clone(), other_model],
            std::slice::from_ref(&row),
        );
        assert_eq!(quality, [retried]);
        data.quality = quality;
        assert_eq!(data.quality_of(&row).unwrap().quality_id, "b");
        row.params
            .set(crate::knobs::TYPE_K, (crate::knobs::KvType::Q8_0).into());
        assert!(data.quality_of(&row).is_none());
    }

    #[test]
    fn a_cpu_row_of_a_measured_machine_has_a_ceiling() {
        let mut data = fixture();
        data.manifest.memory_bandwidth = Some(super::super::ceiling::bandwidth(10.0));
        let mut row = data.winner().unwrap().clone();
        row.bytes_per_token = Some(50_000_000);
        row.tg_tps_mean = Some(150.0);
        assert_eq!(data.ceiling_tps(&row), Some(200.0));
        assert_eq!(data.ceiling_pct(&row), Some(75.0));
    }
}
