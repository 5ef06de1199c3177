//! Integration tests: the real `llama-sweep` binary, on the real demo model
//! where a model is needed (fetch it with scripts/fetch-demo-model.sh) and
//! on a tiny mixture-of-experts model for placement (scripts/make-moe-model.sh);
//! these tests fail, not skip, without them. The tests of the app's
//! runtimes need a llama-cpp-python and a llama-server (see
//! support::app_python); CI builds both and makes their absence a failure.

mod backend;
mod bad_input;
mod baseline;
mod busy_machine;
mod demo_sweep;
mod doctor;
mod early_drop;
mod faults;
mod help_examples;
mod init;
mod measure;
mod moe;
mod overnight;
mod python_runtime;
mod quality;
mod reference;
mod report;
mod report_quality;
mod request_objective;
mod search;
mod server_runtime;
mod shapes;
mod slurm;
mod support;
mod verify;
mod workers;
