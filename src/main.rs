//! The `llama-sweep` binary: parse the command line, dispatch, print the
//! error chain and exit with its status.

use clap::Parser;
use llama_sweep::cli::{Cli, Command};
use llama_sweep::{cmd, exit, measure};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Trial => return measure::run_child(),
        Command::Run(args) => cmd::run::run(&args),
        Command::Plan(args) => cmd::plan::run(&args).map(|()| exit::OK),
        Command::Init(args) => cmd::init::run(&args).map(|()| exit::OK),
        Command::Knobs(args) => cmd::knobs::run(&args).map(|()| exit::OK),
        Command::Export(args) => cmd::export::run(&args).map(|()| exit::OK),
        Command::Worker(args) => cmd::worker::run(&args),
        Command::Slurm(args) => cmd::slurm::run(&args).map(|()| exit::OK),
        Command::Status(args) => cmd::status::run(&args).map(|()| exit::OK),
        Command::Replay(args) => cmd::replay::run(&args).map(|()| exit::OK),
        Command::Compare(args) => cmd::compare::run(&args).map(|()| exit::OK),
        Command::Report(args) => cmd::report::run(&args).map(|()| exit::OK),
        Command::Quality(args) => cmd::quality::run(&args),
        Command::Doctor(args) => cmd::doctor::run(&args).map(|()| exit::OK),
        Command::Verify(args) => cmd::verify::run(&args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            exit::code_for(&error)
        }
    }
}
