//! `llama-sweep knobs`: the knob reference, written from the parameter
//! table with llama.cpp's defaults as this build links them.

use crate::cli::KnobsArgs;
use crate::knobs::{self, reference};
use crate::measure;

pub fn run(args: &KnobsArgs) -> anyhow::Result<()> {
    let defaults = measure::llama_cpp_defaults();
    let text = if args.markdown {
        reference::markdown(&defaults)
    } else {
        reference::text(&defaults, args.knob.as_deref().and_then(knobs::by_name))
    };
    print!("{text}");
    Ok(())
}
