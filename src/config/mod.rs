//! The sweep description (`sweep.toml`): its resolved, validated form and the
//! function that reads it.
//!
//! Reading happens in two steps: `raw` deserializes the file as written
//! (unknown keys rejected, spans kept), then `validate` turns it into a
//! [`SweepConfig`] whose every value has been checked, with errors that name
//! the file, the key and the line. Relative paths in the file are relative to
//! the file's own folder.

mod app;
mod axis;
mod baseline;
pub mod error;
mod raw;
mod runtime;
pub mod settings;
mod validate;

pub use app::find_program;
pub use error::ConfigError;
pub use runtime::TrialRuntime;

use crate::knobs::{KnobId, Params, Value};
use crate::models::quant_types::QuantType;
use crate::objective::Objective;
use crate::protocol::Workload;
pub use settings::{
    AppRuntimes, AppSettings, BayesSettings, ConfirmMode, ConfirmSettings, DriftSettings,
    QualitySettings, StrategyKind,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A validated sweep description.
#[derive(Debug, Clone)]
pub struct SweepConfig {
    /// The sweep.toml this came from.
    pub file: PathBuf,
    /// Its text, kept so the output folder can hold an exact copy.
    pub source: String,
    /// sha256 of `source`, hex.
    pub source_sha256: String,
    pub sweep: SweepSettings,
    pub models: Vec<ModelEntry>,
    pub space: Space,
    pub workload: Workload,
    pub objective: Objective,
    pub trial_timeout: Duration,
    /// `[trial] early_drop`: the margin by which a trial's best run must
    /// miss the best trial's slowest run (or a constraint's limit) to be
    /// dropped (`early_drop`); `None` (0) measures every trial to its last
    /// run.
    pub early_drop: Option<f64>,
    /// `[trial] busy_cores_max`, `busy_wait_s`: when a measurement counts
    /// (other processes quiet enough beside it), and how long to wait for
    /// that.
    pub quiet: crate::machine_load::QuietRule,
    pub export: ExportSettings,
    pub drift: DriftSettings,
    /// Coefficient of variation above which a trial is flagged noisy.
    pub noise_cv_max: f64,
    /// `[search]`: settings of the Bayesian search.
    pub search: BayesSettings,
    /// `[confirm]`: the confirmation round.
    pub confirm: ConfirmSettings,
    /// `[baseline]`: the user's current configuration, if given.
    pub baseline: Option<Baseline>,
    /// `[quality]`: how the quality of each variant is measured.
    pub quality: QualitySettings,
    /// `[app]`: the app's runtimes, to verify the recommendation in.
    pub app: AppSettings,
    /// `[sweep] runtime`: where every trial runs (llama-sweep's own child,
    /// `[app] server`'s llama-server, or `[app] python`'s llama-cpp-python).
    pub trial_runtime: TrialRuntime,
}

/// The configuration the user runs today: measured early and again in the
/// confirmation round, and the yardstick of the recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// The `[[model]]` entry it runs, by name.
    pub model: String,
    /// One of that entry's derived quantizations; `None`: its own file.
    pub quant: Option<QuantType>,
    /// Its settings; unset ones keep llama.cpp's defaults.
    pub params: Params,
}

#[derive(Debug, Clone)]
pub struct SweepSettings {
    pub name: String,
    /// Where `<name>/` is created (default `reports/`).
    pub output_dir: PathBuf,
    pub strategy: StrategyKind,
    pub seed: u64,
    /// Where derived quantizations are cached (default `models/derived/`),
    /// absolute.
    pub model_cache: PathBuf,
    /// Stop once this many trials of the plan are recorded.
    pub max_trials: Option<usize>,
    /// Stop before a trial that would end after this long in one run.
    pub max_time: Option<Duration>,
}

impl SweepSettings {
    /// `reports/<name>`: every output of this sweep.
    pub fn output_folder(&self) -> PathBuf {
        self.output_dir.join(&self.name)
    }
}

#[derive(Debug, Clone)]
pub struct ModelEntry {
    pub name: String,
    /// Absolute path of the GGUF file.
    pub path: PathBuf,
    /// Variants to derive from `path` with llama.cpp's quantizer.
    pub quantize: Vec<QuantType>,
    /// Whether the source file itself is one of the swept variants.
    pub include_source: bool,
}

/// The search space: for each knob the sweep sets, the values to try. A
/// knob left out keeps llama.cpp's default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Space(BTreeMap<KnobId, Vec<Value>>);

impl Space {
    /// The values of `knob`, when the sweep sets it.
    pub fn get(&self, knob: KnobId) -> Option<&[Value]> {
        self.0.get(&knob).map(Vec::as_slice)
    }

    pub fn set(&mut self, knob: KnobId, values: Vec<Value>) {
        self.0.insert(knob, values);
    }

    /// The knobs the sweep sets, with their values, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (KnobId, &[Value])> {
        self.0.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// Names of the knobs that take more than one value.
    pub fn swept_axes(&self) -> Vec<&'static str> {
        self.iter()
            .filter(|(_, values)| values.len() > 1)
            .map(|(knob, _)| knob.name())
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExportSettings {
    /// Written as `temperature` in config.yaml (the app's sampling setting,
    /// not measured).
    pub temperature: f64,
}

/// Reads and validates a sweep.toml.
pub fn load(file: &Path) -> Result<SweepConfig, ConfigError> {
    let source = std::fs::read_to_string(file)
        .map_err(|e| ConfigError::new(file, None, format!("cannot read the sweep file: {e}")))?;
    parse(file, &source)
}

/// Validates sweep.toml text as if it had been read from `file`.
pub fn parse(file: &Path, source: &str) -> Result<SweepConfig, ConfigError> {
    let raw: raw::RawConfig =
        toml::from_str(source).map_err(|e| validate::toml_error(file, source, &e))?;
    let base_dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut config = validate::validate(raw, file, source, &base_dir)?;
    config.source_sha256 = crate::digest::hex(&Sha256::digest(source.as_bytes()));
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objective::{Bound, Metric};

    fn parse_in(dir: &Path, text: &str) -> Result<SweepConfig, ConfigError> {
        std::fs::write(dir.join("m.gguf"), b"GGUF").unwrap();
        parse(&dir.join("sweep.toml"), text)
    }

    const MINIMAL: &str = "[sweep]\nname = \"s\"\n[[model]]\npath = \"m.gguf\"\n";

    #[test]
    fn minimal_file_gets_documented_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(dir.path(), MINIMAL).unwrap();
        assert_eq!(c.sweep.output_folder(), dir.path().join("reports/s"));
        let dir_abs = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            c.sweep.model_cache,
            std::path::absolute(dir.path().join("models/derived")).unwrap()
        );
        assert_eq!(c.models[0].name, "m", "name defaults to the file stem");
        assert_eq!(
            c.models[0].path,
            dir_abs.join("m.gguf"),
            "relative to the file, made absolute"
        );
        assert!(c.models[0].include_source);
        assert_eq!(
            c.space,
            Space::default(),
            "unset axes keep llama.cpp's defaults"
        );
        assert_eq!(
            (
                c.workload.prompt_tokens,
                c.workload.gen_tokens,
                c.workload.repetitions
            ),
            (512, 128, 5)
        );
        assert_eq!(c.workload.request_prompt_tokens, 512);
        assert_eq!(c.objective.metric, Metric::RequestTps);
        assert_eq!(c.trial_timeout, Duration::from_secs(300));
        assert_eq!(c.source_sha256.len(), 64);
    }

    #[test]
    fn axes_constraints_and_quantizations_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{MINIMAL}quantize = [\"q8_0\", \"Q4_K_M\"]\n[space]\nn_batch = {{ min = 512, max = 2048, mul = 2 }}\n\
             flash_attn = [\"on\", \"off\"]\n[objective]\nmetric = \"ttft_ms\"\ne2e_s_max = 5\nttft_ms_max = 500.5\n\
             [trial]\ntimeout_s = 30\n"
        );
        let c = parse_in(dir.path(), &text).unwrap();
        let ints = |v: &[i64]| v.iter().map(|&i| Value::Int(i)).collect::<Vec<_>>();
        assert_eq!(
            c.space.get(crate::knobs::N_BATCH),
            Some(&ints(&[512, 1024, 2048])[..])
        );
        assert_eq!(c.space.swept_axes(), vec!["n_batch", "flash_attn"]);
        let names: Vec<_> = c.models[0].quantize.iter().map(|q| q.name).collect();
        assert_eq!(names, vec!["Q8_0", "Q4_K_M"]);
        assert_eq!(c.objective.direction, crate::objective::Direction::Minimize);
        assert_eq!(c.objective.constraints[0].bound, Bound::AtMost(500.5));
        assert_eq!(c.objective.constraints[1].metric, Metric::E2eMs);
        assert_eq!(
            c.objective.constraints[1].bound,
            Bound::AtMost(5000.0),
            "seconds become ms"
        );
        assert_eq!(c.trial_timeout, Duration::from_secs(30));
    }

    #[test]
    fn depths_concurrency_and_their_objectives_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{MINIMAL}[workload]\nprompt_tokens = 64\ngen_tokens = 16\nn_depth = [2048, 0, 512, 512]\n\
             request_history_tokens = 1000\n[space]\nn_parallel = [1, 2, 4]\nkv_unified = true\n\
             n_ctx = 16384\n[objective]\nmetric = \"tg_tps@2048\"\nttft_ms_p95_max = 800\nitl_ms_p95_max = 50\n"
        );
        let c = parse_in(dir.path(), &text).unwrap();
        assert_eq!(
            c.workload.n_depth,
            vec![512, 2048],
            "sorted, once each, 0 implied"
        );
        assert_eq!(c.workload.request_history_tokens, 1000);
        assert_eq!(c.workload.context_needed(), 2048 + 64);
        assert_eq!(
            c.objective.metric,
            Metric::AtDepth(crate::objective::Speed::Tg, 2048)
        );
        let bounded: Vec<Metric> = c.objective.constraints.iter().map(|c| c.metric).collect();
        assert_eq!(bounded, vec![Metric::TtftMsP95, Metric::ItlMsP95]);
        assert_eq!(c.space.swept_axes(), vec!["n_parallel"]);

        let err = |text: &str| parse_in(dir.path(), text).unwrap_err().to_string();
        let small = err(&text.replace("n_ctx = 16384", "n_ctx = 4096"));
        assert!(
            small.contains("n_ctx 4096")
                && small.contains("n_parallel 4")
                && small.contains("8448"),
            "four sequences of 2112 tokens: {small}"
        );
        let shallow = err(&text.replace("tg_tps@2048", "tg_tps@4096"));
        assert!(
            shallow.contains("add 4096 to workload.n_depth"),
            "{shallow}"
        );
        let unknown = err(&text.replace("tg_tps@2048", "ttft_ms@2048"));
        assert!(unknown.contains("tg_tps@<depth>"), "{unknown}");
        let batch = err(&text.replace("n_ctx = 16384", "n_ctx = 16384\nn_batch = 2"));
        assert!(
            batch.contains("n_parallel 4 is larger than n_batch 2"),
            "{batch}"
        );
    }

    #[test]
    fn quality_settings_and_bounds_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(dir.path(), MINIMAL).unwrap();
        assert_eq!(c.quality, QualitySettings::default());
        assert!(c.quality.measure, "quality is measured unless turned off");
        std::fs::write(dir.path().join("prompts.txt"), "text").unwrap();
        let c = parse_in(
            dir.path(),
            &format!(
                "{MINIMAL}[objective]\nkld_max = 0.05\nppl_increase_pct_max = 3\ntop1_pct_min = 90\n\
                 [quality]\ntext = \"prompts.txt\"\nn_ctx = 256\nchunks = 4\n"
            ),
        )
        .unwrap();
        let bounds: Vec<(Metric, Bound)> = c
            .objective
            .constraints
            .iter()
            .map(|c| (c.metric, c.bound))
            .collect();
        assert_eq!(
            bounds,
            [
                (Metric::Kld, Bound::AtMost(0.05)),
                (Metric::PplIncreasePct, Bound::AtMost(3.0)),
                (Metric::Top1Pct, Bound::AtLeast(90.0)),
            ]
        );
        assert_eq!((c.quality.n_ctx, c.quality.chunks), (256, 4));
        assert!(c.quality.text.unwrap().ends_with("prompts.txt"));

        let bad = |extra: &str| parse_in(dir.path(), &format!("{MINIMAL}{extra}")).unwrap_err();
        let e = bad("[objective]\nkld_max = 0.05\n[quality]\nmeasure = false\n");
        assert_eq!(e.key.as_deref(), Some("quality.measure"));
        assert!(e.message.contains("kld"), "{e}");
        let e = bad("[objective]\nmetric = \"kld\"\n");
        assert_eq!(e.key.as_deref(), Some("objective.metric"));
        assert!(e.message.contains("kld_max"), "{e}");
        let e = bad("[quality]\ntext = \"missing.txt\"\n");
        assert_eq!(e.key.as_deref(), Some("quality.text"));
        let e = bad("[quality]\nn_ctx = 8\n");
        assert_eq!(e.key.as_deref(), Some("quality.n_ctx"));
        let e = bad("[quality]\nchunk = 8\n");
        assert!(e.message.contains("chunk"), "unknown keys are errors: {e}");
    }

    #[test]
    fn semantic_errors_name_key_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let bad = |extra: &str| parse_in(dir.path(), &format!("{MINIMAL}{extra}")).unwrap_err();
        let e = bad("[space]\nn_batch = 256\nn_ubatch = [512, 1024]\n");
        assert_eq!(e.key.as_deref(), Some("space.n_ubatch"));
        assert_eq!(e.location.unwrap().0, 7);
        // The default objective is the answer's speed after its first token.
        let e = bad("[workload]\nrequest_max_tokens = 1\n");
        assert_eq!(e.key.as_deref(), Some("workload.request_max_tokens"));
        assert!(e.message.contains("request_tps"), "{e}");
        assert!(
            parse_in(
                dir.path(),
                &format!(
                    "{MINIMAL}[workload]\nrequest_max_tokens = 1\n[objective]\nmetric = \"tg_tps\"\n"
                )
            )
            .is_ok()
        );
        let e = parse_in(
            dir.path(),
            "[sweep]\nname = \"s\"\nstrategy = \"baye\"\n[[model]]\npath = \"m.gguf\"\n",
        )
        .unwrap_err();
        assert!(e.message.contains("did you mean \"bayes\""), "{e}");
        let e = parse_in(
            dir.path(),
            "[sweep]\nname = \"../up\"\n[[model]]\npath = \"m.gguf\"\n",
        )
        .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sweep.name"));
        let e = bad("[[model]]\npath = \"m.gguf\"\n");
        assert!(e.message.contains("used twice"), "{e}");
        let e = parse_in(dir.path(), "[sweep]\nname = \"s\"\n").unwrap_err();
        assert!(e.message.contains("no model"), "{e}");
        let e = bad("[workload]\nrepetitions = 0\n");
        assert_eq!(e.key.as_deref(), Some("workload.repetitions"));
        let e = bad("[workload]\nrequest_max_tokens = 4294967295\n");
        assert_eq!(e.key.as_deref(), Some("workload.request_max_tokens"));
        let e = bad("[trial]\ntimeout_s = 1e20\n");
        assert_eq!(e.key.as_deref(), Some("trial.timeout_s"));
    }

    #[test]
    fn confirmation_rounds_go_on_between_rounds_and_max_rounds() {
        let dir = tempfile::tempdir().unwrap();
        let parse = |extra: &str| parse_in(dir.path(), &format!("{MINIMAL}[confirm]\n{extra}"));
        let c = parse("").unwrap().confirm;
        assert_eq!(
            (c.rounds, c.max_rounds, c.max_minutes, c.equivalent_within),
            (3, 8, Some(30.0), 0.05)
        );
        let c = parse("rounds = 12\nequivalent_within = 0.03\nmax_minutes = 5\n")
            .unwrap()
            .confirm;
        assert_eq!(
            (c.rounds, c.max_rounds, c.max_minutes, c.equivalent_within),
            (12, 12, Some(5.0), 0.03),
            "rounds above the default maximum are fixed"
        );
        let e = parse("rounds = 4\nmax_rounds = 3\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("confirm.max_rounds"));
        assert!(e.message.contains("at least confirm.rounds (4)"), "{e}");
        let e = parse("equivalent_within = 3\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("confirm.equivalent_within"));
        assert!(e.message.contains("0.05: within 5%"), "{e}");
        let c = parse("mode = \"rounds\"\npairs = 20\nmax_pairs = 100\n")
            .unwrap()
            .confirm;
        assert_eq!(
            (c.mode, c.pairs, c.max_pairs),
            (super::ConfirmMode::Rounds, 20, 100)
        );
        assert_eq!(
            parse("").unwrap().confirm.mode,
            super::ConfirmMode::Resident
        );
        let e = parse("mode = \"side\"\n").unwrap_err();
        assert!(e.message.contains("\"resident\" or \"rounds\""), "{e}");
        let e = parse("pairs = 30\nmax_pairs = 20\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("confirm.max_pairs"));
    }

    #[test]
    fn early_drops_are_on_unless_the_margin_is_zero() {
        let dir = tempfile::tempdir().unwrap();
        let parse = |extra: &str| parse_in(dir.path(), &format!("{MINIMAL}[trial]\n{extra}"));
        assert_eq!(
            parse("").unwrap().early_drop,
            Some(crate::early_drop::DEFAULT_MARGIN)
        );
        assert_eq!(parse("early_drop = 0.1").unwrap().early_drop, Some(0.1));
        assert_eq!(parse("early_drop = 0").unwrap().early_drop, None);
        let e = parse("early_drop = 1.5").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("trial.early_drop"));
        assert!(
            e.message.contains("30% below the best trial's slowest run"),
            "{e}"
        );
    }

    #[test]
    fn backend_switches_are_axes() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(
            dir.path(),
            &format!("{MINIMAL}[space]\nrepack = [true, false]\nno_host = true\n"),
        )
        .unwrap();
        assert_eq!(
            c.space.get(crate::knobs::REPACK),
            Some(&[Value::Bool(true), Value::Bool(false)][..])
        );
        assert_eq!(c.space.swept_axes(), vec!["repack"]);
        let e = parse_in(dir.path(), &format!("{MINIMAL}[space]\nrepack = \"no\"\n")).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("space.repack"));
        assert!(e.message.contains("true or false"), "{e}");
    }

    #[test]
    fn placement_knobs_are_axes_and_use_mmap_reads_as_a_load_mode() {
        use crate::knobs::{LOAD_MODE, N_CPU_MOE, OVERRIDE_TENSOR, TENSOR_SPLIT};
        let dir = tempfile::tempdir().unwrap();
        let text = |v: &str| Value::Text(v.into());
        let c = parse_in(
            dir.path(),
            &format!(
                "{MINIMAL}[space]\nuse_mmap = [true, false]\nn_cpu_moe = {{ min = 0, max = 8, step = 4 }}\n\
                 tensor_split = [[3, 1], [1, 1]]\noverride_tensor = \"exps=CPU\"\n"
            ),
        )
        .unwrap();
        assert_eq!(
            c.space.get(LOAD_MODE),
            Some(&[text("mmap"), text("none")][..])
        );
        assert_eq!(c.space.get(N_CPU_MOE).unwrap().len(), 3);
        assert_eq!(
            c.space.get(TENSOR_SPLIT),
            Some(&[text("3,1"), text("1,1")][..])
        );
        assert_eq!(c.space.get(OVERRIDE_TENSOR), Some(&[text("exps=CPU")][..]));
        let one = parse_in(
            dir.path(),
            &format!("{MINIMAL}[space]\ntensor_split = [3, 1]\n"),
        )
        .unwrap();
        assert_eq!(
            one.space.get(TENSOR_SPLIT),
            Some(&[text("3,1")][..]),
            "a flat list is one split"
        );
        let both = parse_in(
            dir.path(),
            &format!("{MINIMAL}[space]\nuse_mmap = true\nload_mode = \"none\"\n"),
        )
        .unwrap_err();
        assert!(both.message.contains("not both"), "{both}");
        let bad = parse_in(
            dir.path(),
            &format!("{MINIMAL}[space]\noverride_tensor = \"exps\"\n"),
        )
        .unwrap_err();
        assert_eq!(bad.key.as_deref(), Some("space.override_tensor"));
        assert!(bad.message.contains("pattern=BUFFER_TYPE"), "{bad}");
    }
}
