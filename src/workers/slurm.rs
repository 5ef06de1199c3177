//! SLURM: a job array whose tasks each run `llama-sweep worker`, and a job
//! that depends on it (`afterany`: it runs however the tasks ended) and runs
//! `llama-sweep run` on one node: it measures whatever the workers left, the
//! confirmation round, and writes the report and config.yaml. The scripts go
//! to `<folder>/slurm/`; the job ids to `<folder>/slurm/jobs.json`, for
//! `status`.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SLURM: &str = "slurm";
pub const JOBS_JSON: &str = "jobs.json";

/// What the array's tasks ask of SLURM.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArrayRequest {
    pub tasks: u32,
    /// At most this many tasks at once (`%K`).
    pub throttle: Option<u32>,
    pub partition: Option<String>,
    pub gres: Option<String>,
    pub time: Option<String>,
    pub exclusive: bool,
    pub cpus_per_task: Option<u32>,
}

/// The job scripts of one sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct Scripts {
    pub worker: PathBuf,
    pub finish: PathBuf,
}

/// The jobs submitted for a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    pub array_job: String,
    pub finish_job: String,
    pub tasks: u32,
    pub submitted_at: String,
}

fn quote(path: &Path) -> String {
    let text = path.display().to_string();
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn header(name: &str, request: &ArrayRequest, log: &str) -> Vec<String> {
    let mut lines = vec![
        "#!/bin/bash".to_string(),
        format!("#SBATCH --job-name={name}"),
        format!("#SBATCH --output={log}"),
    ];
    if let Some(p) = &request.partition {
        lines.push(format!("#SBATCH --partition={p}"));
    }
    if let Some(g) = &request.gres {
        lines.push(format!("#SBATCH --gres={g}"));
    }
    if let Some(t) = &request.time {
        lines.push(format!("#SBATCH --time={t}"));
    }
    if request.exclusive {
        lines.push("#SBATCH --exclusive".into());
    }
    if let Some(c) = request.cpus_per_task {
        lines.push(format!("#SBATCH --cpus-per-task={c}"));
    }
    lines
}

/// The text of the two scripts: the array's (each task runs a worker named
/// after its array task) and the finishing job's.
pub fn script_texts(
    sweep_name: &str,
    binary: &Path,
    sweep_file: &Path,
    workdir: &Path,
    folder: &Path,
    request: &ArrayRequest,
) -> (String, String) {
    let logs = folder.join(SLURM);
    let mut worker = header(
        &format!("llama-sweep-{sweep_name}"),
        request,
        &logs.join("worker-%A_%a.out").display().to_string(),
    );
    let last = request.tasks.saturating_sub(1);
    worker.push(match request.throttle {
        Some(k) => format!("#SBATCH --array=0-{last}%{k}"),
        None => format!("#SBATCH --array=0-{last}"),
    });
    worker.extend([
        "# Each task is one llama-sweep worker: it claims the next unmeasured trial of the".into(),
        "# plan, measures it and records it, until none is left. SLURM's SIGTERM (scancel,".into(),
        "# time limit, preemption) stops the running trial, which another worker picks up.".into(),
        format!("cd {}", quote(workdir)),
        format!("exec {} worker {}", quote(binary), quote(sweep_file)),
    ]);
    let mut finish = header(
        &format!("llama-sweep-{sweep_name}-finish"),
        &ArrayRequest {
            tasks: 1,
            throttle: None,
            ..request.clone()
        },
        &logs.join("finish-%j.out").display().to_string(),
    );
    finish.extend([
        "# After the array (afterany): measures what the workers left, runs the confirmation"
            .into(),
        "# round on this one device, writes report.html and config.yaml.".into(),
        format!("cd {}", quote(workdir)),
        format!("exec {} run {}", quote(binary), quote(sweep_file)),
    ]);
    (worker.join("\n") + "\n", finish.join("\n") + "\n")
}

/// Writes the scripts into `<folder>/slurm/`.
pub fn write_scripts(folder: &Path, texts: &(String, String)) -> anyhow::Result<Scripts> {
    use std::os::unix::fs::PermissionsExt;
    let dir = folder.join(SLURM);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let scripts = Scripts {
        worker: dir.join("worker.sbatch"),
        finish: dir.join("finish.sbatch"),
    };
    for (path, text) in [(&scripts.worker, &texts.0), (&scripts.finish, &texts.1)] {
        crate::store::write_atomically(path, text.as_bytes())?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(scripts)
}

/// Runs `sbatch --parsable` and returns the job id.
fn sbatch(args: &[&str], script: &Path) -> anyhow::Result<String> {
    let output = Command::new("sbatch")
        .arg("--parsable")
        .args(args)
        .arg(script)
        .output()
        .context("cannot run sbatch: is SLURM installed here (sbatch on PATH)?")?;
    if !output.status.success() {
        bail!(
            "sbatch {} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    // --parsable prints "<id>" or "<id>;<cluster>".
    let id = text
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    if id.is_empty() {
        bail!("sbatch printed no job id");
    }
    Ok(id)
}

/// Submits the array, then the finishing job after it; records both.
pub fn submit(folder: &Path, scripts: &Scripts, tasks: u32) -> anyhow::Result<Jobs> {
    let array_job = sbatch(&[], &scripts.worker)?;
    let dependency = format!("--dependency=afterany:{array_job}");
    let finish_job = sbatch(&[&dependency], &scripts.finish)?;
    let jobs = Jobs {
        array_job,
        finish_job,
        tasks,
        submitted_at: crate::clock::now_rfc3339(),
    };
    crate::store::write_atomically(
        &folder.join(SLURM).join(JOBS_JSON),
        &serde_json::to_vec_pretty(&jobs)?,
    )?;
    Ok(jobs)
}

/// The jobs submitted for the sweep in `folder`, if any.
pub fn read_jobs(folder: &Path) -> Option<Jobs> {
    serde_json::from_slice(&std::fs::read(folder.join(SLURM).join(JOBS_JSON)).ok()?).ok()
}

/// What `squeue` says of the jobs, one line per task (`<id> <state>`),
/// or `None` when squeue cannot be run. Jobs that ended are not listed.
pub fn queue_state(jobs: &Jobs) -> Option<Vec<String>> {
    let output = Command::new("squeue")
        .args(["--noheader", "--array", "--format=%i %T %R", "--jobs"])
        .arg(format!("{},{}", jobs.array_job, jobs.finish_job))
        .output()
        .ok()?;
    output.status.success().then(|| {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_array_runs_workers_and_the_finish_job_runs_the_sweep() {
        let request = ArrayRequest {
            tasks: 8,
            throttle: Some(2),
            partition: Some("gpu".into()),
            gres: Some("gpu:1".into()),
            time: Some("04:00:00".into()),
            exclusive: true,
            cpus_per_task: None,
        };
        let (worker, finish) = script_texts(
            "big",
            Path::new("/opt/llama-sweep"),
            Path::new("/home/u/big.toml"),
            Path::new("/home/u"),
            Path::new("/home/u/reports/big"),
            &request,
        );
        for line in [
            "#SBATCH --array=0-7%2",
            "#SBATCH --partition=gpu",
            "#SBATCH --gres=gpu:1",
            "#SBATCH --time=04:00:00",
            "#SBATCH --exclusive",
            "#SBATCH --output=/home/u/reports/big/slurm/worker-%A_%a.out",
            "exec '/opt/llama-sweep' worker '/home/u/big.toml'",
        ] {
            assert!(worker.lines().any(|l| l == line), "{line} not in\n{worker}");
        }
        assert!(finish.contains("exec '/opt/llama-sweep' run '/home/u/big.toml'"));
        assert!(finish.contains("#SBATCH --gres=gpu:1") && !finish.contains("--array"));
    }
}
