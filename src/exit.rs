//! Exit statuses, and how an error chain maps to one.

use crate::config::ConfigError;
use std::process::ExitCode;

/// Something went wrong that is not the input's fault (I/O, llama.cpp
/// unusable, ...).
pub const FAILURE: u8 = 1;
/// The input is wrong: a bad sweep.toml or command line. Nothing was written.
pub const BAD_INPUT: u8 = 2;

/// The exit status for an error: 2 when it is (or wraps) a [`ConfigError`].
pub fn code_for(error: &anyhow::Error) -> ExitCode {
    if error.chain().any(|e| e.is::<ConfigError>()) {
        ExitCode::from(BAD_INPUT)
    } else {
        ExitCode::from(FAILURE)
    }
}
