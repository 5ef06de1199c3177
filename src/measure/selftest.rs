//! The child side of the backend self-test: load a model variant with the
//! sweep's backend settings, decode a short prompt in one batch and a few
//! single tokens — the batched and the one-token kernels the trials use,
//! for this quantization — and check every logit read is a finite number.
//! A crash is the parent's to see; garbage is a failed job.

use super::bench::{Bench, failure, load, model_facts};
use super::tokens::Run;
use super::{apply, fault, log_capture};
use crate::knobs;
use crate::protocol::{SelfTestJob, SelfTestReport};
use std::time::Instant;

pub fn run(job: &SelfTestJob) -> Result<SelfTestReport, String> {
    let started = Instant::now();
    let room = job.prompt_tokens + job.gen_tokens + 8;
    let params = job
        .params
        .clone()
        .with(knobs::N_CTX, room.into())
        .with(knobs::N_BATCH, job.prompt_tokens.into());
    let settings = apply::settings(&params);
    let model = super::llama::Model::load(&job.model.path, &settings.model).map_err(|e| {
        failure(
            &format!("cannot load model {}", job.model.path.display()),
            e,
        )
    })?;
    fault::after_load(&settings);
    let _ = model_facts(&model);
    let mut ctx = load(&model, &settings)?;
    let mut bench = Bench::new(&model, &mut ctx, job.seed, fault::garbles_logits(&settings));
    let prompt = bench
        .tokens
        .prompt(Run::Prompt(0), job.prompt_tokens as usize);
    let t = Instant::now();
    bench.prompt(&prompt)?;
    let pp_tps = prompt.len() as f64 / t.elapsed().as_secs_f64();
    bench.check_last(&format!(
        "after a prompt of {} tokens in one batch",
        prompt.len()
    ))?;
    bench.clear();
    let t = Instant::now();
    bench.generate_checked(job.gen_tokens)?;
    let tg_tps = f64::from(job.gen_tokens) / t.elapsed().as_secs_f64();
    let buffers = log_capture::with(|c| c.model_buffers.clone());
    Ok(SelfTestReport {
        pp_tps,
        tg_tps,
        buffers,
        seconds: started.elapsed().as_secs_f64(),
    })
}
