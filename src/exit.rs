//! Exit statuses, one per way a run can end, and how an error chain maps to
//! one. Scripts that start a sweep at night can tell from the status alone
//! whether to look at the report, resume, or fix the input.

use crate::config::ConfigError;
use std::process::ExitCode;

/// The sweep finished and a configuration was recommended.
pub const OK: u8 = 0;
/// Something unexpected went wrong (llama.cpp cannot start, a bug, ...).
pub const FAILURE: u8 = 1;
/// The sweep file or command line is wrong. Nothing was written.
pub const BAD_INPUT: u8 = 2;
/// The output folder cannot be used: not writable, in use by another sweep,
/// or holding rows whose meaning the sweep file has changed. Nothing recorded
/// was touched.
pub const FOLDER_UNUSABLE: u8 = 3;
/// Writing results failed during the sweep (disk full, file size limit).
/// Every row recorded before is intact.
pub const WRITE_FAILED: u8 = 4;
/// Stopped by Ctrl-C, SIGTERM or SIGHUP; run again to resume.
pub const INTERRUPTED: u8 = 5;
/// Stopped by its trial or time budget with trials left; run again to go on.
pub const BUDGET_REACHED: u8 = 6;
/// Every trial ran, but none is both measured and within the constraints,
/// so nothing was recommended.
pub const NOTHING_FEASIBLE: u8 = 7;
/// llama.cpp's kernels failed the backend self-test for every model variant,
/// with every fallback: no trial ran.
pub const BACKEND_BROKEN: u8 = 8;
/// The first trials, of different configurations, all failed the same way:
/// the sweep stopped; fix the cause and run again to resume.
pub const SYSTEMATIC_FAILURE: u8 = 9;

/// Other processes kept the machine busy longer than `[trial] busy_wait_s`:
/// the sweep stopped rather than measure them; run again when it is quiet.
pub const MACHINE_BUSY: u8 = 11;

/// `verify`: a runtime the app uses could not run the configuration (a
/// Python without llama_cpp, a binary that is not a llama-server, a server
/// that never answers, a crash); the reason and its log are printed. The
/// sweep's results are untouched.
pub const RUNTIME_FAILED: u8 = 10;

/// Why the output folder cannot be used (exit status 3).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FolderUnusable(pub String);

/// Writing results failed mid-sweep (exit status 4).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WriteFailed(pub String);

/// The exit status for an error, from the first typed error in its chain.
pub fn code_for(error: &anyhow::Error) -> ExitCode {
    let code = error
        .chain()
        .find_map(|e| {
            if e.is::<ConfigError>() {
                Some(BAD_INPUT)
            } else if e.is::<FolderUnusable>() {
                Some(FOLDER_UNUSABLE)
            } else if e.is::<WriteFailed>() {
                Some(WRITE_FAILED)
            } else {
                None
            }
        })
        .unwrap_or(FAILURE);
    ExitCode::from(code)
}

/// Whether an I/O error means "no room": a full disk, a quota or a file size
/// limit.
pub fn is_out_of_space(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSPC | libc::EDQUOT | libc::EFBIG)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn typed_errors_anywhere_in_the_chain_pick_the_status() {
        let e = anyhow::Error::new(WriteFailed("disk full".into())).context("while appending");
        assert_eq!(code_for(&e), ExitCode::from(WRITE_FAILED));
        let e: anyhow::Error = Err::<(), _>(FolderUnusable("locked".into()))
            .context("x")
            .unwrap_err();
        assert_eq!(code_for(&e), ExitCode::from(FOLDER_UNUSABLE));
        assert_eq!(code_for(&anyhow::anyhow!("other")), ExitCode::from(FAILURE));
    }

    #[test]
    fn out_of_space_errors() {
        assert!(is_out_of_space(&std::io::Error::from_raw_os_error(
            libc::ENOSPC
        )));
        assert!(is_out_of_space(&std::io::Error::from_raw_os_error(
            libc::EFBIG
        )));
        assert!(!is_out_of_space(&std::io::Error::from_raw_os_error(
            libc::EACCES
        )));
    }
}
