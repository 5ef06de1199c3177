//! What a finished sweep tells its user: today the terminal summary (ranked
//! feasible trials with their spread, how many trials ended how, and the
//! warnings that matter).

pub mod progress;
pub mod summary;
pub mod warnings;
