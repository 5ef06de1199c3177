//! Where a child died: a handler for the fatal signals (SIGSEGV, SIGBUS,
//! SIGILL, SIGFPE, SIGABRT) writes the raw return addresses of the crashed
//! thread and the executable's load address to stderr — the trial's log —
//! then lets the signal kill the process as it would have. The parent turns
//! the addresses into function names with the executable's symbol table
//! (`runner::crash_site`): "died of SIGSEGV in ggml_backend_amx_mul_mat".
//!
//! The handler only calls async-signal-safe functions (`backtrace` is
//! loaded once beforehand, so it does not allocate in the handler).

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::llama_log::CRASH_MARKER as MARKER;

/// The executable's load bias (address of its first byte of code, minus
/// its ELF virtual addresses).
static LOAD_BIAS: AtomicUsize = AtomicUsize::new(0);

const MAX_FRAMES: usize = 48;
const SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
];

unsafe extern "C" fn first_object(
    info: *mut libc::dl_phdr_info,
    _: libc::size_t,
    out: *mut c_void,
) -> libc::c_int {
    // SAFETY: the loader passes a valid info; `out` is our usize.
    unsafe { *(out as *mut usize) = (*info).dlpi_addr as usize };
    1
}

/// Installs the handler (on an alternate stack, so a stack overflow is
/// reported too).
pub fn install() {
    // SAFETY: the loader's first object is the executable; the stack and
    // the handler live for the process; sigaction is given valid structs.
    unsafe {
        let mut bias = 0usize;
        libc::dl_iterate_phdr(Some(first_object), (&mut bias as *mut usize).cast());
        LOAD_BIAS.store(bias, Ordering::Relaxed);
        // Loads libgcc's unwinder now rather than inside the handler.
        let mut warm = [std::ptr::null_mut::<c_void>(); 2];
        libc::backtrace(warm.as_mut_ptr(), 2);

        let size = 256 * 1024;
        let stack = libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if stack != libc::MAP_FAILED {
            let alt = libc::stack_t {
                ss_sp: stack,
                ss_flags: 0,
                ss_size: size,
            };
            libc::sigaltstack(&alt, std::ptr::null_mut());
        }
        for signal in SIGNALS {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESETHAND;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// Appends `value` in hex to `buf` at `len`.
fn push_hex(buf: &mut [u8], len: &mut usize, value: usize) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut tmp = [0u8; 16];
    let mut n = 0;
    let mut v = value;
    loop {
        tmp[n] = DIGITS[v & 15];
        n += 1;
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    for &d in b"0x".iter().chain(tmp[..n].iter().rev()) {
        if *len < buf.len() {
            buf[*len] = d;
            *len += 1;
        }
    }
}

fn push(buf: &mut [u8], len: &mut usize, bytes: &[u8]) {
    for &b in bytes {
        if *len < buf.len() {
            buf[*len] = b;
            *len += 1;
        }
    }
}

extern "C" fn handler(signal: libc::c_int, _: *mut libc::siginfo_t, _: *mut c_void) {
    let mut frames = [std::ptr::null_mut::<c_void>(); MAX_FRAMES];
    // SAFETY: async-signal-safe calls on our own buffers; the signal's
    // action was reset to the default, so raising it again ends the process
    // the way it would have ended without us.
    unsafe {
        let n = libc::backtrace(frames.as_mut_ptr(), MAX_FRAMES as libc::c_int).max(0) as usize;
        let mut buf = [0u8; 64 + MAX_FRAMES * 20];
        let mut len = 0;
        push(&mut buf, &mut len, b"\n");
        push(&mut buf, &mut len, MARKER.as_bytes());
        push(&mut buf, &mut len, b" ");
        push_hex(&mut buf, &mut len, signal as usize);
        push(&mut buf, &mut len, b"; load bias ");
        push_hex(&mut buf, &mut len, LOAD_BIAS.load(Ordering::Relaxed));
        push(&mut buf, &mut len, b"; frames");
        for frame in &frames[..n] {
            push(&mut buf, &mut len, b" ");
            push_hex(&mut buf, &mut len, *frame as usize);
        }
        push(&mut buf, &mut len, b"\n");
        libc::write(2, buf.as_ptr().cast(), len);
        libc::signal(signal, libc::SIG_DFL);
        libc::raise(signal);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_line_round_trips() {
        let mut buf = [0u8; 64];
        let mut len = 0;
        push_hex(&mut buf, &mut len, 0xdead_beef);
        assert_eq!(&buf[..len], b"0xdeadbeef");
        let mut line = [0u8; 256];
        let mut n = 0;
        push(&mut line, &mut n, MARKER.as_bytes());
        push(&mut line, &mut n, b" ");
        push_hex(&mut line, &mut n, 11);
        push(&mut line, &mut n, b"; load bias ");
        push_hex(&mut line, &mut n, 0x5000);
        push(&mut line, &mut n, b"; frames ");
        push_hex(&mut line, &mut n, 0x5100);
        let log = format!("llama log\n{}\n", std::str::from_utf8(&line[..n]).unwrap());
        assert_eq!(
            crate::llama_log::crash_report(&log),
            Some((11, 0x5000, vec![0x5100]))
        );
        assert_eq!(crate::llama_log::crash_report("no crash here"), None);
    }
}
