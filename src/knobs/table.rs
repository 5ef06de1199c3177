//! The entries of the parameter table, in the order their values appear in
//! a trial's JSON (which the trial ids hash: append new knobs at the end).

use super::choices::{FlashAttn, KvType, LoadMode, SpecType, SplitMode};
use super::lists;
use super::{Domain, Knob, KnobId, KwargSpelling, Level, Needs, Receiver, Scale, ServerSpelling};

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

const NON_NEGATIVE: Domain = Domain::Int {
    min: 0,
    max: i32::MAX as i64,
    meaning: "must be 0 or more",
};

const NOT_FOR_LLAMA_CPP_PYTHON: &str = "llama-cpp-python's Llama() has no argument for it";

const NOT_IN_LLAMA_CPP_PYTHON: &str =
    "llama-cpp-python's Llama() runs no llama-server: it has no argument for it";

const DRAFT_TOKENS: Domain = Domain::Int {
    min: 0,
    max: 1024,
    meaning: "must be 0 to 1024 tokens",
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
        needs: Needs::Gpu,
        server_default_differs: false,
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
        needs: Needs::Anything,
        server_default_differs: false,
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
        needs: Needs::Anything,
        server_default_differs: false,
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
        needs: Needs::Anything,
        server_default_differs: false,
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
        needs: Needs::Anything,
        server_default_differs: false,
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
        needs: Needs::Anything,
        server_default_differs: false,
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
        needs: Needs::Anything,
        server_default_differs: false,
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
        needs: Needs::Anything,
        server_default_differs: false,
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
        needs: Needs::Anything,
        server_default_differs: false,
    };
    LOAD_MODE = Knob {
        id: LOAD_MODE,
        name: "load_mode",
        about: "how the weights are loaded: \"auto\" (mmap unless a device cannot), \"mmap\", \
                \"none\" (read into memory), \"mlock\", \"mmap+mlock\", \"dio\" (direct I/O); \
                load time and resident memory (use_mmap = true/false is its old spelling)",
        level: Level::Model,
        domain: Domain::Choice { names: &LoadMode::NAMES, from_bool: None },
        scale: Scale::Category,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: None,
        kwarg: KwargSpelling::LoadMode,
        server: ServerSpelling::Value { flag: "--load-mode", env: Some("LLAMA_ARG_LOAD_MODE") },
        needs: Needs::Anything,
        server_default_differs: false,
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
            env: Some("LLAMA_ARG_KV_OFFLOAD"),
        },
        needs: Needs::Gpu,
        server_default_differs: false,
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
            env: Some("LLAMA_ARG_REPACK"),
        },
        needs: Needs::Anything,
        server_default_differs: false,
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
        needs: Needs::Gpu,
        server_default_differs: false,
    };
    OVERRIDE_TENSOR = Knob {
        id: OVERRIDE_TENSOR,
        name: "override_tensor",
        about: "tensor placement rules as llama.cpp's -ot: \"pattern=BUFFER_TYPE,...\" (e.g. \
                \"ffn_.*_exps=CPU\"), or \"none\"; applied before n_cpu_moe's",
        level: Level::Model,
        domain: Domain::Text {
            read: lists::override_tensor,
            expected: "\"pattern=BUFFER_TYPE\" rules separated by commas, or \"none\"",
        },
        scale: Scale::Category,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: Some(lists::NO_OVERRIDES),
        kwarg: KwargSpelling::Unavailable(NOT_FOR_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Unless {
            flag: "-ot",
            env: Some("LLAMA_ARG_OVERRIDE_TENSOR"),
            default: lists::NO_OVERRIDES,
        },
        needs: Needs::Anything,
        server_default_differs: false,
    };
    N_CPU_MOE = Knob {
        id: N_CPU_MOE,
        name: "n_cpu_moe",
        about: "keep the MoE expert tensors of the first N layers in CPU memory (llama-bench \
                -ncmoe): how a mixture-of-experts model too big for the GPU still runs there",
        level: Level::Model,
        domain: NON_NEGATIVE,
        scale: Scale::Linear,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: Some("0"),
        kwarg: KwargSpelling::Unavailable(NOT_FOR_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Value { flag: "--n-cpu-moe", env: Some("LLAMA_ARG_N_CPU_MOE") },
        needs: Needs::Experts,
        server_default_differs: false,
    };
    SPLIT_MODE = Knob {
        id: SPLIT_MODE,
        name: "split_mode",
        about: "how layers spread over several GPUs: \"none\" (main_gpu only), \"layer\", \
                \"row\", \"tensor\" (no effect with one GPU or none)",
        level: Level::Model,
        domain: Domain::Choice { names: &SplitMode::NAMES, from_bool: None },
        scale: Scale::Category,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: Some("layer"),
        kwarg: KwargSpelling::EnumIndex,
        server: ServerSpelling::Value { flag: "-sm", env: Some("LLAMA_ARG_SPLIT_MODE") },
        needs: Needs::Gpu,
        server_default_differs: false,
    };
    TENSOR_SPLIT = Knob {
        id: TENSOR_SPLIT,
        name: "tensor_split",
        about: "the share of the model per GPU, e.g. [3, 1]; \"auto\" follows free memory \
                (no effect with one GPU or none)",
        level: Level::Model,
        domain: Domain::Text {
            read: lists::tensor_split,
            expected: "a list of proportions such as [3, 1], or \"auto\"",
        },
        scale: Scale::Category,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: Some(lists::AUTO_SPLIT),
        kwarg: KwargSpelling::Numbers,
        server: ServerSpelling::Unless {
            flag: "-ts",
            env: Some("LLAMA_ARG_TENSOR_SPLIT"),
            default: lists::AUTO_SPLIT,
        },
        needs: Needs::Gpu,
        server_default_differs: false,
    };
    MAIN_GPU = Knob {
        id: MAIN_GPU,
        name: "main_gpu",
        about: "the GPU for the whole model with split_mode = \"none\", for intermediate \
                results with \"row\"",
        level: Level::Model,
        domain: NON_NEGATIVE,
        scale: Scale::Category,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: Some("0"),
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::Value { flag: "-mg", env: Some("LLAMA_ARG_MAIN_GPU") },
        needs: Needs::Gpu,
        server_default_differs: false,
    };
    DEVICES = Knob {
        id: DEVICES,
        name: "devices",
        about: "the devices to offload to, by llama.cpp's names (\"CUDA0,CUDA1\"; `llama-sweep \
                doctor` lists them), \"all\" or \"none\"",
        level: Level::Model,
        domain: Domain::Text {
            read: lists::devices,
            expected: "device names such as \"CUDA0,CUDA1\", \"all\" or \"none\"",
        },
        scale: Scale::Category,
        receiver: Receiver::ModelParams,
        follows: None,
        at_most: None,
        before: Some(lists::ALL_DEVICES),
        kwarg: KwargSpelling::Unavailable(NOT_FOR_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Unless {
            flag: "-dev",
            env: Some("LLAMA_ARG_DEVICE"),
            default: lists::ALL_DEVICES,
        },
        needs: Needs::Gpu,
        server_default_differs: false,
    };
    OP_OFFLOAD = Knob {
        id: OP_OFFLOAD,
        name: "op_offload",
        about: "ship CPU-resident weights to the GPU for big batches (llama-bench -nopo is \
                false): MoE prompt speed with experts on the CPU",
        level: Level::Context,
        domain: Domain::Bool,
        scale: Scale::Linear,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: None,
        before: Some("true"),
        kwarg: KwargSpelling::Same,
        server: ServerSpelling::Switch { on: "--op-offload", off: "--no-op-offload", env: None },
        needs: Needs::Gpu,
        server_default_differs: false,
    };
    POLL = Knob {
        id: POLL,
        name: "poll",
        about: "how hard idle threads poll for work, 0-100 (llama-bench --poll); ggml's \
                OpenMP build, the default, waits in OpenMP and ignores it",
        level: Level::Threads,
        domain: Domain::Int { min: 0, max: 100, meaning: "must be 0 to 100" },
        scale: Scale::Linear,
        receiver: Receiver::Threadpool,
        follows: None,
        at_most: None,
        before: Some("50"),
        kwarg: KwargSpelling::Unavailable(NOT_FOR_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Value { flag: "--poll", env: None },
        needs: Needs::ThreadPolling,
        server_default_differs: false,
    };
    PRIO = Knob {
        id: PRIO,
        name: "prio",
        about: "thread priority: -1 low, 0 normal, 1 medium, 2 high, 3 realtime (llama-bench \
                --prio; above normal needs the privilege to raise it)",
        level: Level::Threads,
        domain: Domain::Int { min: -1, max: 3, meaning: "must be -1 (low) to 3 (realtime)" },
        scale: Scale::Linear,
        receiver: Receiver::Threadpool,
        follows: None,
        at_most: None,
        before: Some("0"),
        kwarg: KwargSpelling::Unavailable(NOT_FOR_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Value { flag: "--prio", env: None },
        needs: Needs::Anything,
        server_default_differs: false,
    };
    CPU_MASK = Knob {
        id: CPU_MASK,
        name: "cpu_mask",
        about: "the CPUs the threads may run on, a hex mask (\"0xff\": CPUs 0-7; \"0x0\": \
                any), as llama-bench -C",
        level: Level::Threads,
        domain: Domain::Text {
            read: lists::cpu_mask,
            expected: "a hexadecimal CPU mask such as \"0xff\"",
        },
        scale: Scale::Category,
        receiver: Receiver::Threadpool,
        follows: None,
        at_most: None,
        before: Some(lists::NO_CPU_MASK),
        kwarg: KwargSpelling::Unavailable(NOT_FOR_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Unless { flag: "-C", env: None, default: lists::NO_CPU_MASK },
        needs: Needs::Anything,
        server_default_differs: false,
    };
    CPU_STRICT = Knob {
        id: CPU_STRICT,
        name: "cpu_strict",
        about: "pin each thread to one CPU of cpu_mask, in order (llama-bench --cpu-strict)",
        level: Level::Threads,
        domain: Domain::Bool,
        scale: Scale::Linear,
        receiver: Receiver::Threadpool,
        follows: None,
        at_most: None,
        before: Some("false"),
        kwarg: KwargSpelling::Unavailable(NOT_FOR_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Value { flag: "--cpu-strict", env: None },
        needs: Needs::Anything,
        server_default_differs: false,
    };
    N_PARALLEL = Knob {
        id: N_PARALLEL,
        name: "n_parallel",
        about: "sequences decoded together, as llama-server's slots (-np): more users at once, \
                each a little slower; n_ctx is shared among them",
        level: Level::Context,
        domain: Domain::Int {
            min: 1,
            max: 256,
            meaning: "must be 1 to 256 (llama.cpp's LLAMA_MAX_SEQ)",
        },
        scale: Scale::Log2,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: None,
        before: Some("1"),
        kwarg: KwargSpelling::OneSequence,
        server: ServerSpelling::Value { flag: "-np", env: Some("LLAMA_ARG_N_PARALLEL") },
        needs: Needs::Anything,
        // llama-server picks its own number of slots when -np is left out.
        server_default_differs: true,
    };
    KV_UNIFIED = Knob {
        id: KV_UNIFIED,
        name: "kv_unified",
        about: "one KV cache shared by all n_parallel sequences (each may use all of n_ctx) \
                instead of n_ctx / n_parallel each (llama-server --kv-unified)",
        level: Level::Context,
        domain: Domain::Bool,
        scale: Scale::Linear,
        receiver: Receiver::ContextParams,
        follows: None,
        at_most: None,
        before: Some("false"),
        kwarg: KwargSpelling::OneSequence,
        server: ServerSpelling::Switch {
            on: "--kv-unified",
            off: "--no-kv-unified",
            env: Some("LLAMA_ARG_KV_UNIFIED"),
        },
        needs: Needs::Anything,
        // llama-server unifies the cache when it picks the slots itself.
        server_default_differs: true,
    };
    SPEC_TYPE = Knob {
        id: SPEC_TYPE,
        name: "spec_type",
        about: "llama-server's speculative decoding: \"none\", \"draft-simple\" (a small \
                draft model guesses, draft_model names it), \"ngram-mod\", \"ngram-simple\" ... \
                (guesses from n-grams of the text so far, no second model); pays off when the \
                guesses are often right (draft_acceptance)",
        level: Level::Model,
        domain: Domain::Choice { names: &SpecType::NAMES, from_bool: None },
        scale: Scale::Category,
        receiver: Receiver::Server,
        follows: None,
        at_most: None,
        before: Some(SpecType::NONE),
        kwarg: KwargSpelling::Unavailable(NOT_IN_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Unless {
            flag: "--spec-type",
            env: Some("LLAMA_ARG_SPEC_TYPE"),
            default: SpecType::NONE,
        },
        needs: Needs::Anything,
        server_default_differs: false,
    };
    DRAFT_MODEL = Knob {
        id: DRAFT_MODEL,
        name: "draft_model",
        about: "the draft model for spec_type = \"draft-simple\": a GGUF file with the target's \
                vocabulary, much smaller (relative to the sweep file), or \"none\"",
        level: Level::Model,
        domain: Domain::Text {
            read: lists::draft_model,
            expected: "the path of a GGUF file, or \"none\"",
        },
        scale: Scale::Category,
        receiver: Receiver::Server,
        follows: None,
        at_most: None,
        before: Some(lists::NO_DRAFT_MODEL),
        kwarg: KwargSpelling::Unavailable(NOT_IN_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Unless {
            flag: "-md",
            env: Some("LLAMA_ARG_SPEC_DRAFT_MODEL"),
            default: lists::NO_DRAFT_MODEL,
        },
        needs: Needs::Anything,
        server_default_differs: false,
    };
    DRAFT_N_MAX = Knob {
        id: DRAFT_N_MAX,
        name: "draft_n_max",
        about: "tokens the draft model guesses at a time (llama-server --spec-draft-n-max, \
                once --draft-max): more gains when guesses hold, more waste when not",
        level: Level::Context,
        domain: DRAFT_TOKENS,
        scale: Scale::Linear,
        receiver: Receiver::Server,
        follows: None,
        at_most: None,
        before: Some("3"),
        kwarg: KwargSpelling::Unavailable(NOT_IN_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Value {
            flag: "--spec-draft-n-max",
            env: Some("LLAMA_ARG_SPEC_DRAFT_N_MAX"),
        },
        needs: Needs::Anything,
        server_default_differs: false,
    };
    DRAFT_N_MIN = Knob {
        id: DRAFT_N_MIN,
        name: "draft_n_min",
        about: "the fewest draft tokens worth checking (llama-server --spec-draft-n-min, once \
                --draft-min)",
        level: Level::Context,
        domain: DRAFT_TOKENS,
        scale: Scale::Linear,
        receiver: Receiver::Server,
        follows: None,
        at_most: None,
        before: Some("0"),
        kwarg: KwargSpelling::Unavailable(NOT_IN_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Value {
            flag: "--spec-draft-n-min",
            env: Some("LLAMA_ARG_SPEC_DRAFT_N_MIN"),
        },
        needs: Needs::Anything,
        server_default_differs: false,
    };
    DRAFT_P_MIN = Knob {
        id: DRAFT_P_MIN,
        name: "draft_p_min",
        about: "the draft stops guessing below this probability, 0 to 1 (llama-server \
                --spec-draft-p-min)",
        level: Level::Context,
        domain: Domain::Text {
            read: lists::probability,
            expected: "a probability from 0 to 1",
        },
        scale: Scale::Category,
        receiver: Receiver::Server,
        follows: None,
        at_most: None,
        before: Some("0"),
        kwarg: KwargSpelling::Unavailable(NOT_IN_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Value {
            flag: "--spec-draft-p-min",
            env: Some("LLAMA_ARG_SPEC_DRAFT_P_MIN"),
        },
        needs: Needs::Anything,
        server_default_differs: false,
    };
    CONT_BATCHING = Knob {
        id: CONT_BATCHING,
        name: "cont_batching",
        about: "llama-server's continuous batching: a new request joins the running batch \
                instead of waiting for it (matters with n_parallel above 1)",
        level: Level::Context,
        domain: Domain::Bool,
        scale: Scale::Linear,
        receiver: Receiver::Server,
        follows: None,
        at_most: None,
        before: Some("true"),
        kwarg: KwargSpelling::Unavailable(NOT_IN_LLAMA_CPP_PYTHON),
        server: ServerSpelling::Switch {
            on: "-cb",
            off: "-nocb",
            env: Some("LLAMA_ARG_CONT_BATCHING"),
        },
        needs: Needs::Anything,
        server_default_differs: false,
    };
}
