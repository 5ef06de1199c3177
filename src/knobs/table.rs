//! The entries of the parameter table, in the order their values appear in
//! a trial's JSON (which the trial ids hash: append new knobs at the end).

use super::choices::{FlashAttn, KvType};
use super::{Domain, Knob, KnobId, KwargSpelling, Level, Receiver, Scale, ServerSpelling};

/// Declares each knob's id constant (its position) and the table.
macro_rules! knobs {
    ($($id:ident = $knob:expr;)*) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        #[repr(u8)]
        enum Position { $($id),* }
        $(pub const $id: KnobId = KnobId(Position::$id as u8);)*
        /// Every knob, in id order.
        pub static TABLE: &[Knob] = &[$($knob),*];
    };
}

const COUNT: Domain = Domain::Int {
    min: 1,
    max: u32::MAX as i64,
    meaning: "must be at least 1",
};

const THREADS: Domain = Domain::Int {
    min: 1,
    max: 4096,
    meaning: "must be at least 1",
};

knobs! {
    N_GPU_LAYERS = Knob {
        id: N_GPU_LAYERS,
        name: "n_gpu_layers",
        about: "layers on the GPU; -1 = all, 0 = none (needs a GPU build)",
        level: Level::Model,
        domain: Domain::Int {
            min: -1,
            max: i32::MAX as i64,
            meaning: "use -1 for all layers, 0 for none, or a layer count",
        },
        scale: Scale::Linear,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: None,
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::GpuLayers { flag: "-ngl", env: "LLAMA_ARG_N_GPU_LAYERS" },
    };
    N_CTX = Knob {
        id: N_CTX,
        name: "n_ctx",
        about: "context size in tokens (KV-cache memory grows with it)",
        level: Level::Context,
        domain: COUNT,
        scale: Scale::Log2,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: None,
        before: None,
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::Value { flag: "-c", env: Some("LLAMA_ARG_CTX_SIZE") },
    };
    N_BATCH = Knob {
        id: N_BATCH,
        name: "n_batch",
        about: "logical batch: prompt tokens per decode call (llama.cpp clamps it to n_ctx)",
        level: Level::Context,
        domain: COUNT,
        scale: Scale::Log2,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: Some(N_CTX),
        before: None,
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::Value { flag: "-b", env: Some("LLAMA_ARG_BATCH") },
    };
    N_UBATCH = Knob {
        id: N_UBATCH,
        name: "n_ubatch",
        about: "physical batch: tokens per compute graph (clamped to n_batch); prompt speed",
        level: Level::Context,
        domain: COUNT,
        scale: Scale::Log2,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: Some(N_BATCH),
        before: None,
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::Value { flag: "-ub", env: Some("LLAMA_ARG_UBATCH") },
    };
    N_THREADS = Knob {
        id: N_THREADS,
        name: "n_threads",
        about: "CPU threads for generation",
        level: Level::Threads,
        domain: THREADS,
        scale: Scale::Linear,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: None,
        before: None,
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::Value { flag: "-t", env: Some("LLAMA_ARG_THREADS") },
    };
    N_THREADS_BATCH = Knob {
        id: N_THREADS_BATCH,
        name: "n_threads_batch",
        about: "CPU threads for prompt processing (follows n_threads when unset)",
        level: Level::Threads,
        domain: THREADS,
        scale: Scale::Linear,
        receiver: Receiver::ContextParams,
        follows: Some(N_THREADS),
        at_most: None,
        before: None,
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::Value { flag: "-tb", env: None },
    };
    FLASH_ATTN = Knob {
        id: FLASH_ATTN,
        name: "flash_attn",
        about: "flash attention: \"on\", \"off\", \"auto\" (needed for a quantized V cache)",
        level: Level::Context,
        domain: Domain::Choice { names: &FlashAttn::NAMES, from_bool: Some(("on", "off")) },
        scale: Scale::Category,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: None,
        before: None,
        kwarg: KwargSpelling::FlashAttn,
        server: ServerSpelling::FlashAttn { flag: "-fa", env: "LLAMA_ARG_FLASH_ATTN" },
    };
    TYPE_K = Knob {
        id: TYPE_K,
        name: "type_k",
        about: "K-cache type (f16, q8_0, ...): KV memory and speed at depth",
        level: Level::Context,
        domain: Domain::Choice { names: &KvType::NAMES, from_bool: None },
        scale: Scale::Category,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: None,
        before: None,
        kwarg: KwargSpelling::GgmlType,
        server: ServerSpelling::Value { flag: "-ctk", env: Some("LLAMA_ARG_CACHE_TYPE_K") },
    };
    TYPE_V = Knob {
        id: TYPE_V,
        name: "type_v",
        about: "V-cache type; a quantized one needs flash attention",
        level: Level::Context,
        domain: Domain::Choice { names: &KvType::NAMES, from_bool: None },
        scale: Scale::Category,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: None,
        before: None,
        kwarg: KwargSpelling::GgmlType,
        server: ServerSpelling::Value { flag: "-ctv", env: Some("LLAMA_ARG_CACHE_TYPE_V") },
    };
    USE_MMAP = Knob {
        id: USE_MMAP,
        name: "use_mmap",
        about: "map the model file instead of reading it: load time and resident memory",
        level: Level::Model,
        domain: Domain::Bool,
        scale: Scale::Linear,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: None,
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::Named {
            flag: "--load-mode",
            env: "LLAMA_ARG_LOAD_MODE",
            if_true: "mmap",
            if_false: "none",
        },
    };
    OFFLOAD_KQV = Knob {
        id: OFFLOAD_KQV,
        name: "offload_kqv",
        about: "keep the KV cache (and attention) on the GPU",
        level: Level::Context,
        domain: Domain::Bool,
        scale: Scale::Linear,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: None,
        before: None,
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::Switch {
            on: "--kv-offload",
            off: "--no-kv-offload",
            env: "LLAMA_ARG_KV_OFFLOAD",
        },
    };
    REPACK = Knob {
        id: REPACK,
        name: "repack",
        about: "repack weights into the CPU's extra buffer types (AMX, CPU_REPACK): \
                faster prompts where those kernels work (llama-bench --repack)",
        level: Level::Model,
        domain: Domain::Bool,
        scale: Scale::Linear,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: Some("true"),
        kwarg: KwargSpelling::Unavailable(
            "llama-cpp-python's Llama() has no argument for it and always repacks",
        ),
        server: ServerSpelling::Switch {
            on: "--repack",
            off: "--no-repack",
            env: "LLAMA_ARG_REPACK",
        },
    };
    NO_HOST = Knob {
        id: NO_HOST,
        name: "no_host",
        about: "bypass the host (pinned) buffer so extra buffer types can be used with a GPU \
                (llama-bench --no-host)",
        level: Level::Model,
        domain: Domain::Bool,
        scale: Scale::Linear,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: Some("false"),
        kwarg: KwargSpelling::Unavailable(
            "llama-cpp-python's Llama() has no argument for it and uses the host buffer",
        ),
        server: ServerSpelling::OnlyOn { on: "--no-host", env: "LLAMA_ARG_NO_HOST" },
    };
}
