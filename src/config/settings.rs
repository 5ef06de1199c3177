//! The settings of sweep.toml's tables besides the space and the workload:
//! what `[sweep] strategy`, `[search]`, `[confirm]`, `[drift]`,
//! `[quality]` and `[app]` say, with their defaults. They belong to the sweep file, so
//! the modules that act on them (search, confirm, drift, quality) read them
//! from here.

use std::path::PathBuf;
use std::time::Duration;

/// Which strategy a sweep uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrategyKind {
    Grid,
    Random,
    Bayes,
}

impl StrategyKind {
    pub fn name(self) -> &'static str {
        match self {
            StrategyKind::Grid => "grid",
            StrategyKind::Random => "random",
            StrategyKind::Bayes => "bayes",
        }
    }

    pub fn from_name(name: &str) -> Option<StrategyKind> {
        [
            StrategyKind::Grid,
            StrategyKind::Random,
            StrategyKind::Bayes,
        ]
        .into_iter()
        .find(|k| k.name() == name)
    }
}

/// `[search]`: the Bayesian search's start and early stop.
#[derive(Debug, Clone, PartialEq)]
pub struct BayesSettings {
    /// Size of the space-filling start.
    pub initial: usize,
    /// Stop when the best expected improvement is below this fraction
    /// (0.005 = 0.5%); `None` runs until the budget.
    pub stop_ei: Option<f64>,
}

impl Default for BayesSettings {
    fn default() -> Self {
        BayesSettings {
            initial: 6,
            stop_ei: None,
        }
    }
}

/// `[confirm]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmSettings {
    /// How many of the best feasible trials to measure again (0 = no round).
    pub top: usize,
    /// Interleaved rounds run before the verdict is first looked at.
    pub rounds: usize,
    /// Rounds go on, while the verdict is undecided, up to this many.
    pub max_rounds: usize,
    /// Nor does a round start that would end after this many minutes of
    /// confirmation.
    pub max_minutes: Option<f64>,
    /// Two configurations whose ratio's interval lies within this fraction
    /// of 1 (0.03: ±3%) are equivalent.
    pub equivalent_within: f64,
    /// Repetitions per run (the workload's repetitions × 2 by default).
    pub repetitions: Option<u32>,
    /// Resident subjects measured in alternated blocks, or rounds of whole
    /// trials.
    pub mode: ConfirmMode,
    /// Resident mode: pairs of blocks before the verdict is first looked
    /// at, and at most.
    pub pairs: usize,
    pub max_pairs: usize,
}

/// How the confirmation measures its subjects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmMode {
    /// Each subject loaded once in its own child, measured in short blocks
    /// alternated between them in a random order (rounds when they do not
    /// fit in memory together, or run through llama-server).
    Resident,
    /// Rounds of whole trials, each reloading its model.
    Rounds,
}

impl ConfirmSettings {
    /// The trials it measures again with `references` reference trials
    /// (0: no confirmation).
    pub fn subjects(&self, references: usize) -> usize {
        if self.top == 0 {
            0
        } else {
            self.top + references
        }
    }

    /// Whether its subjects are resident, measured in alternated blocks.
    pub fn resident(&self) -> bool {
        self.mode == ConfirmMode::Resident
    }

    /// Pairs of blocks (resident) or rounds before its verdict is first
    /// looked at, where a clear verdict stops.
    pub fn first_look(&self) -> usize {
        if self.resident() {
            self.pairs
        } else {
            self.rounds
        }
    }
}

impl Default for ConfirmSettings {
    fn default() -> Self {
        ConfirmSettings {
            top: 3,
            rounds: 3,
            max_rounds: 8,
            max_minutes: Some(30.0),
            equivalent_within: 0.05,
            repetitions: None,
            mode: ConfirmMode::Resident,
            pairs: 10,
            max_pairs: 60,
        }
    }
}

/// `[drift]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftSettings {
    /// Re-measure the anchor after this many trials (0 = never).
    pub every: usize,
    /// Relative change of the anchor that counts as drift (0.10 = 10%).
    pub threshold: f64,
    /// A trial id to use as anchor; default: the first feasible trial.
    pub anchor: Option<String>,
    /// Pause before re-checking after drift was seen, seconds.
    pub cooldown_s: f64,
    /// After drift, re-measure the suspect trials once the anchor is back.
    pub remeasure: bool,
}

impl Default for DriftSettings {
    fn default() -> Self {
        DriftSettings {
            every: 10,
            threshold: 0.10,
            anchor: None,
            cooldown_s: 0.0,
            remeasure: true,
        }
    }
}

/// `[quality]` of sweep.toml.
#[derive(Debug, Clone, PartialEq)]
pub struct QualitySettings {
    /// Measure quality at all.
    pub measure: bool,
    /// The user's evaluation text; `None`: the bundled one.
    pub text: Option<PathBuf>,
    /// Tokens per chunk (llama.cpp's perplexity `-c`).
    pub n_ctx: u32,
    /// At most this many chunks (`--chunks`).
    pub chunks: u32,
    pub timeout: Duration,
}

impl Default for QualitySettings {
    fn default() -> Self {
        QualitySettings {
            measure: true,
            text: None,
            n_ctx: 512,
            chunks: 8,
            timeout: Duration::from_secs(1800),
        }
    }
}

/// The runtimes the app uses, as `[app]` or the command line names them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppRuntimes {
    /// A Python interpreter that imports llama_cpp (the app's venv).
    pub python: Option<PathBuf>,
    /// A llama-server binary.
    pub server: Option<PathBuf>,
}

impl AppRuntimes {
    pub fn is_empty(&self) -> bool {
        self.python.is_none() && self.server.is_none()
    }
}

/// `[app]`: the runtimes the user's app runs, where the recommended
/// configuration and the baseline are verified at the end of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct AppSettings {
    pub runtimes: AppRuntimes,
    /// Verification rounds.
    pub rounds: usize,
    /// Measured requests per session (default: the workload's repetitions).
    pub repetitions: Option<u32>,
    /// A session in a runtime, model load included, must end within this
    /// (default: the trial timeout).
    pub timeout: Option<Duration>,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            runtimes: Default::default(),
            rounds: 5,
            repetitions: None,
            timeout: None,
        }
    }
}
