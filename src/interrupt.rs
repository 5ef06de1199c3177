//! Stopping a sweep from outside. The first SIGINT (Ctrl-C), SIGTERM or
//! SIGHUP asks the sweep to stop: the running trial's process group is
//! killed, its partial result discarded, the files left complete, and the run
//! ends with a line saying how to resume. A second one exits at once — still
//! safely, since every recorded row is already synced and every other file is
//! replaced atomically.

use std::sync::atomic::{AtomicU32, Ordering};

static SIGNALS: AtomicU32 = AtomicU32::new(0);

/// Exit status after a second interrupt (128 + SIGINT, as shells report it).
const HARD_EXIT: i32 = 130;

extern "C" fn on_signal(_: libc::c_int) {
    if SIGNALS.fetch_add(1, Ordering::SeqCst) >= 1 {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(HARD_EXIT) };
    }
}

/// Installs the handlers (once, in the parent; children are not affected:
/// exec resets handled signals to their default).
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only touches an atomic and calls _exit.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
    // A file size limit must fail the write (EFBIG, reported) rather than
    // kill the sweep (SIGXFSZ's default).
    // SAFETY: ignoring a signal.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}
