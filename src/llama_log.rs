//! What a child's log says, read by both sides: the line a child's crash
//! handler writes before it dies (`measure::crash` writes it,
//! `runner::crash_site` reads it), and llama.cpp's lines saying where the
//! weights went.

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

/// Every buffer of weights a log names.
pub fn model_buffers(log: &str) -> Vec<BufferUse> {
    log.lines().filter_map(model_buffer).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
