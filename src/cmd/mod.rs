//! One file per subcommand, each with a `run` that takes the parsed
//! arguments.

pub mod export;
pub mod plan;
pub mod run;
