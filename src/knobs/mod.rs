//! The parameter table: every knob a sweep can turn, described once.
//!
//! A knob's entry says what it is (level, value domain, llama.cpp's way of
//! receiving it), how a search scales it, how it relates to other knobs
//! (follows one when unset, is clamped to one), and how each export spells
//! it. Config parsing, the grid, the search encoding, the trial protocol,
//! the row columns, the report and the exports all read this table instead
//! of naming knobs; the child applies each knob to llama.cpp in
//! `measure::apply`. Adding a knob is one entry here, one arm there, and its
//! tests.

mod alias;
mod choices;
pub mod effect;
pub mod lists;
mod params;
pub mod reference;
pub mod rules;
mod table;
mod value;

pub use alias::{ALIASES, Alias, alias};
pub use choices::{FlashAttn, KvType, LoadMode, SpecType, SplitMode};
pub use params::{EffectiveParams, Params};
pub use table::*;
pub use value::Value;

/// Where a knob acts, which decides the grid's nesting (llama-bench's
/// order: a model-level change reloads the model, so those change least
/// often) and what a change costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Read when the model is loaded (llama.cpp's model parameters).
    Model,
    /// Read when the context is created (llama.cpp's context parameters).
    Context,
    /// The threads that run each graph.
    Threads,
}

/// The values a knob takes.
#[derive(Debug, Clone, Copy)]
pub enum Domain {
    /// An integer in `min..=max`; `meaning` explains the values to someone
    /// who gave one out of range.
    Int {
        min: i64,
        max: i64,
        meaning: &'static str,
    },
    Bool,
    /// One of `names` (matched without regard to case); `from_bool` lets
    /// `true`/`false` stand for two of them.
    Choice {
        names: &'static [&'static str],
        from_bool: Option<(&'static str, &'static str)>,
    },
    /// Text in llama.cpp's own spelling (a tensor split `3,1`, tensor
    /// overrides `exps=CPU`, devices `CUDA0,CUDA1`, a CPU mask `0xff`),
    /// checked and made canonical by `read`; a TOML list of scalars is one
    /// value, joined with commas. `expected` describes it for errors.
    Text {
        read: fn(&str) -> Result<String, String>,
        expected: &'static str,
    },
}

/// How a search places a knob's values in its unit cube.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Sizes that matter by their ratio (batch sizes, contexts).
    Log2,
    /// Unordered names, one-hot.
    Category,
}

/// Where llama.cpp receives a knob (for people: `llama-sweep knobs` and
/// docs/knobs.md; the child's `measure::apply` does the receiving).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receiver {
    ModelParams,
    ContextParams,
    /// The ggml threadpool attached to the context.
    Threadpool,
    /// llama-server's own command line: what the C API does not have
    /// (speculative decoding, continuous batching). Trials through
    /// llama-server (`[sweep] runtime = "server"`) only; the config refuses
    /// these knobs elsewhere.
    Server,
}

impl Receiver {
    pub fn describe(self) -> &'static str {
        match self {
            Receiver::ModelParams => "llama_model_params",
            Receiver::ContextParams => "llama_context_params",
            Receiver::Threadpool => "ggml_threadpool_params",
            Receiver::Server => "llama-server's command line",
        }
    }
}

/// How llama-cpp-python's `Llama()` takes a knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KwargSpelling {
    /// A keyword argument of the knob's name, its value as JSON.
    Same,
    /// `flash_attn=True|False`: "auto" only where llama.cpp said what it
    /// resolved to.
    FlashAttn,
    /// A ggml type id, left out when it is f16 (`Llama()`'s default).
    GgmlType,
    /// A choice passed as its position in the knob's names (llama.cpp's
    /// enum value: `split_mode`).
    EnumIndex,
    /// A list of numbers, left out at the default (`tensor_split`).
    Numbers,
    /// `use_mmap` and `use_mlock`, the two booleans `Llama()` takes for
    /// llama.cpp's load mode.
    LoadMode,
    /// `Llama()` has no argument for it; why, and what it runs instead.
    Unavailable(&'static str),
    /// `Llama()` decodes one sequence: it runs what a trial with
    /// n_parallel 1 ran (whatever this knob), and cannot be told more.
    OneSequence,
}

/// How llama.cpp's common arguments (llama-server's command line and its
/// `LLAMA_ARG_*` variables) take a knob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerSpelling {
    /// `flag value`; `env: None` when llama.cpp reads no variable for it.
    Value {
        flag: &'static str,
        env: Option<&'static str>,
    },
    /// `-ngl N|all`: llama.cpp's parser reads -1 as "auto" (fit), so all
    /// layers is written `all`.
    GpuLayers {
        flag: &'static str,
        env: &'static str,
    },
    /// `-fa on|off|auto`, "auto" written as what llama.cpp resolved it to.
    FlashAttn {
        flag: &'static str,
        env: &'static str,
    },
    /// A boolean as one of two switches; the variable takes 1 or 0
    /// (`env: None`: llama.cpp reads no variable for it).
    Switch {
        on: &'static str,
        off: &'static str,
        env: Option<&'static str>,
    },
    /// `flag value`, left out when the value is `default`: what llama.cpp
    /// does without the flag, which has no spelling of its own (a tensor
    /// split "auto", overrides "none", devices "all").
    Unless {
        flag: &'static str,
        env: Option<&'static str>,
        default: &'static str,
    },
    /// A boolean that only has a switch for `true` (false is the default
    /// and is written by leaving the switch out).
    OnlyOn { on: &'static str, env: &'static str },
}

/// One knob.
#[derive(Debug, Clone, Copy)]
pub struct Knob {
    pub id: KnobId,
    /// Its key in `[space]`, `[baseline]`, the rows and the trial protocol.
    pub name: &'static str,
    /// One line for people: what it does and where it matters.
    pub about: &'static str,
    pub level: Level,
    pub domain: Domain,
    pub scale: Scale,
    pub receiver: Receiver,
    /// Left unset, it takes this knob's value (n_threads_batch follows
    /// n_threads, as llama-bench does).
    pub follows: Option<KnobId>,
    /// llama.cpp clamps it to this knob's value (n_batch to n_ctx).
    pub at_most: Option<KnobId>,
    /// What trials measured before this knob existed ran with (llama.cpp's
    /// default then), as written in a row; `None` for the first knobs.
    pub before: Option<&'static str>,
    pub kwarg: KwargSpelling,
    pub server: ServerSpelling,
    /// What the knob needs to make any difference.
    pub needs: Needs,
    /// llama-server's default is not llama.cpp's (it picks its own number
    /// of slots), so the server args write the knob whatever its value.
    pub server_default_differs: bool,
}

/// What a knob needs to change anything; without it the knob is measured
/// and recorded but its trials differ only by noise, which a sweep says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Anything,
    /// A GPU device in this llama.cpp build.
    Gpu,
    /// A mixture-of-experts model (`<arch>.expert_count` in its header).
    Experts,
    /// ggml's own worker threads: a build with OpenMP waits in OpenMP.
    ThreadPolling,
}

impl Knob {
    /// Whether exports write this knob even at llama.cpp's default. The
    /// first knobs are always written, since the tools' defaults differ for
    /// them (llama-cpp-python's n_ctx 512 and n_gpu_layers 0 ...); the
    /// later ones (repacking, placement, threadpool) have llama.cpp's
    /// default in every tool and are written only when a trial set them.
    pub fn written_at_default(&self) -> bool {
        self.before.is_none() || self.server_default_differs
    }

    /// Whether only llama-server has it (trials through llama-server).
    pub fn server_only(&self) -> bool {
        self.receiver == Receiver::Server
    }
}

/// A knob's position in [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KnobId(u8);

impl KnobId {
    /// The knob's entry.
    pub fn knob(self) -> &'static Knob {
        &TABLE[self.0 as usize]
    }

    pub fn name(self) -> &'static str {
        self.knob().name
    }
}

impl std::fmt::Display for KnobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The knob called `name`.
pub fn by_name(name: &str) -> Option<&'static Knob> {
    TABLE.iter().find(|k| k.name == name)
}

/// Every knob's name, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|k| k.name)
}

/// The knobs in the grid's nesting order: model-level first (they reload
/// the model), threads last (they change fastest), table order within a
/// level.
pub fn nesting_order() -> Vec<&'static Knob> {
    let mut knobs: Vec<&Knob> = TABLE.iter().collect();
    knobs.sort_by_key(|k| k.level);
    knobs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_positions_and_names_are_unique() {
        for (i, knob) in TABLE.iter().enumerate() {
            assert_eq!(knob.id.0 as usize, i, "{}", knob.name);
            assert_eq!(by_name(knob.name).unwrap().id, knob.id);
        }
        let mut names: Vec<_> = names().collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
    }

    #[test]
    fn relations_point_at_knobs_of_the_same_kind() {
        for knob in TABLE {
            for other in [knob.follows, knob.at_most].into_iter().flatten() {
                assert_eq!(
                    std::mem::discriminant(&other.knob().domain),
                    std::mem::discriminant(&knob.domain),
                    "{} relates to {}",
                    knob.name,
                    other.name()
                );
                assert_ne!(other, knob.id);
            }
        }
    }

    #[test]
    fn values_before_a_knob_existed_are_in_its_domain() {
        for knob in TABLE {
            if let Some(before) = knob.before {
                assert!(
                    Value::from_cell(knob, before).is_some(),
                    "{}: {before}",
                    knob.name
                );
            }
        }
    }

    #[test]
    fn llama_servers_own_knobs_are_one_entry_each() {
        let server_only: Vec<&str> = TABLE
            .iter()
            .filter(|k| k.server_only())
            .map(|k| k.name)
            .collect();
        assert_eq!(
            server_only,
            [
                "spec_type",
                "draft_model",
                "draft_n_max",
                "draft_n_min",
                "draft_p_min",
                "cont_batching"
            ]
        );
        assert_eq!(
            TABLE.len(),
            32,
            "26 knobs of llama.cpp's C API, 6 of llama-server's"
        );
        for knob in TABLE.iter().filter(|k| k.server_only()) {
            assert!(
                matches!(knob.kwarg, KwargSpelling::Unavailable(_)),
                "llama-cpp-python runs no llama-server: {}",
                knob.name
            );
            assert!(
                knob.before.is_some(),
                "llama-server's default: {}",
                knob.name
            );
        }
    }

    #[test]
    fn model_level_knobs_nest_outermost() {
        let order = nesting_order();
        let first_context = order.iter().position(|k| k.level != Level::Model).unwrap();
        assert!(
            order[..first_context]
                .iter()
                .all(|k| k.level == Level::Model)
        );
        assert_eq!(order.last().unwrap().level, Level::Threads);
    }
}
