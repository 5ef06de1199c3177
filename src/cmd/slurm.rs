//! `llama-sweep slurm`: writes the job-array script of a sweep's workers and
//! the finishing job's script, and with `--submit` submits both.

use crate::cli::SlurmArgs;
use crate::config;
use crate::workers::slurm::{self, ArrayRequest};
use anyhow::{Context, bail};

pub fn run(args: &SlurmArgs) -> anyhow::Result<()> {
    if args.tasks == 0 {
        bail!("--tasks must be at least 1");
    }
    let config = config::load(&args.sweep)?;
    let folder = config.sweep.output_folder();
    let workdir = std::env::current_dir().context("cannot read the current folder")?;
    let absolute = |p: &std::path::Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            workdir.join(p)
        }
    };
    let binary = std::env::current_exe().context("cannot find llama-sweep's own binary")?;
    let request = ArrayRequest {
        tasks: args.tasks,
        throttle: args.throttle,
        partition: args.partition.clone(),
        gres: args.gres.clone(),
        time: args.time.clone(),
        exclusive: args.exclusive,
        cpus_per_task: args.cpus_per_task,
    };
    let texts = slurm::script_texts(
        &config.sweep.name,
        &binary,
        &absolute(&args.sweep),
        &workdir,
        &absolute(&folder),
        &request,
    );
    let scripts = slurm::write_scripts(&folder, &texts)?;
    println!(
        "Wrote {} and {}",
        scripts.worker.display(),
        scripts.finish.display()
    );
    if !args.submit {
        println!(
            "Submit them with: llama-sweep slurm {} --tasks {} --submit   (or by hand: \
             sbatch --parsable {}, then sbatch --dependency=afterany:<job id> {})",
            args.sweep.display(),
            args.tasks,
            scripts.worker.display(),
            scripts.finish.display()
        );
        return Ok(());
    }
    let jobs = slurm::submit(&folder, &scripts, args.tasks)?;
    println!(
        "Submitted array job {} ({} workers) and finishing job {} (after the array ends)",
        jobs.array_job, jobs.tasks, jobs.finish_job
    );
    println!("{}", jobs.array_job);
    println!("Follow it with: llama-sweep status {}", folder.display());
    Ok(())
}
