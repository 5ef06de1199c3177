//! Which quality measurements a sweep needs: one per (model variant, KV-cache
//! types) its trials use, each model's measured against its reference — the
//! variant with the most bits per weight (the largest file) with an f16 KV
//! cache, llama.cpp's default — which is measured first.

use crate::config::QualitySettings;
use crate::knobs::{EffectiveParams, KvType};
use crate::protocol::{ModelVariant, TrialSpec};
use sha2::{Digest, Sha256};

/// The reference a task is measured against.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceKey {
    pub variant: String,
    pub identity: String,
    pub type_k: KvType,
    pub type_v: KvType,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QualityTask {
    /// Stable id: the weights, KV types, reference, text and chunking.
    pub quality_id: String,
    pub variant: ModelVariant,
    pub type_k: KvType,
    pub type_v: KvType,
    pub reference: ReferenceKey,
}

impl QualityTask {
    pub fn is_reference(&self) -> bool {
        self.variant.identity == self.reference.identity
            && (self.type_k, self.type_v) == (self.reference.type_k, self.reference.type_v)
    }

    /// `Q4_K_M, KV f16/f16`.
    pub fn label(&self) -> String {
        format!(
            "{} {}, KV {}/{}",
            self.variant.name, self.variant.variant, self.type_k, self.type_v
        )
    }
}

const REFERENCE_KV: (KvType, KvType) = (KvType::F16, KvType::F16);

/// The tasks for `trials` (plan and reference trials), references first
/// within each model. `size` gives a variant's file size (`None`: not
/// available, e.g. a quantization that could not be derived: left out).
pub fn plan(
    trials: &[&TrialSpec],
    defaults: &EffectiveParams,
    size: &dyn Fn(&ModelVariant) -> Option<u64>,
    text_sha256: &str,
    settings: &QualitySettings,
) -> Vec<QualityTask> {
    // Distinct (variant, KV types) in first-seen order, grouped by model.
    let mut models: Vec<String> = Vec::new();
    let mut wanted: Vec<(ModelVariant, KvType, KvType)> = Vec::new();
    for spec in trials {
        let (p, _) = spec.params.resolve(defaults);
        let key = (
            spec.model.clone(),
            p.kv_type(crate::knobs::TYPE_K),
            p.kv_type(crate::knobs::TYPE_V),
        );
        if size(&spec.model).is_none() || wanted.contains(&key) {
            continue;
        }
        if !models.contains(&spec.model.name) {
            models.push(spec.model.name.clone());
        }
        wanted.push(key);
    }
    let mut tasks = Vec::new();
    for model in &models {
        let of_model: Vec<&(ModelVariant, KvType, KvType)> =
            wanted.iter().filter(|(v, _, _)| &v.name == model).collect();
        // The largest file; the first seen on a tie.
        let best = of_model
            .iter()
            .map(|(v, _, _)| v)
            .fold(None::<&ModelVariant>, |best, v| match best {
                Some(b) if size(b) >= size(v) => Some(b),
                _ => Some(v),
            })
            .expect("a model has at least one variant");
        let reference = ReferenceKey {
            variant: best.variant.clone(),
            identity: best.identity.clone(),
            type_k: REFERENCE_KV.0,
            type_v: REFERENCE_KV.1,
        };
        let task = |v: &ModelVariant, k: KvType, vt: KvType| QualityTask {
            quality_id: quality_id(&v.identity, k, vt, &reference, text_sha256, settings),
            variant: v.clone(),
            type_k: k,
            type_v: vt,
            reference: reference.clone(),
        };
        tasks.push(task(best, REFERENCE_KV.0, REFERENCE_KV.1));
        for (v, k, vt) in of_model {
            let t = task(v, *k, *vt);
            if !t.is_reference() {
                tasks.push(t);
            }
        }
    }
    tasks
}

fn quality_id(
    identity: &str,
    k: KvType,
    v: KvType,
    reference: &ReferenceKey,
    text_sha256: &str,
    settings: &QualitySettings,
) -> String {
    let key = format!(
        "{identity}|{k}|{v}|{}|{}|{}|{text_sha256}|{}|{}",
        reference.identity, reference.type_k, reference.type_v, settings.n_ctx, settings.chunks
    );
    let digest = Sha256::digest(key.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knobs::Params;
    use crate::protocol::Workload;

    fn variant(name: &str, quant: &str) -> ModelVariant {
        ModelVariant {
            name: name.into(),
            variant: quant.into(),
            path: format!("{quant}.gguf").into(),
            identity: format!("id-{name}-{quant}"),
        }
    }

    fn spec(v: &ModelVariant, type_k: Option<KvType>) -> TrialSpec {
        TrialSpec {
            schedule: Default::default(),
            server: None,
            python: None,
            trial_id: format!("{}-{type_k:?}", v.identity),
            model: v.clone(),
            params: match type_k {
                Some(t) => Params::default().with(crate::knobs::TYPE_K, t.into()),
                None => Params::default(),
            },
            workload: Workload {
                prompt_tokens: 8,
                gen_tokens: 8,
                repetitions: 1,
                warmup: 0,
                request_prompt_tokens: 8,
                request_max_tokens: 8,
                n_depth: Vec::new(),
                request_history_tokens: 0,
                prompts: Default::default(),
            },
            seed: 0,
            sampling: Default::default(),
            forced: Default::default(),
        }
    }

    fn size(v: &ModelVariant) -> Option<u64> {
        match v.variant.as_str() {
            "Q8_0" => Some(800),
            "Q4_K_M" => Some(400),
            "Q6_K" => Some(600),
            _ => None,
        }
    }

    #[test]
    fn the_largest_variant_with_f16_kv_is_the_reference_and_comes_first() {
        let (q4, q8, q6) = (
            variant("m", "Q4_K_M"),
            variant("m", "Q8_0"),
            variant("m", "Q6_K"),
        );
        let specs = [
            spec(&q4, None),
            spec(&q4, Some(KvType::Q8_0)),
            spec(&q8, None),
            spec(&q8, None),
            spec(&q6, Some(KvType::Q8_0)),
        ];
        let refs: Vec<&TrialSpec> = specs.iter().collect();
        let defaults = crate::test_support::defaults();
        let tasks = plan(&refs, &defaults, &size, "sha", &QualitySettings::default());
        let labels: Vec<String> = tasks.iter().map(QualityTask::label).collect();
        assert_eq!(
            labels,
            [
                "m Q8_0, KV f16/f16",
                "m Q4_K_M, KV f16/f16",
                "m Q4_K_M, KV q8_0/f16",
                "m Q6_K, KV q8_0/f16"
            ]
        );
        assert!(tasks[0].is_reference());
        assert!(tasks[1..].iter().all(|t| !t.is_reference()));
        assert!(tasks.iter().all(|t| t.reference.variant == "Q8_0"));
        // Ids are stable and differ per task and per text.
        let again = plan(&refs, &defaults, &size, "sha", &QualitySettings::default());
        assert_eq!(tasks, again);
        let other_text = plan(&refs, &defaults, &size, "sha2", &QualitySettings::default());
        assert_ne!(tasks[0].quality_id, other_text[0].quality_id);
        let mut ids: Vec<&str> = tasks.iter().map(|t| t.quality_id.as_str()).collect();
        ids.dedup();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn the_reference_is_added_when_no_trial_uses_it_and_models_are_separate() {
        let (a, b) = (variant("a", "Q4_K_M"), variant("b", "Q6_K"));
        let missing = variant("a", "Q2_K"); // not derived: no size
        let specs = [
            spec(&a, Some(KvType::Q8_0)),
            spec(&b, None),
            spec(&missing, None),
        ];
        let refs: Vec<&TrialSpec> = specs.iter().collect();
        let tasks = plan(
            &refs,
            &crate::test_support::defaults(),
            &size,
            "sha",
            &QualitySettings::default(),
        );
        let labels: Vec<String> = tasks.iter().map(QualityTask::label).collect();
        assert_eq!(
            labels,
            [
                "a Q4_K_M, KV f16/f16",
                "a Q4_K_M, KV q8_0/f16",
                "b Q6_K, KV f16/f16"
            ]
        );
    }
}
