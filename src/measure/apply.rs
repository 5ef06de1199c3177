//! Where llama.cpp receives each knob of the parameter table: one arm per
//! knob that writes its value into llama.cpp's model or context parameters,
//! and one that reads the knob's default back from llama.cpp's default
//! parameter structs (what a trial runs with when the sweep leaves the knob
//! unset).

use super::llama::ModelParams;
use crate::knobs::{self, EffectiveParams, FlashAttn, KnobId, KvType, Params, Value};
use llama_cpp_sys_2 as sys;

/// llama.cpp's parameters for one model load and context.
pub struct Settings {
    pub model: ModelParams,
    pub context: sys::llama_context_params,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            model: ModelParams::default(),
            // SAFETY: a plain struct of defaults.
            context: unsafe { sys::llama_context_default_params() },
        }
    }
}

/// llama.cpp's parameters for the knobs `params` sets; a knob that follows
/// another (n_threads_batch) takes that one's value when only that one is
/// set, as `Params::resolve` records it.
pub fn settings(params: &Params) -> Settings {
    let mut settings = Settings::default();
    for knob in knobs::TABLE {
        let value = params
            .get(knob.id)
            .or_else(|| knob.follows.and_then(|f| params.get(f)));
        if let Some(value) = value {
            receive(&mut settings, knob.id, value);
        }
    }
    settings
}

fn flash_attn_type(f: FlashAttn) -> sys::llama_flash_attn_type {
    match f {
        FlashAttn::On => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        FlashAttn::Off => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        FlashAttn::Auto => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
    }
}

fn kv_type(value: &Value) -> sys::ggml_type {
    let t = value
        .as_str()
        .and_then(KvType::from_name)
        .unwrap_or(KvType::F16);
    t.ggml_type_id() as sys::ggml_type
}

/// Writes one knob's value into llama.cpp's parameters. Returns whether
/// the knob is one llama.cpp receives here (every knob of the table is;
/// a test holds the table to that).
fn receive(s: &mut Settings, knob: KnobId, value: &Value) -> bool {
    let int = value.as_int().unwrap_or_default();
    let flag = value.as_bool().unwrap_or_default();
    let (mp, cp) = (&mut s.model.raw, &mut s.context);
    match knob {
        // A negative value means all layers.
        knobs::N_GPU_LAYERS => mp.n_gpu_layers = int.clamp(-1, i64::from(i32::MAX)) as i32,
        knobs::USE_MMAP => {
            mp.load_mode = if flag {
                sys::LLAMA_LOAD_MODE_MMAP
            } else {
                sys::LLAMA_LOAD_MODE_NONE
            }
        }
        knobs::N_CTX => cp.n_ctx = int as u32,
        knobs::N_BATCH => cp.n_batch = int as u32,
        knobs::N_UBATCH => cp.n_ubatch = int as u32,
        knobs::N_THREADS => cp.n_threads = int as i32,
        knobs::N_THREADS_BATCH => cp.n_threads_batch = int as i32,
        knobs::FLASH_ATTN => {
            let f = value.as_str().and_then(FlashAttn::from_name);
            cp.flash_attn_type = flash_attn_type(f.unwrap_or(FlashAttn::Auto));
        }
        knobs::TYPE_K => cp.type_k = kv_type(value),
        knobs::TYPE_V => cp.type_v = kv_type(value),
        knobs::OFFLOAD_KQV => cp.offload_kqv = flag,
        knobs::REPACK => mp.use_extra_bufts = flag,
        knobs::NO_HOST => mp.no_host = flag,
        _ => return false,
    }
    true
}

/// llama.cpp's default of one knob, from its default parameters.
fn default_of(
    knob: KnobId,
    mp: &sys::llama_model_params,
    cp: &sys::llama_context_params,
) -> Option<Value> {
    let kv = |t: sys::ggml_type| {
        KvType::ALL
            .into_iter()
            .find(|k| k.ggml_type_id() as sys::ggml_type == t)
            .unwrap_or(KvType::F16)
            .into()
    };
    Some(match knob {
        knobs::N_GPU_LAYERS => mp.n_gpu_layers.into(),
        // "auto" maps the file unless a device cannot.
        knobs::USE_MMAP => matches!(
            mp.load_mode,
            sys::LLAMA_LOAD_MODE_AUTO | sys::LLAMA_LOAD_MODE_MMAP | sys::LLAMA_LOAD_MODE_MMAP_MLOCK
        )
        .into(),
        knobs::N_CTX => cp.n_ctx.into(),
        knobs::N_BATCH => cp.n_batch.into(),
        knobs::N_UBATCH => cp.n_ubatch.into(),
        knobs::N_THREADS => cp.n_threads.into(),
        knobs::N_THREADS_BATCH => cp.n_threads_batch.into(),
        knobs::FLASH_ATTN => match cp.flash_attn_type {
            sys::LLAMA_FLASH_ATTN_TYPE_ENABLED => FlashAttn::On,
            sys::LLAMA_FLASH_ATTN_TYPE_DISABLED => FlashAttn::Off,
            _ => FlashAttn::Auto,
        }
        .into(),
        knobs::TYPE_K => kv(cp.type_k),
        knobs::TYPE_V => kv(cp.type_v),
        knobs::OFFLOAD_KQV => cp.offload_kqv.into(),
        knobs::REPACK => mp.use_extra_bufts.into(),
        knobs::NO_HOST => mp.no_host.into(),
        _ => return None,
    })
}

/// llama.cpp's default for every knob.
pub fn defaults() -> EffectiveParams {
    let s = Settings::default();
    let values: Params = knobs::TABLE
        .iter()
        .filter_map(|k| default_of(k.id, &s.model.raw, &s.context).map(|v| (k.id, v)))
        .collect();
    EffectiveParams::complete(values)
        .unwrap_or_else(|missing| panic!("no llama.cpp default is read for knob {missing}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_knob_is_received_and_has_a_default() {
        let defaults = defaults();
        for knob in knobs::TABLE {
            let mut s = Settings::default();
            assert!(
                receive(&mut s, knob.id, defaults.get(knob.id)),
                "{} is not received by llama.cpp",
                knob.name
            );
        }
    }

    #[test]
    fn set_knobs_reach_the_parameters_and_threads_batch_follows() {
        let params = Params::default()
            .with(knobs::N_CTX, Value::Int(2048))
            .with(knobs::N_THREADS, Value::Int(3))
            .with(knobs::TYPE_V, KvType::Q8_0.into())
            .with(knobs::USE_MMAP, Value::Bool(false));
        let s = settings(&params);
        assert_eq!(s.context.n_ctx, 2048);
        assert_eq!((s.context.n_threads, s.context.n_threads_batch), (3, 3));
        assert_eq!(
            s.context.type_v,
            KvType::Q8_0.ggml_type_id() as sys::ggml_type
        );
        assert_eq!(s.model.raw.load_mode, sys::LLAMA_LOAD_MODE_NONE);
        let defaults = defaults();
        assert_eq!(defaults.int(knobs::N_GPU_LAYERS), -1);
        assert!(defaults.flag(knobs::USE_MMAP));
    }
}
