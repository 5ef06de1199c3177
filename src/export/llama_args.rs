//! The trial's parameters as llama.cpp's own common arguments, which
//! llama-server (and llama-cli) read from the command line or from
//! `LLAMA_ARG_*` environment variables. Both the server-args and the env
//! export render this one list.
//!
//! Flag names, values and variables are those of the llama.cpp this crate
//! builds (llama-cpp-sys-2's `common/arg.cpp`): `-fa on|off|auto`,
//! `-ngl N|auto|all` (a plain `-1` means *auto*, fit to free memory, not
//! all layers), `--load-mode auto|mmap|none|mlock|mmap+mlock|dio` (there is
//! no `--no-mmap` any more), `--kv-offload`/`--no-kv-offload`, and no
//! variable for `--threads-batch`, `--poll`, `--prio`, `-C`, `--cpu-strict`
//! or `--no-op-offload`. Text knobs at llama.cpp's own choice (tensor split
//! "auto", overrides "none", devices "all") have no flag and are left out.
//! Every parameter the trial ran with is written, since defaults differ
//! between tools (except later knobs left at llama.cpp's default, which
//! llama-server shares: see `Knob::written_at_default`), and `--fit off`
//! keeps llama.cpp from changing any of them to fit the free memory.

use crate::knobs::EffectiveParams;
use crate::knobs::{self, FlashAttn, Knob, KnobId, ServerSpelling, Value};
use crate::store::row::TrialRow;

/// One llama.cpp argument.
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaArg {
    /// The command-line flag, e.g. `-ngl`.
    pub flag: &'static str,
    /// What follows the flag; `None` for a switch such as `--no-kv-offload`.
    pub value: Option<String>,
    pub env: EnvVar,
    /// Why the value is what it is, where that is not obvious.
    pub note: Option<String>,
    /// The knob it sets (`None` for the model and `--fit`).
    pub knob: Option<KnobId>,
}

/// How the argument is given through the environment.
#[derive(Debug, Clone, PartialEq)]
pub enum EnvVar {
    /// `name=value`.
    Set { name: &'static str, value: String },
    /// llama.cpp reads no variable for this flag; what to do instead.
    Unavailable(String),
}

fn arg(flag: &'static str, env: &'static str, value: impl ToString) -> LlamaArg {
    let value = value.to_string();
    LlamaArg {
        flag,
        env: EnvVar::Set {
            name: env,
            value: value.clone(),
        },
        value: Some(value),
        note: None,
        knob: None,
    }
}

fn switch(flag: &'static str, env: Option<&'static str>, on: bool) -> LlamaArg {
    LlamaArg {
        flag,
        value: None,
        env: match env {
            Some(name) => EnvVar::Set {
                name,
                value: if on { "1" } else { "0" }.into(),
            },
            None => EnvVar::Unavailable(format!(
                "no LLAMA_ARG_ variable: pass {flag} on the command line"
            )),
        },
        note: None,
        knob: None,
    }
}

fn flash_attn(row: &Trial, flag: &'static str, env: &'static str) -> LlamaArg {
    match (row.params.flash_attn(), row.flash_attn_resolved) {
        (FlashAttn::Auto, Some(on)) => {
            let value = if on { "on" } else { "off" };
            LlamaArg {
                note: Some(format!(
                    "measured with \"auto\", which llama.cpp resolved to {value}"
                )),
                ..arg(flag, env, value)
            }
        }
        (setting, _) => arg(flag, env, setting.name()),
    }
}

/// A flag llama.cpp reads no variable for (`--threads-batch`): say what to
/// do instead, and what llama.cpp uses without it.
fn without_variable(row: &Trial, knob: &Knob, flag: &'static str) -> LlamaArg {
    let value = flag_value(row.params.get(knob.id));
    let instead = match knob.follows {
        Some(followed) if flag_value(row.params.get(followed)) == value => {
            format!("no LLAMA_ARG_ variable; llama.cpp uses the {followed} value, as measured")
        }
        Some(followed) => format!(
            "no LLAMA_ARG_ variable: pass {flag} {value} on the command line (without it \
             llama.cpp uses the {followed} value, {})",
            flag_value(row.params.get(followed))
        ),
        None => format!("no LLAMA_ARG_ variable: pass {flag} {value} on the command line"),
    };
    LlamaArg {
        flag,
        value: Some(value.to_string()),
        env: EnvVar::Unavailable(instead),
        note: None,
        knob: None,
    }
}

/// A value as llama.cpp's argument parser reads it: booleans that take a
/// value (`--cpu-strict <0|1>`) as 1 or 0.
fn flag_value(value: &Value) -> String {
    match value {
        Value::Bool(b) => u8::from(*b).to_string(),
        other => other.to_string(),
    }
}

/// The argument that sets `knob` as `row` ran it (`None`: nothing to write,
/// the value is what llama.cpp does without the flag).
fn knob_arg(row: &Trial, knob: &Knob) -> Option<LlamaArg> {
    if !knob.written_at_default() && row.is_defaulted(knob.id) {
        return None;
    }
    let value = row.params.get(knob.id);
    let on = value.as_bool().unwrap_or(false);
    let arg = match knob.server {
        ServerSpelling::Value {
            flag,
            env: Some(env),
        } => arg(flag, env, flag_value(value)),
        ServerSpelling::Value { flag, env: None } => without_variable(row, knob, flag),
        ServerSpelling::Unless { default, .. } if value.as_str() == Some(default) => return None,
        ServerSpelling::Unless {
            flag,
            env: Some(env),
            ..
        } => arg(flag, env, value),
        ServerSpelling::Unless {
            flag, env: None, ..
        } => without_variable(row, knob, flag),
        // llama.h counts any negative number as all layers; llama.cpp's
        // argument parser reads -1 as "auto" and wants "all".
        ServerSpelling::GpuLayers { flag, env } => match value {
            Value::Int(n) if *n < 0 => arg(flag, env, "all"),
            other => arg(flag, env, other),
        },
        ServerSpelling::FlashAttn { flag, env } => flash_attn(row, flag, env),
        ServerSpelling::Switch { on: yes, off, env } => switch(if on { yes } else { off }, env, on),
        ServerSpelling::OnlyOn { on: flag, env } if on => switch(flag, Some(env), true),
        ServerSpelling::OnlyOn { .. } => return None,
    };
    Some(LlamaArg {
        knob: Some(knob.id),
        ..arg
    })
}

/// What the arguments are written from: a trial's model and parameters,
/// as measured (a row) or about to be (a trial run through llama-server,
/// whose command line is these same arguments).
pub struct Trial<'a> {
    pub model_path: &'a str,
    pub params: &'a EffectiveParams,
    /// Knobs left at llama.cpp's default, `;`-separated (a row's
    /// `defaulted`).
    pub defaulted: &'a str,
    /// What `flash_attn = auto` resolved to, once measured.
    pub flash_attn_resolved: Option<bool>,
}

impl Trial<'_> {
    fn is_defaulted(&self, knob: KnobId) -> bool {
        self.defaulted.split(';').any(|name| name == knob.name())
    }
}

/// The llama.cpp arguments that reproduce `row`'s trial: the model, every
/// knob in the parameter table's order, and `--fit off`.
pub fn llama_args(row: &TrialRow) -> Vec<LlamaArg> {
    trial_args(&Trial {
        model_path: &row.model_path,
        params: &row.params,
        defaulted: &row.defaulted,
        flash_attn_resolved: row.flash_attn_resolved,
    })
}

/// The llama.cpp arguments of `trial`, as [`llama_args`].
pub fn trial_args(trial: &Trial) -> Vec<LlamaArg> {
    std::iter::once(arg("-m", "LLAMA_ARG_MODEL", trial.model_path))
        .chain(knobs::TABLE.iter().filter_map(|k| knob_arg(trial, k)))
        .chain(std::iter::once(arg("--fit", "LLAMA_ARG_FIT", "off")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;
    use crate::test_support::set;

    fn row() -> TrialRow {
        crate::test_support::row("abc", &mock::measured(180.0, 500.0))
    }

    fn value_of(args: &[LlamaArg], flag: &str) -> Option<String> {
        args.iter()
            .find(|a| a.flag == flag)
            .and_then(|a| a.value.clone())
    }

    #[test]
    fn negative_gpu_layers_mean_all_layers_not_auto() {
        let mut r = row();
        for (n, expected) in [(-1, "all"), (-2, "all"), (0, "0"), (33, "33")] {
            r.params.set(knobs::N_GPU_LAYERS, Value::Int(n));
            assert_eq!(value_of(&llama_args(&r), "-ngl").as_deref(), Some(expected));
        }
    }

    #[test]
    fn flash_attention_writes_what_ran() {
        let mut r = row();
        r.params.set(knobs::FLASH_ATTN, Value::Text("auto".into()));
        r.flash_attn_resolved = None;
        assert_eq!(value_of(&llama_args(&r), "-fa").as_deref(), Some("auto"));
        r.flash_attn_resolved = Some(true);
        let args = llama_args(&r);
        let fa = args.iter().find(|a| a.flag == "-fa").unwrap();
        assert_eq!(fa.value.as_deref(), Some("on"));
        assert!(fa.note.as_deref().unwrap().contains("resolved to on"));
        r.params.set(knobs::FLASH_ATTN, Value::Text("off".into()));
        assert_eq!(value_of(&llama_args(&r), "-fa").as_deref(), Some("off"));
    }

    #[test]
    fn mmap_and_kv_offload_switches() {
        let mut r = row();
        r.params.set(knobs::LOAD_MODE, Value::Text("none".into()));
        r.params.set(knobs::OFFLOAD_KQV, Value::Bool(false));
        let args = llama_args(&r);
        assert_eq!(value_of(&args, "--load-mode").as_deref(), Some("none"));
        let kvo = args.iter().find(|a| a.flag == "--no-kv-offload").unwrap();
        assert_eq!(kvo.value, None);
        assert_eq!(
            kvo.env,
            EnvVar::Set {
                name: "LLAMA_ARG_KV_OFFLOAD",
                value: "0".into()
            }
        );
    }

    #[test]
    fn repack_and_no_host_are_written_as_llama_server_switches() {
        let mut r = row();
        let args = llama_args(&r);
        assert!(
            !args
                .iter()
                .any(|a| a.flag == "--repack" || a.flag == "--no-host"),
            "left at llama.cpp's default, which llama-server shares: {args:?}"
        );
        set(&mut r, knobs::REPACK, Value::Bool(false));
        set(&mut r, knobs::NO_HOST, Value::Bool(true));
        let args = llama_args(&r);
        let no_repack = args.iter().find(|a| a.flag == "--no-repack").unwrap();
        assert_eq!(
            no_repack.env,
            EnvVar::Set {
                name: "LLAMA_ARG_REPACK",
                value: "0".into()
            }
        );
        assert!(args.iter().any(|a| a.flag == "--no-host"));
    }

    #[test]
    fn placement_and_threadpool_knobs_are_written_as_llama_server_takes_them() {
        let mut r = row();
        let args = llama_args(&r);
        for absent in ["-ts", "-ot", "-dev", "-C"] {
            assert!(
                !args.iter().any(|a| a.flag == absent),
                "{absent} at llama.cpp's own choice has no flag: {args:?}"
            );
        }
        assert_eq!(value_of(&args, "--n-cpu-moe"), None, "left at the default");
        set(&mut r, knobs::N_CPU_MOE, Value::Int(3));
        set(
            &mut r,
            knobs::OVERRIDE_TENSOR,
            Value::Text("token_embd=CPU".into()),
        );
        set(&mut r, knobs::TENSOR_SPLIT, Value::Text("3,1".into()));
        set(&mut r, knobs::SPLIT_MODE, Value::Text("row".into()));
        set(&mut r, knobs::DEVICES, Value::Text("CUDA0,CUDA1".into()));
        set(&mut r, knobs::CPU_STRICT, Value::Bool(true));
        set(&mut r, knobs::CPU_MASK, Value::Text("0xff".into()));
        set(&mut r, knobs::OP_OFFLOAD, Value::Bool(false));
        let args = llama_args(&r);
        for (flag, value) in [
            ("--n-cpu-moe", "3"),
            ("-ot", "token_embd=CPU"),
            ("-ts", "3,1"),
            ("-sm", "row"),
            ("-dev", "CUDA0,CUDA1"),
            ("--cpu-strict", "1"),
            ("-C", "0xff"),
        ] {
            assert_eq!(value_of(&args, flag).as_deref(), Some(value), "{flag}");
        }
        let position = |flag: &str| args.iter().position(|a| a.flag == flag).unwrap();
        assert!(
            position("-ot") < position("--n-cpu-moe"),
            "llama.cpp applies -ot rules in order, before --n-cpu-moe's"
        );
        let nopo = args.iter().find(|a| a.flag == "--no-op-offload").unwrap();
        assert!(matches!(&nopo.env, EnvVar::Unavailable(why) if why.contains("command line")));
        let mask = args.iter().find(|a| a.flag == "-C").unwrap();
        assert!(matches!(&mask.env, EnvVar::Unavailable(_)));
    }
}
