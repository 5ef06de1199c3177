//! Integration tests: the real `llama-sweep` binary, on the real demo model
//! where a model is needed (fetch it with scripts/fetch-demo-model.sh; these
//! tests fail, not skip, without it).

mod bad_input;
mod baseline;
mod demo_sweep;
mod faults;
mod overnight;
mod report;
mod search;
mod support;
