//! What a child's log says, read by both sides: the line a child's crash
//! handler writes before it dies (`measure::crash` writes it,
//! `runner::crash_site` reads it), and llama.cpp's lines saying where the
//! weights went and how many layers it offloaded (in a trial's log and in
//! the log of the app's runtime alike), and llama-server's thread count.

use crate::protocol::BufferUse;

/// The crash report line starts with this; then the signal, the
/// executable's load bias and the raw frame addresses, all in hex.
pub const CRASH_MARKER: &str = "llama-sweep: fatal signal";

/// The last crash report in a log: (signal, load bias, frames).
pub fn crash_report(log: &str) -> Option<(i32, usize, Vec<usize>)> {
    let line = log.lines().rev().find(|l| l.starts_with(CRASH_MARKER))?;
    let rest = line.strip_prefix(CRASH_MARKER)?.trim();
    let hex = |s: &str| usize::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok();
    let mut parts = rest.split(';');
    let signal = hex(parts.next()?)? as i32;
    let bias = hex(parts.next()?.trim().strip_prefix("load bias")?)?;
    let frames = parts
        .next()?
        .trim()
        .strip_prefix("frames")?
        .split_whitespace()
        .filter_map(hex)
        .collect();
    Some((signal, bias, frames))
}

/// A buffer of weights from one log line (`load_tensors: AMX model buffer
/// size = 51.31 MiB`).
pub fn model_buffer(line: &str) -> Option<BufferUse> {
    let (_, rest) = line.split_once("load_tensors:")?;
    let (name, size) = rest.split_once(" model buffer size = ")?;
    let mib = size.trim().strip_suffix("MiB")?.trim().parse().ok()?;
    Some(BufferUse {
        name: name.trim().to_string(),
        mib,
    })
}

/// `(offloaded, total)` from one log line (`load_tensors: offloaded 31/31
/// layers to GPU`; llama.cpp writes it only where it can offload).
pub fn offloaded(line: &str) -> Option<(u32, u32)> {
    let fraction = line
        .split("offloaded ")
        .nth(1)?
        .trim_end()
        .strip_suffix(" layers to GPU")?;
    let (a, b) = fraction.split_once('/')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// What `flash_attn = auto` resolved to, from one log line: on when
/// llama.cpp probed it or a quantized V cache needs it, off when the
/// device cannot.
pub fn flash_attn_resolved(line: &str) -> Option<bool> {
    if line.contains("Flash Attention enabled") || line.contains("enabling flash_attn since") {
        Some(true)
    } else if line.contains("Flash Attention not supported") {
        Some(false)
    } else {
        None
    }
}

/// Why llama-server runs without the speculative decoding it was asked
/// for (it goes on without it, and only its log says so: `load_model:
/// failed to initialize speculative decoding context: draft model vocab
/// type must match target model ...`).
pub fn speculation_failure(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let at = line.find("failed to initialize speculative")?;
        Some(line[at..].trim().to_string())
    })
}

/// A size of the first context a log creates (`llama_context: n_ctx
/// = 4096`; `key` is `n_ctx`, `n_batch` or `n_ubatch`): the target's, where
/// a draft model's context follows it.
pub fn context_size(log: &str, key: &str) -> Option<u32> {
    log.lines().find_map(|line| {
        let rest = line.split("llama_context: ").nth(1)?.trim_start();
        let value = rest.strip_prefix(key)?.trim_start().strip_prefix('=')?;
        value.trim().parse().ok()
    })
}

/// The last layer count a log states.
pub fn offloaded_layers(log: &str) -> Option<(u32, u32)> {
    log.lines().rev().find_map(offloaded)
}

/// The generation threads a llama.cpp tool's log states: `system_info:
/// n_threads = 2 (n_threads_batch = 2) / 2 | ...` or, in llama-server's,
/// `llama threadpool init, n_threads = 2`.
pub fn threads_in_log(log: &str) -> Option<i32> {
    log.lines().rev().find_map(|line| {
        let rest = line
            .split("system_info: n_threads = ")
            .nth(1)
            .or_else(|| line.split("threadpool init, n_threads = ").nth(1))?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Every buffer of weights a log names.
pub fn model_buffers(log: &str) -> Vec<BufferUse> {
    log.lines().filter_map(model_buffer).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_speculation_that_failed_is_read_from_the_servers_log() {
        let log = "0.00.576.558 E spec common_specu: the target and draft vocabs are not compatible\n\
                   0.00.577.853 E srv    load_model: failed to initialize speculative decoding \
                   context: draft model vocab type must match target model to use speculation\n";
        assert_eq!(
            speculation_failure(log).unwrap(),
            "failed to initialize speculative decoding context: draft model vocab type must \
             match target model to use speculation"
        );
        assert_eq!(
            speculation_failure("common_speculative_init_result: loading draft"),
            None
        );
    }

    #[test]
    fn the_target_context_sizes_are_read_not_the_drafts() {
        let log = "llama_context: constructing llama_context\n\
                   llama_context: n_seq_max     = 2\n\
                   llama_context: n_ctx         = 2048\n\
                   llama_context: n_ctx_seq     = 1024\n\
                   llama_context: n_batch       = 512\n\
                   llama_context: n_ubatch      = 256\n\
                   llama_context: n_ctx         = 4096\n";
        assert_eq!(context_size(log, "n_ctx"), Some(2048));
        assert_eq!(context_size(log, "n_batch"), Some(512));
        assert_eq!(context_size(log, "n_ubatch"), Some(256));
        assert_eq!(context_size("nothing", "n_ctx"), None);
        assert_eq!(
            flash_attn_resolved("llama_context: Flash Attention enabled"),
            Some(true)
        );
        assert_eq!(flash_attn_resolved("n_ctx = 1"), None);
    }

    #[test]
    fn crash_reports_and_buffer_lines_are_read() {
        let log = format!("x\n{CRASH_MARKER} 0xb; load bias 0x5000; frames 0x5100 0x6200\n");
        assert_eq!(crash_report(&log), Some((11, 0x5000, vec![0x5100, 0x6200])));
        assert_eq!(crash_report("no crash here"), None);
        let log = "load_tensors:          AMX model buffer size =    51.31 MiB\n\
                   load_tensors:   CPU_Mapped model buffer size =    93.80 MiB\nother\n";
        let buffers = model_buffers(log);
        assert_eq!(buffers.len(), 2);
        assert_eq!((buffers[0].name.as_str(), buffers[0].mib), ("AMX", 51.31));
        assert_eq!(
            offloaded_layers("load_tensors: offloaded 20/31 layers to GPU\nx\n"),
            Some((20, 31))
        );
        assert_eq!(offloaded_layers(log), None);
        assert_eq!(
            threads_in_log(
                "main: x\nsystem_info: n_threads = 1 (n_threads_batch = 2) / 2 | CPU : SSE3 = 1 |\n"
            ),
            Some(1)
        );
        assert_eq!(
            threads_in_log(
                "0.00.172.214 I cmn          init: llama threadpool init, n_threads = 2\n"
            ),
            Some(2)
        );
    }
}
