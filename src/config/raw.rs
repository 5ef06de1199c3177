//! sweep.toml exactly as written: serde structs that reject unknown keys and
//! keep the spans of the values that validation may complain about.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::{Spanned, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub sweep: Spanned<RawSweep>,
    #[serde(default, rename = "model")]
    pub models: Vec<Spanned<RawModel>>,
    #[serde(default)]
    pub space: RawKnobs,
    #[serde(default)]
    pub workload: Option<Spanned<RawWorkload>>,
    #[serde(default)]
    pub objective: RawObjective,
    #[serde(default)]
    pub trial: RawTrial,
    #[serde(default)]
    pub export: RawExport,
    #[serde(default)]
    pub drift: RawDrift,
    #[serde(default)]
    pub search: RawSearch,
    #[serde(default)]
    pub confirm: RawConfirm,
    #[serde(default)]
    pub baseline: Option<Spanned<RawKnobs>>,
    #[serde(default)]
    pub quality: RawQuality,
    #[serde(default)]
    pub app: RawApp,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApp {
    pub python: Option<Spanned<String>>,
    pub server: Option<Spanned<String>>,
    pub rounds: Option<Spanned<i64>>,
    pub repetitions: Option<Spanned<i64>>,
    pub timeout_s: Option<Spanned<Number>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuality {
    pub measure: Option<bool>,
    pub text: Option<Spanned<String>>,
    pub n_ctx: Option<Spanned<i64>>,
    pub chunks: Option<Spanned<i64>>,
    pub timeout_s: Option<Spanned<Number>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    pub name: Spanned<String>,
    pub output_dir: Option<String>,
    pub strategy: Option<Spanned<String>>,
    pub runtime: Option<Spanned<String>>,
    pub seed: Option<u64>,
    pub model_cache: Option<String>,
    pub max_trials: Option<Spanned<i64>>,
    pub max_hours: Option<Spanned<Number>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub path: Spanned<String>,
    pub name: Option<Spanned<String>>,
    #[serde(default)]
    pub quantize: Vec<Spanned<String>>,
    pub include_source: Option<bool>,
}

/// A table of knob keys (`[space]`, `[baseline]`) as written: each key
/// and its value with their spans. Values stay untyped TOML here;
/// `axis::expand` types them by the knob's domain, with messages that name
/// what was expected, and validation checks the keys against the parameter
/// table.
pub type RawKnobs = BTreeMap<Spanned<String>, Spanned<Value>>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWorkload {
    pub prompt_tokens: Option<u32>,
    pub gen_tokens: Option<u32>,
    pub repetitions: Option<u32>,
    pub warmup: Option<u32>,
    pub request_prompt_tokens: Option<u32>,
    pub request_max_tokens: Option<u32>,
    pub n_depth: Option<Spanned<Vec<u32>>>,
    pub request_history_tokens: Option<u32>,
    pub prompts: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawObjective {
    pub metric: Option<Spanned<String>>,
    pub direction: Option<Spanned<String>>,
    pub ttft_ms_max: Option<Spanned<Number>>,
    pub ttft_ms_p95_max: Option<Spanned<Number>>,
    pub itl_ms_p95_max: Option<Spanned<Number>>,
    pub e2e_s_max: Option<Spanned<Number>>,
    pub peak_rss_mib_max: Option<Spanned<Number>>,
    pub device_memory_mib_max: Option<Spanned<Number>>,
    pub request_tps_min: Option<Spanned<Number>>,
    pub pp_tps_min: Option<Spanned<Number>>,
    pub tg_tps_min: Option<Spanned<Number>>,
    pub kld_max: Option<Spanned<Number>>,
    pub ppl_increase_pct_max: Option<Spanned<Number>>,
    pub top1_pct_min: Option<Spanned<Number>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrial {
    pub timeout_s: Option<Spanned<Number>>,
    pub early_drop: Option<Spanned<Number>>,
    pub busy_cores_max: Option<Spanned<Number>>,
    pub busy_wait_s: Option<Spanned<Number>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    pub initial: Option<Spanned<i64>>,
    pub stop_ei_pct: Option<Spanned<Number>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfirm {
    pub top: Option<Spanned<i64>>,
    pub rounds: Option<Spanned<i64>>,
    pub max_rounds: Option<Spanned<i64>>,
    pub max_minutes: Option<Spanned<Number>>,
    pub equivalent_within: Option<Spanned<Number>>,
    pub repetitions: Option<Spanned<i64>>,
    pub mode: Option<Spanned<String>>,
    pub pairs: Option<Spanned<i64>>,
    pub max_pairs: Option<Spanned<i64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrift {
    pub every: Option<Spanned<i64>>,
    pub threshold_pct: Option<Spanned<Number>>,
    pub anchor: Option<String>,
    pub cooldown_s: Option<Spanned<Number>>,
    pub remeasure: Option<bool>,
    pub noise_cv_max: Option<Spanned<Number>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExport {
    pub temperature: Option<Spanned<Number>>,
}

/// A TOML number, integer or float (`timeout_s = 300` and `= 300.0` both work).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NumberVisitor;
        impl serde::de::Visitor<'_> for NumberVisitor {
            type Value = Number;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E>(self, v: i64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Number, E> {
                Ok(Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Number, E> {
                Ok(Number(v))
            }
        }
        deserializer.deserialize_any(NumberVisitor)
    }
}
