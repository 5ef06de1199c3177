//! Runs a sweep's quality tasks, each in its own child process: per model,
//! the reference first (its log-probabilities kept in `quality/<id>.ref`
//! while the others need them, removed afterwards), then every other
//! variant against it. Tasks already in quality.csv are not run again.

use super::record::{self, QualityRow};
use super::tasks::QualityTask;
use super::{QualityFigures, VariantFacts};
use crate::config::QualitySettings;
use crate::knobs::Params;
use crate::protocol::{ChildJob, ChildReply, QualityJob, QualityMetrics};
use crate::runner::outcome::mentions_oom;
use crate::runner::{ChildEnding, Children};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where and how the tasks run.
pub struct Phase<'a> {
    pub settings: &'a QualitySettings,
    /// The sweep folder (quality.csv, quality/, logs/).
    pub folder: &'a Path,
    /// The evaluation text, its name for the rows, its sha256.
    pub text: &'a Path,
    pub text_name: &'a str,
    pub text_sha256: &'a str,
    pub children: &'a mut dyn Children,
    pub threads: i32,
    /// What the backend self-test forced on a variant, by identity.
    pub forced: &'a dyn Fn(&str) -> Params,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhaseEnd {
    Completed,
    Interrupted,
}

/// Folder of the reference log-probabilities, inside the sweep folder.
pub const REFERENCE_DIR: &str = "quality";

impl Phase<'_> {
    /// Runs the tasks quality.csv does not hold yet. Returns how it ended
    /// and every row quality.csv holds then (one per quality id).
    pub fn run(
        &mut self,
        tasks: &[QualityTask],
        say: &mut dyn FnMut(String),
    ) -> anyhow::Result<(PhaseEnd, Vec<QualityRow>)> {
        let mut recorded: HashMap<String, QualityRow> = record::read(self.folder)?
            .into_iter()
            .map(|r| (r.quality_id.clone(), r))
            .collect();
        let end = self.run_pending(tasks, &mut recorded, say)?;
        Ok((end, recorded.into_values().collect()))
    }

    fn run_pending(
        &mut self,
        tasks: &[QualityTask],
        recorded: &mut HashMap<String, QualityRow>,
        say: &mut dyn FnMut(String),
    ) -> anyhow::Result<PhaseEnd> {
        let pending = tasks
            .iter()
            .filter(|t| !recorded.contains_key(&t.quality_id))
            .count();
        if pending == 0 {
            return Ok(PhaseEnd::Completed);
        }
        say(format!(
            "quality: {pending} measurement(s) of {} tokens per chunk, up to {} chunks of {} (llama.cpp's perplexity procedure)",
            self.settings.n_ctx, self.settings.chunks, self.text_name
        ));
        std::fs::create_dir_all(self.folder.join(REFERENCE_DIR))?;
        let mut done = 0;
        for group in groups(tasks) {
            let reference = group[0];
            let others: Vec<&QualityTask> = group[1..]
                .iter()
                .copied()
                .filter(|t| !recorded.contains_key(&t.quality_id))
                .collect();
            let reference_pending = !recorded.contains_key(&reference.quality_id);
            if !reference_pending && others.is_empty() {
                continue;
            }
            let base = self
                .folder
                .join(REFERENCE_DIR)
                .join(format!("{}.ref", reference.quality_id));
            let mut reference_failure = None;
            if reference_pending || (!others.is_empty() && !base.is_file()) {
                if reference_pending {
                    done += 1;
                }
                let n = if reference_pending {
                    format!("{done}/{pending}")
                } else {
                    "again".into()
                };
                say(format!("  quality {n}: {} (reference)", reference.label()));
                match self.measure(reference, Some(&base), None)? {
                    None => return Ok(PhaseEnd::Interrupted),
                    Some(row) => {
                        say(format!("    {}", describe(&row)));
                        if !row.is_ok() {
                            reference_failure = Some(row.error.clone().unwrap_or_default());
                        }
                        if reference_pending {
                            record::append(self.folder, &row)?;
                            recorded.insert(row.quality_id.clone(), row);
                        }
                    }
                }
            }
            for task in others {
                done += 1;
                say(format!("  quality {done}/{pending}: {}", task.label()));
                let row = match &reference_failure {
                    Some(why) => self.row(
                        task,
                        Err((
                            "failed".into(),
                            format!(
                                "its reference ({}) could not be measured: {why}",
                                reference.label()
                            ),
                        )),
                        0.0,
                        String::new(),
                    ),
                    None => match self.measure(task, None, Some(&base))? {
                        None => return Ok(PhaseEnd::Interrupted),
                        Some(row) => row,
                    },
                };
                say(format!("    {}", describe(&row)));
                record::append(self.folder, &row)?;
                recorded.insert(row.quality_id.clone(), row);
            }
            let _ = std::fs::remove_file(&base);
        }
        Ok(PhaseEnd::Completed)
    }

    /// Runs one task; `None` when a stop was asked for.
    fn measure(
        &mut self,
        task: &QualityTask,
        save_base: Option<&Path>,
        base: Option<&Path>,
    ) -> anyhow::Result<Option<QualityRow>> {
        let job = ChildJob::Quality(QualityJob {
            model: task.variant.clone(),
            type_k: task.type_k,
            type_v: task.type_v,
            n_ctx: self.settings.n_ctx,
            max_chunks: self.settings.chunks,
            text: self.text.to_path_buf(),
            n_threads: self.threads,
            n_gpu_layers: None,
            forced: (self.forced)(&task.variant.identity),
            save_base: save_base.map(Path::to_path_buf),
            base: base.map(Path::to_path_buf),
        });
        let log_file = format!("logs/quality-{}.log", task.quality_id);
        let ending =
            self.children
                .run(&job, &self.folder.join(&log_file), self.settings.timeout)?;
        if ending.interrupted {
            return Ok(None);
        }
        let seconds = ending.wall.as_secs_f64();
        let result = result_of(ending, self.settings.timeout);
        Ok(Some(self.row(task, result, seconds, log_file)))
    }

    fn row(
        &self,
        task: &QualityTask,
        result: Result<QualityMetrics, (String, String)>,
        seconds: f64,
        log_file: String,
    ) -> QualityRow {
        let reference = task.is_reference();
        let (status, error, m) = match result {
            Ok(m) => ("ok".to_string(), None, Some(m)),
            Err((status, why)) => (status, Some(why), None),
        };
        let m = m.as_ref();
        QualityRow {
            quality_id: task.quality_id.clone(),
            model_name: task.variant.name.clone(),
            model_variant: task.variant.variant.clone(),
            model_identity: task.variant.identity.clone(),
            model_size_bytes: std::fs::metadata(&task.variant.path).ok().map(|m| m.len()),
            type_k: task.type_k,
            type_v: task.type_v,
            is_reference: reference,
            reference_variant: task.reference.variant.clone(),
            reference_type_k: task.reference.type_k,
            reference_type_v: task.reference.type_v,
            status,
            error,
            text: self.text_name.to_string(),
            text_sha256: self.text_sha256.to_string(),
            n_ctx: self.settings.n_ctx,
            chunks: m.map(|m| m.chunks),
            tokens_scored: m.map(|m| m.tokens_scored),
            ppl: m.map(|m| m.ppl),
            ppl_se: m.map(|m| m.ppl_se),
            ppl_increase_pct: m.map(|m| match (reference, m.base_ppl) {
                (true, _) | (_, None) => 0.0,
                (false, Some(base)) => (m.ppl / base - 1.0) * 100.0,
            }),
            kld_mean: m.map(|m| m.kld_mean.unwrap_or(0.0)),
            kld_se: m.map(|m| m.kld_se.unwrap_or(0.0)),
            kld_p99: m.map(|m| m.kld_p99.unwrap_or(0.0)),
            kld_max: m.map(|m| m.kld_max.unwrap_or(0.0)),
            top1_pct: m.map(|m| m.top1_pct.unwrap_or(100.0)),
            seconds,
            finished_at: crate::clock::now_rfc3339(),
            log_file,
        }
    }
}

/// The metrics of a finished quality job, or its status and why it failed.
pub fn result_of(
    ending: ChildEnding,
    timeout: std::time::Duration,
) -> Result<QualityMetrics, (String, String)> {
    match ending.reply {
        Ok(ChildReply::Quality(m)) => Ok(m),
        Ok(ChildReply::Failed { reason }) if mentions_oom(&reason) => Err(("oom".into(), reason)),
        Ok(ChildReply::Failed { reason }) => Err(("failed".into(), reason)),
        _ if ending.timed_out => Err((
            "timeout".into(),
            format!(
                "no result within {:.0} s ([quality] timeout_s); the process was killed",
                timeout.as_secs_f64()
            ),
        )),
        Ok(other) => Err(("invalid".into(), format!("unexpected reply {other:?}"))),
        Err(why) => Err((
            "crashed".into(),
            format!(
                "the process ended ({}) without a result: {why}",
                ending.exit
            ),
        )),
    }
}

/// Tasks per reference, in order (the planner puts each reference first).
fn groups(tasks: &[QualityTask]) -> Vec<Vec<&QualityTask>> {
    let mut groups: Vec<Vec<&QualityTask>> = Vec::new();
    for t in tasks {
        match groups.last_mut() {
            Some(g) if g[0].reference == t.reference && !t.is_reference() => g.push(t),
            _ => groups.push(vec![t]),
        }
    }
    groups
}

/// One line about a finished measurement.
pub fn describe(row: &QualityRow) -> String {
    match (row.is_ok(), row.ppl) {
        (true, Some(ppl)) if row.is_reference => format!(
            "PPL {ppl:.3} ± {:.3} over {} tokens, {:.1} s",
            row.ppl_se.unwrap_or(0.0),
            row.tokens_scored.unwrap_or(0),
            row.seconds
        ),
        (true, Some(ppl)) => format!(
            "PPL {ppl:.3} ({:+.2}%), KLD {:.4} ± {:.4}, top-1 {:.1}%, {:.1} s",
            row.ppl_increase_pct.unwrap_or(0.0),
            row.kld_mean.unwrap_or(0.0),
            row.kld_se.unwrap_or(0.0),
            row.top1_pct.unwrap_or(0.0),
            row.seconds
        ),
        _ => format!(
            "{}: {}",
            row.status,
            row.error.as_deref().unwrap_or("no reason given")
        ),
    }
}

/// The figures of the tasks measured successfully, for the rows.
pub fn figures(rows: &[QualityRow], tasks: &[QualityTask], facts: &mut VariantFacts) {
    for task in tasks {
        let Some(row) = rows
            .iter()
            .rev()
            .find(|r| r.quality_id == task.quality_id && r.is_ok())
        else {
            continue;
        };
        if let (Some(ppl), Some(inc), Some(kld), Some(top1)) =
            (row.ppl, row.ppl_increase_pct, row.kld_mean, row.top1_pct)
        {
            facts.set_quality(
                &task.variant.identity,
                task.type_k,
                task.type_v,
                QualityFigures {
                    ppl,
                    ppl_increase_pct: inc,
                    kld,
                    top1_pct: top1,
                },
            );
        }
    }
}

/// The evaluation text for the children: the user's file, or the bundled
/// text written into the sweep folder. Returns its path, name and sha256.
pub fn text_file(
    settings: &QualitySettings,
    folder: &Path,
) -> anyhow::Result<(PathBuf, String, String)> {
    use sha2::{Digest, Sha256};
    let (path, name, bytes) = match &settings.text {
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|e| {
                anyhow::anyhow!("cannot read [quality] text {}: {e}", path.display())
            })?;
            (path.clone(), path.display().to_string(), bytes)
        }
        None => {
            let path = folder.join(REFERENCE_DIR).join("eval-text.txt");
            std::fs::create_dir_all(folder.join(REFERENCE_DIR))?;
            crate::store::write_atomically(&path, super::DEFAULT_TEXT.as_bytes())?;
            (
                path,
                super::DEFAULT_TEXT_NAME.to_string(),
                super::DEFAULT_TEXT.as_bytes().to_vec(),
            )
        }
    };
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok((path, name, sha))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::record::example;

    #[test]
    fn figures_come_from_ok_rows_of_the_current_tasks() {
        let mut failed = example("b", "Q4_K_M", None);
        failed.status = "oom".into();
        failed.ppl = None;
        let rows = vec![
            example("a", "Q8_0", Some(0.0)),
            example("old", "Q4_K_M", Some(0.5)),
            failed,
        ];
        let task = |id: &str, v: &str| QualityTask {
            quality_id: id.into(),
            variant: crate::protocol::ModelVariant {
                name: "m".into(),
                variant: v.into(),
                path: "x".into(),
                identity: format!("id-{v}"),
            },
            type_k: crate::knobs::KvType::F16,
            type_v: crate::knobs::KvType::F16,
            reference: crate::quality::tasks::ReferenceKey {
                variant: "Q8_0".into(),
                identity: "id-Q8_0".into(),
                type_k: crate::knobs::KvType::F16,
                type_v: crate::knobs::KvType::F16,
            },
        };
        let tasks = [task("a", "Q8_0"), task("b", "Q4_K_M")];
        let mut facts = VariantFacts::default();
        figures(&rows, &tasks, &mut facts);
        use crate::knobs::KvType::F16;
        assert_eq!(facts.quality("id-Q8_0", F16, F16).unwrap().kld, 0.0);
        // Only a row of another text/settings ("old") and a failure: none.
        assert!(facts.quality("id-Q4_K_M", F16, F16).is_none());
        assert_eq!(groups(&tasks).len(), 1);
    }
}
