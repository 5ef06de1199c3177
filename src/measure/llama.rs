//! A thin, safe layer over llama.cpp's C API (through llama-cpp-sys-2) for
//! the child process: model, context, batch, sampler chain, threadpool and
//! devices, each owning its llama.cpp object and freeing it on drop.
//!
//! The child talks to llama.cpp directly rather than through a higher-level
//! binding so that every field of llama.cpp's model and context parameters
//! can be set (extra buffer types, tensor overrides, devices, threadpools):
//! the knobs are exactly llama.cpp's, as llama-bench sets them.

use crate::protocol::Sampling;
use llama_cpp_sys_2 as sys;
use std::ffi::{CStr, CString, c_char};
use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;

pub type Token = sys::llama_token;

/// Initializes llama.cpp's backends once for the process.
pub fn init_backend() {
    // SAFETY: called once, before any other llama.cpp call of the child.
    unsafe { sys::llama_backend_init() }
}

pub fn supports_gpu_offload() -> bool {
    // SAFETY: a plain query.
    unsafe { sys::llama_supports_gpu_offload() }
}

pub fn supports_mmap() -> bool {
    // SAFETY: a plain query.
    unsafe { sys::llama_supports_mmap() }
}

/// A NUL-terminated string from llama.cpp, or "" for a null pointer.
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string that lives at least
/// as long as this call.
pub unsafe fn c_string(ptr: *const c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: as the caller promises.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .trim()
        .to_string()
}

/// A ggml backend device.
#[derive(Debug, Clone)]
pub struct Device {
    pub raw: sys::ggml_backend_dev_t,
    pub name: String,
    pub description: String,
    pub backend: String,
    pub kind: DeviceKind,
    pub memory_free: u64,
    pub memory_total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    Gpu,
    IntegratedGpu,
    Accelerator,
    Unknown,
}

impl DeviceKind {
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Gpu => "gpu",
            DeviceKind::IntegratedGpu => "igpu",
            DeviceKind::Accelerator => "accel",
            DeviceKind::Unknown => "unknown",
        }
    }

    pub fn is_gpu(self) -> bool {
        matches!(self, DeviceKind::Gpu | DeviceKind::IntegratedGpu)
    }
}

/// Every device llama.cpp's backends offer, in llama.cpp's order.
pub fn devices() -> Vec<Device> {
    // SAFETY: device handles are owned by the backend registry for the
    // process's lifetime; the props' strings live as long as the device.
    unsafe {
        (0..sys::ggml_backend_dev_count())
            .map(|i| {
                let dev = sys::ggml_backend_dev_get(i);
                let mut props: sys::ggml_backend_dev_props = std::mem::zeroed();
                sys::ggml_backend_dev_get_props(dev, &mut props);
                let reg = sys::ggml_backend_dev_backend_reg(dev);
                let kind = match props.type_ {
                    sys::GGML_BACKEND_DEVICE_TYPE_CPU => DeviceKind::Cpu,
                    sys::GGML_BACKEND_DEVICE_TYPE_GPU => DeviceKind::Gpu,
                    sys::GGML_BACKEND_DEVICE_TYPE_IGPU => DeviceKind::IntegratedGpu,
                    sys::GGML_BACKEND_DEVICE_TYPE_ACCEL => DeviceKind::Accelerator,
                    _ => DeviceKind::Unknown,
                };
                Device {
                    raw: dev,
                    name: c_string(props.name),
                    description: c_string(props.description),
                    backend: c_string(sys::ggml_backend_reg_name(reg)),
                    kind,
                    memory_free: props.memory_free as u64,
                    memory_total: props.memory_total as u64,
                }
            })
            .collect()
    }
}

/// The names of the CPU's extra buffer types (AMX, CPU_REPACK, ...): where
/// llama.cpp repacks weights when `use_extra_bufts` is on.
pub fn cpu_extra_buffer_types() -> Vec<String> {
    // SAFETY: the CPU backend's registry and its proc address live for the
    // process; the returned list is NULL-terminated.
    unsafe {
        let Some(cpu) = devices().into_iter().find(|d| d.kind == DeviceKind::Cpu) else {
            return Vec::new();
        };
        let reg = sys::ggml_backend_dev_backend_reg(cpu.raw);
        let get = sys::ggml_backend_reg_get_proc_address(
            reg,
            c"ggml_backend_dev_get_extra_bufts".as_ptr(),
        );
        if get.is_null() {
            return Vec::new();
        }
        let get: unsafe extern "C" fn(
            sys::ggml_backend_dev_t,
        ) -> *mut sys::ggml_backend_buffer_type_t = std::mem::transmute(get);
        let mut list = get(cpu.raw);
        let mut names = Vec::new();
        while !list.is_null() && !(*list).is_null() {
            names.push(c_string(sys::ggml_backend_buft_name(*list)));
            list = list.add(1);
        }
        names
    }
}

/// Buffer types tensors can be placed in, by name: each device's own (as
/// llama.cpp's `-ot` parser lists them: "CPU", "CUDA0", ...).
pub fn buffer_types() -> Vec<(String, sys::ggml_backend_buffer_type_t)> {
    devices()
        .iter()
        .filter_map(|d| {
            // SAFETY: the device lives for the process; its default buffer
            // type and that type's name too.
            let buft = unsafe { sys::ggml_backend_dev_buffer_type(d.raw) };
            (!buft.is_null())
                .then(|| (unsafe { c_string(sys::ggml_backend_buft_name(buft)) }, buft))
        })
        .collect()
}

/// Model parameters with what their pointers point into: tensor overrides
/// and devices by name (resolved against llama.cpp's when the model is
/// loaded) and the tensor split.
pub struct ModelParams {
    pub raw: sys::llama_model_params,
    /// Tensor-name patterns and the names of their buffer types (llama.cpp's
    /// `-ot`), first match wins.
    overrides: Vec<(String, String)>,
    /// Devices to offload to by name; `None`: llama.cpp's default (all).
    devices: Option<Vec<String>>,
    /// Proportions per device; empty: llama.cpp's default (free memory).
    tensor_split: Vec<f32>,
}

impl Default for ModelParams {
    fn default() -> Self {
        ModelParams {
            // SAFETY: a plain struct of defaults.
            raw: unsafe { sys::llama_model_default_params() },
            overrides: Vec::new(),
            devices: None,
            tensor_split: Vec::new(),
        }
    }
}

impl ModelParams {
    /// Keeps tensors whose name matches `pattern` (a regular expression)
    /// in the buffer type called `buffer_type`.
    pub fn override_tensors(&mut self, pattern: &str, buffer_type: &str) {
        self.overrides
            .push((pattern.to_string(), buffer_type.to_string()));
    }

    /// Offloads only to these devices (an empty list: none).
    pub fn use_devices(&mut self, names: Vec<String>) {
        self.devices = Some(names);
    }

    pub fn split_tensors(&mut self, proportions: Vec<f32>) {
        self.tensor_split = proportions;
    }

    /// The tensor overrides, pattern and buffer type, in order.
    pub fn overrides(&self) -> &[(String, String)] {
        &self.overrides
    }
}

fn resolve_overrides(
    overrides: &[(String, String)],
) -> Result<(Vec<CString>, Vec<sys::llama_model_tensor_buft_override>), String> {
    if overrides.is_empty() {
        // Nothing to resolve: llama.cpp gets no list (see `resolved`).
        return Ok((Vec::new(), Vec::new()));
    }
    let available = buffer_types();
    let mut patterns = Vec::with_capacity(overrides.len());
    let mut bufts = Vec::with_capacity(overrides.len());
    for (pattern, name) in overrides {
        let buft = available
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                let names: Vec<&str> = available.iter().map(|(n, _)| n.as_str()).collect();
                format!(
                    "llama.cpp has no buffer type {name:?} for the tensors {pattern:?} (it has: {})",
                    names.join(", ")
                )
            })?;
        patterns.push(
            CString::new(pattern.as_str())
                .map_err(|_| format!("the pattern {pattern:?} contains a NUL byte"))?,
        );
        bufts.push(buft);
    }
    let list = patterns
        .iter()
        .zip(bufts)
        .map(|(pattern, buft)| sys::llama_model_tensor_buft_override {
            pattern: pattern.as_ptr(),
            buft,
        })
        .chain(std::iter::once(sys::llama_model_tensor_buft_override {
            pattern: std::ptr::null(),
            buft: std::ptr::null_mut(),
        }))
        .collect();
    Ok((patterns, list))
}

fn resolve_devices(names: &[String]) -> Result<Vec<sys::ggml_backend_dev_t>, String> {
    let available = devices();
    let mut list = Vec::with_capacity(names.len() + 1);
    for name in names {
        let device = available
            .iter()
            .find(|d| &d.name == name && d.kind != DeviceKind::Cpu)
            .ok_or_else(|| {
                let offload: Vec<&str> = available
                    .iter()
                    .filter(|d| d.kind != DeviceKind::Cpu)
                    .map(|d| d.name.as_str())
                    .collect();
                format!(
                    "llama.cpp has no device {name:?} to offload to (it has: {})",
                    if offload.is_empty() {
                        "none, a CPU-only build".to_string()
                    } else {
                        offload.join(", ")
                    }
                )
            })?;
        list.push(device.raw);
    }
    list.push(std::ptr::null_mut());
    Ok(list)
}

/// What a model's parameters pointed into when it was loaded, kept as
/// long as the model (llama.cpp keeps the parameter struct).
struct LoadStorage {
    _patterns: Vec<CString>,
    _overrides: Vec<sys::llama_model_tensor_buft_override>,
    _devices: Option<Vec<sys::ggml_backend_dev_t>>,
    _tensor_split: Vec<f32>,
}

/// A loaded model.
pub struct Model {
    ptr: NonNull<sys::llama_model>,
    _storage: LoadStorage,
}

impl ModelParams {
    /// llama.cpp's parameter struct with its pointers set (overrides,
    /// devices and split resolved by name), and what they point into,
    /// which must outlive every use of the struct.
    fn resolved(&self) -> Result<(sys::llama_model_params, LoadStorage), String> {
        let (patterns, overrides) = resolve_overrides(&self.overrides)?;
        let devices = self.devices.as_deref().map(resolve_devices).transpose()?;
        // SAFETY: a plain query.
        let max_devices = unsafe { sys::llama_max_devices() };
        if self.tensor_split.len() > max_devices {
            return Err(format!(
                "the tensor split has {} proportions, but this llama.cpp takes at most {max_devices}",
                self.tensor_split.len()
            ));
        }
        let mut tensor_split = self.tensor_split.clone();
        tensor_split.resize(max_devices, 0.0);
        let mut raw = self.raw;
        if !self.overrides.is_empty() {
            raw.tensor_buft_overrides = overrides.as_ptr();
        }
        if let Some(devices) = &devices {
            raw.devices = devices.as_ptr().cast_mut();
        }
        if !self.tensor_split.is_empty() {
            raw.tensor_split = tensor_split.as_ptr();
        }
        // Moving the vectors into the storage keeps their heap buffers,
        // which the pointers point into, where they are.
        let storage = LoadStorage {
            _patterns: patterns,
            _overrides: overrides,
            _devices: devices,
            _tensor_split: tensor_split,
        };
        Ok((raw, storage))
    }

    /// Calls `f` with llama.cpp's parameter struct, its pointers valid for
    /// the call.
    pub fn with_raw<R>(
        &self,
        f: impl FnOnce(&mut sys::llama_model_params) -> R,
    ) -> Result<R, String> {
        let (mut raw, _storage) = self.resolved()?;
        Ok(f(&mut raw))
    }
}

impl Model {
    pub fn load(path: &Path, params: &ModelParams) -> Result<Model, String> {
        let c_path = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| format!("the path {} contains a NUL byte", path.display()))?;
        let (raw, storage) = params.resolved()?;
        // SAFETY: the path and what the struct points into (kept with the
        // model) outlive the call.
        let ptr = unsafe { sys::llama_model_load_from_file(c_path.as_ptr(), raw) };
        NonNull::new(ptr)
            .map(|ptr| Model {
                ptr,
                _storage: storage,
            })
            .ok_or_else(|| "llama.cpp could not load the model".to_string())
    }

    fn raw(&self) -> *mut sys::llama_model {
        self.ptr.as_ptr()
    }

    pub fn vocab(&self) -> Vocab<'_> {
        // SAFETY: the vocabulary lives as long as the model.
        Vocab {
            ptr: unsafe { sys::llama_model_get_vocab(self.raw()) },
            _model: PhantomData,
        }
    }

    pub fn n_layer(&self) -> u32 {
        // SAFETY: plain getters of a loaded model.
        unsafe { sys::llama_model_n_layer(self.raw()) }.max(0) as u32
    }

    pub fn n_params(&self) -> u64 {
        unsafe { sys::llama_model_n_params(self.raw()) }
    }

    pub fn size(&self) -> u64 {
        unsafe { sys::llama_model_size(self.raw()) }
    }

    /// A metadata value of the GGUF header, as text.
    pub fn meta(&self, key: &str) -> Option<String> {
        let key = CString::new(key).ok()?;
        let mut buf = vec![0 as c_char; 256];
        // SAFETY: the buffer's size is passed; llama.cpp NUL-terminates.
        let n = unsafe {
            sys::llama_model_meta_val_str(self.raw(), key.as_ptr(), buf.as_mut_ptr(), buf.len())
        };
        // SAFETY: llama.cpp wrote a NUL-terminated string into the buffer.
        (n >= 0).then(|| unsafe { c_string(buf.as_ptr()) })
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the model was loaded by llama.cpp and is freed once.
        unsafe { sys::llama_model_free(self.raw()) }
    }
}

/// A model's vocabulary.
#[derive(Clone, Copy)]
pub struct Vocab<'m> {
    ptr: *const sys::llama_vocab,
    _model: PhantomData<&'m Model>,
}

impl Vocab<'_> {
    pub fn n_tokens(&self) -> i32 {
        // SAFETY: plain getters of a live vocabulary.
        unsafe { sys::llama_vocab_n_tokens(self.ptr) }
    }

    /// BOS, when the model adds one to each sequence.
    pub fn bos_if_added(&self) -> Option<Token> {
        unsafe { sys::llama_vocab_get_add_bos(self.ptr).then(|| sys::llama_vocab_bos(self.ptr)) }
    }

    /// The tokens of `text`, as llama.cpp's `common_tokenize(..., add_special,
    /// parse_special = false)`.
    pub fn tokenize(&self, text: &[u8], add_special: bool) -> Result<Vec<Token>, String> {
        let len = i32::try_from(text.len()).map_err(|_| "the text is too long".to_string())?;
        let mut tokens = vec![0; text.len() + 2];
        for _ in 0..2 {
            // SAFETY: the buffer's capacity is passed as n_tokens_max.
            let n = unsafe {
                sys::llama_tokenize(
                    self.ptr,
                    text.as_ptr().cast(),
                    len,
                    tokens.as_mut_ptr(),
                    tokens.len() as i32,
                    add_special,
                    false,
                )
            };
            if n >= 0 {
                tokens.truncate(n as usize);
                return Ok(tokens);
            }
            tokens.resize((-n) as usize, 0);
        }
        Err("llama.cpp could not tokenize the text".into())
    }
}

/// A ggml threadpool (llama-bench attaches one before warming up).
pub struct Threadpool {
    ptr: NonNull<sys::ggml_threadpool>,
}

impl Threadpool {
    pub fn new(params: &mut sys::ggml_threadpool_params) -> Result<Threadpool, String> {
        // SAFETY: the parameters are read during the call.
        let ptr = unsafe { sys::ggml_threadpool_new(params) };
        NonNull::new(ptr)
            .map(|ptr| Threadpool { ptr })
            .ok_or_else(|| "ggml could not create a threadpool".into())
    }

    /// Default parameters for `n_threads` threads.
    pub fn params(n_threads: i32) -> sys::ggml_threadpool_params {
        // SAFETY: a plain struct of defaults.
        unsafe { sys::ggml_threadpool_params_default(n_threads) }
    }
}

impl Drop for Threadpool {
    fn drop(&mut self) {
        // SAFETY: created by ggml_threadpool_new, freed once, after the
        // context that used it (contexts borrow their threadpools).
        unsafe { sys::ggml_threadpool_free(self.ptr.as_ptr()) }
    }
}

/// A context over a model, with the threadpools attached to it (freed
/// after the context).
pub struct Context<'m> {
    ptr: NonNull<sys::llama_context>,
    pools: Vec<Threadpool>,
    _model: PhantomData<&'m Model>,
}

impl<'m> Context<'m> {
    pub fn new(model: &'m Model, params: sys::llama_context_params) -> Result<Context<'m>, String> {
        // SAFETY: the model outlives the context (the lifetime says so).
        let ptr = unsafe { sys::llama_init_from_model(model.raw(), params) };
        NonNull::new(ptr)
            .map(|ptr| Context {
                ptr,
                pools: Vec::new(),
                _model: PhantomData,
            })
            .ok_or_else(|| "llama.cpp could not create the context".to_string())
    }

    fn raw(&self) -> *mut sys::llama_context {
        self.ptr.as_ptr()
    }

    pub fn n_ctx(&self) -> u32 {
        // SAFETY: plain getters of a live context.
        unsafe { sys::llama_n_ctx(self.raw()) }
    }

    pub fn n_batch(&self) -> u32 {
        unsafe { sys::llama_n_batch(self.raw()) }
    }

    pub fn n_ubatch(&self) -> u32 {
        unsafe { sys::llama_n_ubatch(self.raw()) }
    }

    /// Runs single-token graphs on `pool` and prompts on `batch_pool`
    /// (`pool` too when `None`), as llama-bench attaches its threadpool.
    pub fn attach_threadpools(&mut self, pool: Threadpool, batch_pool: Option<Threadpool>) {
        let batch = batch_pool.as_ref().unwrap_or(&pool).ptr.as_ptr();
        // SAFETY: the pools are kept in the context and freed after it.
        unsafe { sys::llama_attach_threadpool(self.raw(), pool.ptr.as_ptr(), batch) }
        self.pools.push(pool);
        self.pools.extend(batch_pool);
    }

    /// Decodes `batch`; the error is llama.cpp's return code.
    pub fn decode(&mut self, batch: &Batch) -> Result<(), i32> {
        // SAFETY: the batch's arrays hold `n_tokens` valid entries.
        match unsafe { sys::llama_decode(self.raw(), batch.raw) } {
            0 => Ok(()),
            code => Err(code),
        }
    }

    pub fn synchronize(&mut self) {
        // SAFETY: waits for the context's pending work.
        unsafe { sys::llama_synchronize(self.raw()) }
    }

    /// The logits of the `i`-th token of the last batch that asked for them.
    pub fn logits(&self, i: i32, n_vocab: usize) -> &[f32] {
        // SAFETY: llama.cpp returns n_vocab floats for a token with output
        // (it aborts for one without), valid until the next decode.
        unsafe {
            let ptr = sys::llama_get_logits_ith(self.raw(), i);
            std::slice::from_raw_parts(ptr, n_vocab)
        }
    }

    /// Drops every cell of the KV cache without zeroing its memory, as
    /// llama-bench's `llama_memory_clear(mem, false)`.
    pub fn clear_memory(&mut self) {
        // SAFETY: the context's memory is live.
        unsafe { sys::llama_memory_clear(sys::llama_get_memory(self.raw()), false) }
    }

    /// Tokens each sequence can hold: n_ctx, or n_ctx / n_seq_max when the
    /// sequences do not share one unified cache.
    pub fn n_ctx_seq(&self) -> u32 {
        // SAFETY: a plain getter of a live context.
        unsafe { sys::llama_n_ctx_seq(self.raw()) }
    }

    /// The context's state, the KV cache of every sequence among it, to
    /// put back with [`restore_state`](Self::restore_state): how a test
    /// starts again and again from the same filled cache, as llama-bench
    /// keeps its depth (it saves one sequence; this saves them all). It
    /// goes to a file in the child's scratch folder, not to memory: a copy
    /// of the cache in the child's memory would count in its peak RSS,
    /// which a served configuration does not hold (llama.cpp writes and
    /// reads it a tensor at a time).
    pub fn save_state(&mut self) -> Result<SavedState, String> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = super::scratch_dir().join(format!("kv-{}-{n}.state", std::process::id()));
        let c_path = path_to_c(&path)?;
        // SAFETY: a live context and a NUL-terminated path; no tokens.
        let saved =
            unsafe { sys::llama_state_save_file(self.raw(), c_path.as_ptr(), std::ptr::null(), 0) };
        if !saved {
            let _ = std::fs::remove_file(&path);
            return Err(format!(
                "llama.cpp could not save the filled KV cache to {} (is the disk full?)",
                path.display()
            ));
        }
        Ok(SavedState { path })
    }

    /// Puts back a state [`save_state`](Self::save_state) took.
    pub fn restore_state(&mut self, state: &SavedState) -> Result<(), String> {
        let c_path = path_to_c(&state.path)?;
        let mut tokens = 0usize;
        // SAFETY: a live context, a NUL-terminated path; the file holds no
        // tokens, so none are written to the (empty) token buffer.
        let read = unsafe {
            sys::llama_state_load_file(
                self.raw(),
                c_path.as_ptr(),
                std::ptr::null_mut(),
                0,
                &mut tokens,
            )
        };
        if read {
            Ok(())
        } else {
            Err("llama.cpp could not restore the filled KV cache".into())
        }
    }

    /// Removes sequence `seq`'s cells from position `from` on.
    pub fn remove_from(&mut self, seq: i32, from: i32) {
        // SAFETY: the context's memory is live; removing cannot fail for a
        // plain KV cache.
        unsafe {
            sys::llama_memory_seq_rm(sys::llama_get_memory(self.raw()), seq, from, -1);
        }
    }
}

/// A context's state saved on disk ([`Context::save_state`]); the file is
/// removed when this is dropped.
pub struct SavedState {
    path: std::path::PathBuf,
}

impl Drop for SavedState {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn path_to_c(path: &std::path::Path) -> Result<std::ffi::CString, String> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{} has a NUL byte", path.display()))
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: created by llama_init_from_model, freed once.
        unsafe { sys::llama_free(self.raw()) }
    }
}

/// A batch of tokens for one decode call.
pub struct Batch {
    raw: sys::llama_batch,
    capacity: usize,
}

impl Batch {
    pub fn new(capacity: usize, n_seq_max: usize) -> Batch {
        // SAFETY: allocates arrays for `capacity` tokens.
        let raw = unsafe { sys::llama_batch_init(capacity as i32, 0, n_seq_max as i32) };
        Batch { raw, capacity }
    }

    pub fn clear(&mut self) {
        self.raw.n_tokens = 0;
    }

    pub fn len(&self) -> usize {
        self.raw.n_tokens as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a token at `pos` of sequence `seq`; `logits` asks for its
    /// output.
    pub fn add(&mut self, token: Token, pos: i32, seq: i32, logits: bool) -> Result<(), String> {
        let i = self.raw.n_tokens as usize;
        if i >= self.capacity {
            return Err(format!("the batch holds only {} tokens", self.capacity));
        }
        // SAFETY: `i` is within the arrays allocated for `capacity` tokens,
        // and each token's sequence list has room for one id.
        unsafe {
            *self.raw.token.add(i) = token;
            *self.raw.pos.add(i) = pos;
            *self.raw.n_seq_id.add(i) = 1;
            *(*self.raw.seq_id.add(i)) = seq;
            *self.raw.logits.add(i) = i8::from(logits);
        }
        self.raw.n_tokens += 1;
        Ok(())
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        // SAFETY: allocated by llama_batch_init, freed once.
        unsafe { sys::llama_batch_free(self.raw) }
    }
}

/// A llama.cpp sampler chain.
pub struct Sampler {
    ptr: NonNull<sys::llama_sampler>,
}

impl Sampler {
    /// llama-cpp-python's chain: penalties, then top-k, typical (off),
    /// top-p, min-p, temperature and a seeded draw; greedy at temperature 0.
    pub fn chain(n_vocab: i32, s: &Sampling, seed: u32) -> Sampler {
        // SAFETY: each sampler is handed to the chain, which owns and frees
        // it.
        unsafe {
            let chain = sys::llama_sampler_chain_init(sys::llama_sampler_chain_default_params());
            let add = |smpl| sys::llama_sampler_chain_add(chain, smpl);
            add(sys::llama_sampler_init_penalties(
                n_vocab,
                s.repeat_last_n,
                s.repeat_penalty,
                0.0,
                0.0,
            ));
            if s.temperature <= 0.0 {
                add(sys::llama_sampler_init_greedy());
            } else {
                add(sys::llama_sampler_init_top_k(s.top_k));
                add(sys::llama_sampler_init_typical(1.0, 1));
                add(sys::llama_sampler_init_top_p(s.top_p, 1));
                add(sys::llama_sampler_init_min_p(s.min_p, 1));
                add(sys::llama_sampler_init_temp(s.temperature));
                add(sys::llama_sampler_init_dist(seed));
            }
            Sampler {
                ptr: NonNull::new(chain).expect("llama.cpp allocates sampler chains"),
            }
        }
    }

    /// Samples the next token from the `i`-th output of the last batch, and
    /// accepts it (the penalties remember it).
    pub fn sample(&mut self, ctx: &mut Context, i: i32) -> Token {
        // SAFETY: the context is live and output `i` exists.
        unsafe {
            let token = sys::llama_sampler_sample(self.ptr.as_ptr(), ctx.raw(), i);
            sys::llama_sampler_accept(self.ptr.as_ptr(), token);
            token
        }
    }

    pub fn reset(&mut self) {
        // SAFETY: the chain is live.
        unsafe { sys::llama_sampler_reset(self.ptr.as_ptr()) }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        // SAFETY: the chain frees the samplers it holds.
        unsafe { sys::llama_sampler_free(self.ptr.as_ptr()) }
    }
}

/// Whether every logit is a finite number (a broken kernel can return NaN
/// or Inf instead of crashing).
pub fn finite(logits: &[f32]) -> bool {
    logits.iter().all(|x| x.is_finite())
}
