//! One file per subcommand, each with a `run` that takes the parsed
//! arguments.

pub mod compare;
pub mod doctor;
pub mod export;
pub mod init;
pub mod knobs;
pub mod plan;
pub mod quality;
pub mod replay;
pub mod report;
pub mod run;
mod run_setup;
pub mod slurm;
pub mod status;
pub mod verify;
pub mod worker;
