//! The trial's parameters as llama.cpp's own common arguments, which
//! llama-server (and llama-cli) read from the command line or from
//! `LLAMA_ARG_*` environment variables. Both the server-args and the env
//! export render this one list.
//!
//! Flag names, values and variables are those of the llama.cpp this crate
//! builds (llama-cpp-sys-2's `common/arg.cpp`): `-fa on|off|auto`,
//! `-ngl N|auto|all` (a plain `-1` means *auto*, fit to free memory, not
//! all layers), `--load-mode mmap|none` (there is no `--no-mmap` any more),
//! `--kv-offload`/`--no-kv-offload`, and no variable for `--threads-batch`.
//! Every parameter the trial ran with is written, since defaults differ
//! between tools, and `--fit off` keeps llama.cpp from changing any of them
//! to fit the free memory.

use crate::protocol::FlashAttn;
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
    }
}

/// `-ngl`: llama.h counts any negative number as all layers, llama.cpp's
/// argument parser reads -1 as "auto" and wants "all".
fn gpu_layers(n_gpu_layers: i32) -> String {
    if n_gpu_layers < 0 {
        "all".into()
    } else {
        n_gpu_layers.to_string()
    }
}

fn flash_attn(row: &TrialRow) -> LlamaArg {
    match (row.flash_attn, row.flash_attn_resolved) {
        (FlashAttn::Auto, Some(on)) => {
            let value = if on { "on" } else { "off" };
            LlamaArg {
                note: Some(format!(
                    "measured with \"auto\", which llama.cpp resolved to {value}"
                )),
                ..arg("-fa", "LLAMA_ARG_FLASH_ATTN", value)
            }
        }
        (setting, _) => arg("-fa", "LLAMA_ARG_FLASH_ATTN", setting.name()),
    }
}

/// `--threads-batch` has no environment variable; without it llama.cpp
/// uses the `--threads` value.
fn threads_batch(row: &TrialRow) -> LlamaArg {
    let instead = if row.n_threads_batch == row.n_threads {
        "no LLAMA_ARG_ variable; llama.cpp uses the threads value, as measured".to_string()
    } else {
        format!(
            "no LLAMA_ARG_ variable: pass -tb {} on the command line (without it llama.cpp uses \
             the threads value, {})",
            row.n_threads_batch, row.n_threads
        )
    };
    LlamaArg {
        flag: "-tb",
        value: Some(row.n_threads_batch.to_string()),
        env: EnvVar::Unavailable(instead),
        note: None,
    }
}

fn kv_offload(on: bool) -> LlamaArg {
    LlamaArg {
        flag: if on {
            "--kv-offload"
        } else {
            "--no-kv-offload"
        },
        value: None,
        env: EnvVar::Set {
            name: "LLAMA_ARG_KV_OFFLOAD",
            value: if on { "1" } else { "0" }.into(),
        },
        note: None,
    }
}

/// The llama.cpp arguments that reproduce `row`'s trial.
pub fn llama_args(row: &TrialRow) -> Vec<LlamaArg> {
    vec![
        arg("-m", "LLAMA_ARG_MODEL", &row.model_path),
        arg(
            "-ngl",
            "LLAMA_ARG_N_GPU_LAYERS",
            gpu_layers(row.n_gpu_layers),
        ),
        arg("-c", "LLAMA_ARG_CTX_SIZE", row.n_ctx),
        arg("-b", "LLAMA_ARG_BATCH", row.n_batch),
        arg("-ub", "LLAMA_ARG_UBATCH", row.n_ubatch),
        arg("-t", "LLAMA_ARG_THREADS", row.n_threads),
        threads_batch(row),
        flash_attn(row),
        arg("-ctk", "LLAMA_ARG_CACHE_TYPE_K", row.type_k.name()),
        arg("-ctv", "LLAMA_ARG_CACHE_TYPE_V", row.type_v.name()),
        arg(
            "--load-mode",
            "LLAMA_ARG_LOAD_MODE",
            if row.use_mmap { "mmap" } else { "none" },
        ),
        kv_offload(row.offload_kqv),
        arg("--fit", "LLAMA_ARG_FIT", "off"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::mock;

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
            r.n_gpu_layers = n;
            assert_eq!(value_of(&llama_args(&r), "-ngl").as_deref(), Some(expected));
        }
    }

    #[test]
    fn flash_attention_writes_what_ran() {
        let mut r = row();
        r.flash_attn = FlashAttn::Auto;
        r.flash_attn_resolved = None;
        assert_eq!(value_of(&llama_args(&r), "-fa").as_deref(), Some("auto"));
        r.flash_attn_resolved = Some(true);
        let args = llama_args(&r);
        let fa = args.iter().find(|a| a.flag == "-fa").unwrap();
        assert_eq!(fa.value.as_deref(), Some("on"));
        assert!(fa.note.as_deref().unwrap().contains("resolved to on"));
        r.flash_attn = FlashAttn::Off;
        assert_eq!(value_of(&llama_args(&r), "-fa").as_deref(), Some("off"));
    }

    #[test]
    fn mmap_and_kv_offload_switches() {
        let mut r = row();
        r.use_mmap = false;
        r.offload_kqv = false;
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
}
