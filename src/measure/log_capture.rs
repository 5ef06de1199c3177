//! llama.cpp's log in a trial child: every line is passed through to stderr
//! (which the parent saves as the trial's log) and also read here for the
//! facts llama.cpp only states in its log — layers offloaded, what
//! `flash_attn = auto` resolved to — and for its error lines, which become the
//! reason of a failed trial.

use std::collections::VecDeque;
use std::ffi::{CStr, c_char, c_void};
use std::io::Write;
use std::sync::Mutex;

const KEPT_PROBLEM_LINES: usize = 12;

#[derive(Debug, Default)]
pub struct Capture {
    partial: String,
    partial_level: u32,
    /// Recent WARN and ERROR lines, oldest first.
    pub problems: VecDeque<String>,
    /// The first ERROR line: usually the most specific reason.
    pub first_error: Option<String>,
    /// `(offloaded, total)` from "offloaded X/Y layers to GPU".
    pub offloaded: Option<(u32, u32)>,
    /// What llama.cpp decided for `flash_attn = auto`.
    pub flash_attn_auto: Option<bool>,
    /// The buffers the model's weights went to, with their sizes in MiB
    /// ("load_tensors: AMX model buffer size = 51.31 MiB").
    pub model_buffers: Vec<crate::protocol::BufferUse>,
    /// Tensors a tensor override placed, with the buffer type they went to
    /// (llama.cpp's debug line "tensor blk.0.ffn_up_exps.weight (1 MiB f16)
    /// buffer type overridden to CPU", kept in the trial's log too).
    pub overridden: Vec<(String, String)>,
}

static CAPTURE: Mutex<Option<Capture>> = Mutex::new(None);

const LEVEL_DEBUG: u32 = llama_cpp_sys_2::GGML_LOG_LEVEL_DEBUG;
const LEVEL_WARN: u32 = llama_cpp_sys_2::GGML_LOG_LEVEL_WARN;
const LEVEL_ERROR: u32 = llama_cpp_sys_2::GGML_LOG_LEVEL_ERROR;
const LEVEL_CONT: u32 = llama_cpp_sys_2::GGML_LOG_LEVEL_CONT;

impl Capture {
    /// Takes a piece of log text; returns whether it belongs in the trial's
    /// log (debug messages, and their continuations, do not).
    fn feed(&mut self, level: u32, text: &str) -> bool {
        if level != LEVEL_CONT {
            self.partial_level = level;
        }
        if self.partial_level == LEVEL_DEBUG {
            if let Some(placed) = overridden_tensor(text) {
                self.overridden.push(placed);
                return true;
            }
            return false;
        }
        self.partial.push_str(text);
        while let Some(end) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=end).collect();
            self.line(self.partial_level, line.trim_end());
        }
        true
    }

    fn line(&mut self, level: u32, line: &str) {
        if let Some(layers) = crate::llama_log::offloaded(line) {
            self.offloaded = Some(layers);
        }
        if let Some(buffer) = crate::llama_log::model_buffer(line) {
            self.model_buffers.push(buffer);
        }
        // "auto" resolved by probing, or switched on because a quantized V
        // cache requires it.
        if let Some(on) = crate::llama_log::flash_attn_resolved(line) {
            self.flash_attn_auto = Some(on);
        }
        if level == LEVEL_WARN || level == LEVEL_ERROR {
            if self.problems.len() == KEPT_PROBLEM_LINES {
                self.problems.pop_front();
            }
            self.problems.push_back(line.to_string());
            if level == LEVEL_ERROR && self.first_error.is_none() {
                self.first_error = Some(line.to_string());
            }
        }
    }
}

/// The tensor and buffer type of llama.cpp's "tensor NAME (SIZE TYPE) buffer
/// type overridden to BUFT" line.
fn overridden_tensor(text: &str) -> Option<(String, String)> {
    let rest = text.trim().strip_prefix("tensor ")?;
    let (tensor, rest) = rest.split_once(' ')?;
    let buft = rest.split(" buffer type overridden to ").nth(1)?;
    Some((tensor.to_string(), buft.trim().to_string()))
}

unsafe extern "C" fn tee(
    level: llama_cpp_sys_2::ggml_log_level,
    text: *const c_char,
    _: *mut c_void,
) {
    if text.is_null() {
        return;
    }
    // SAFETY: llama.cpp passes a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    let keep = match CAPTURE.lock() {
        Ok(mut guard) => guard
            .as_mut()
            .is_none_or(|c| c.feed(level, &String::from_utf8_lossy(bytes))),
        Err(_) => true,
    };
    if keep {
        let _ = std::io::stderr().write_all(bytes);
    }
}

/// Routes llama.cpp's and ggml's log through the capture.
pub fn install() {
    *CAPTURE.lock().unwrap() = Some(Capture::default());
    // SAFETY: `tee` has the callback's signature and lives for the program.
    unsafe {
        llama_cpp_sys_2::llama_log_set(Some(tee), std::ptr::null_mut());
        llama_cpp_sys_2::ggml_log_set(Some(tee), std::ptr::null_mut());
    }
}

/// Reads the capture.
pub fn with<R>(f: impl FnOnce(&Capture) -> R) -> R {
    let guard = CAPTURE.lock().unwrap();
    f(guard.as_ref().unwrap_or(&Capture::default()))
}

/// Why something failed, in llama.cpp's words: `what: <llama.cpp's first
/// error line>`, then its recent warnings and errors, then `detail` (the
/// binding's own, usually vaguer, error).
pub fn failure_reason(what: &str, detail: &str) -> String {
    with(|c| {
        let headline = c
            .first_error
            .as_deref()
            .or(c.problems.back().map(String::as_str));
        match headline {
            None => format!("{what}: {detail}"),
            Some(headline) => {
                let lines: Vec<&str> = c.problems.iter().map(String::as_str).collect();
                format!(
                    "{what}: {headline}\nllama.cpp says:\n{}\n({detail})",
                    lines.join("\n")
                )
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: u32 = llama_cpp_sys_2::GGML_LOG_LEVEL_INFO;

    #[test]
    fn reads_offload_and_flash_attention_lines() {
        let mut c = Capture::default();
        c.feed(INFO, "load_tensors: offloaded 31/31 layers to GPU\n");
        c.feed(INFO, "llama_context: Flash Attention ena");
        c.feed(LEVEL_CONT, "bled\n");
        assert_eq!(c.offloaded, Some((31, 31)));
        assert_eq!(c.flash_attn_auto, Some(true));
        c.feed(
            LEVEL_WARN,
            "llama_context: Flash Attention not supported, set to disabled\n",
        );
        assert_eq!(c.flash_attn_auto, Some(false));
        let mut forced = Capture::default();
        forced.feed(INFO, "llama_init_from_model: enabling flash_attn since it is required for quantized V cache\n");
        assert_eq!(forced.flash_attn_auto, Some(true));
    }

    #[test]
    fn reads_where_the_weights_went() {
        let mut c = Capture::default();
        c.feed(
            INFO,
            "load_tensors:          AMX model buffer size =    51.31 MiB\n",
        );
        c.feed(
            INFO,
            "load_tensors:   CPU_Mapped model buffer size =    93.80 MiB\n",
        );
        let names: Vec<&str> = c.model_buffers.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["AMX", "CPU_Mapped"]);
    }

    #[test]
    fn debug_messages_and_their_continuations_are_dropped() {
        let mut c = Capture::default();
        assert!(!c.feed(LEVEL_DEBUG, "graph_reserve: reserving"));
        assert!(!c.feed(LEVEL_CONT, " more\n"));
        assert!(c.feed(INFO, "load_tensors: offloaded 0/31 layers to GPU\n"));
        assert_eq!(c.offloaded, Some((0, 31)));
    }

    #[test]
    fn tensors_placed_by_an_override_are_read_and_kept_in_the_log() {
        let mut c = Capture::default();
        assert!(c.feed(
            LEVEL_DEBUG,
            "tensor blk.1.ffn_up_exps.weight (0 MiB f16) buffer type overridden to CPU\n"
        ));
        assert_eq!(
            c.overridden,
            [("blk.1.ffn_up_exps.weight".to_string(), "CPU".to_string())]
        );
    }

    #[test]
    fn keeps_recent_problem_lines_only() {
        let mut c = Capture::default();
        c.feed(INFO, "fine\n");
        for i in 0..20 {
            c.feed(LEVEL_ERROR, &format!("error {i}\n"));
        }
        assert_eq!(c.problems.len(), KEPT_PROBLEM_LINES);
        assert_eq!(c.problems.back().unwrap(), "error 19");
        assert_eq!(c.first_error.as_deref(), Some("error 0"));
        assert!(!c.problems.contains(&"fine".to_string()));
    }
}
