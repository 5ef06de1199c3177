//! `llama-sweep verify`: a sweep folder's recommended configuration and its
//! baseline, measured in the app's runtimes (`--python`, `--server`, else
//! the sweep file's `[app]`) beside llama-sweep's own; then config.yaml,
//! the manifest and report.html are written again with what was found.
//! `run` calls [`verify_and_record`] as its last phase.

use crate::cli::VerifyArgs;
use crate::config::{self, ConfigError};
use crate::exit;
use crate::runner::child::ChildRunner;
use crate::runtime::AppRuntimes;
use crate::runtime::sweep_child::SweepChild;
use crate::store;
use crate::store::manifest::{self, Manifest};
use crate::verify::{self, Subject, Verification, VerifySettings, render};
use std::path::Path;
use std::time::Duration;

pub fn run(args: &VerifyArgs) -> anyhow::Result<u8> {
    crate::interrupt::install();
    let folder = &args.folder;
    let manifest = manifest::read(&folder.join(store::MANIFEST))?;
    let sweep_file = Path::new(&manifest.sweep.file);
    // The sweep file as it is now, for [app] and the trial timeout; the
    // folder's own record stands when it is gone or changed beyond reading.
    let config = config::load(sweep_file).ok();
    let mut runtimes = args.app.runtimes();
    if runtimes.is_empty() {
        runtimes = config
            .as_ref()
            .map(|c| c.app.runtimes.clone())
            .unwrap_or_default();
    }
    if runtimes.is_empty() {
        return Err(ConfigError::new(
            sweep_file,
            None,
            "no runtime to verify in: name the app's Python (--python PATH) or llama-server \
             (--server PATH), or add them under [app] in the sweep file",
        )
        .into());
    }
    for path in runtimes.python.iter().chain(&runtimes.server) {
        if crate::config::find_program(&path.display().to_string(), Path::new(".")).is_none() {
            return Err(ConfigError::new(
                sweep_file,
                None,
                format!("no such program: {}", path.display()),
            )
            .into());
        }
    }
    let app = config.as_ref().map(|c| c.app.clone()).unwrap_or_default();
    let workload_repetitions = manifest
        .sweep
        .workload
        .as_ref()
        .map_or(3, |w| w.repetitions);
    let settings = VerifySettings {
        rounds: args.rounds.map_or(app.rounds, |r| r as usize),
        repetitions: args
            .repetitions
            .or(app.repetitions)
            .unwrap_or(workload_repetitions)
            .max(2),
        timeout: app
            .timeout
            .or(config.as_ref().map(|c| c.trial_timeout))
            .unwrap_or(Duration::from_secs(300)),
        seed: 0x5EED,
    };
    // What this machine measured, and the recommendation made on it, as
    // `run` uses them: rows of another machine in a shared folder are not
    // what this machine's app will run.
    let mut children = ChildRunner::current()?;
    children.test_fault = None;
    let (probe, probe_log) = super::run_setup::probe(&mut children)?;
    let _ = std::fs::remove_file(probe_log);
    let (machine_id, _) =
        crate::workers::fingerprint::of(&crate::machine::Machine::detect(), &probe);
    let rows = store::measured_on(store::measurements(store::read_rows(folder)?), &machine_id);
    let recommended = crate::confirm::read_current_recommendation(folder, &machine_id)
        .filter(|r| rows.iter().any(|row| row.trial_id == r.trial_id))
        .map(|r| r.trial_id);
    let baseline = verify::baseline_of(folder);
    let subjects = verify::subjects(
        &rows,
        &manifest.sweep.objective,
        recommended.as_deref(),
        baseline.as_deref(),
    )
    .map_err(|e| {
        ConfigError::new(
            sweep_file,
            None,
            format!("nothing to verify in {}: {e:#}", folder.display()),
        )
    })?;
    let (runtimes, left_out) = verify::left_to_verify(
        subjects[0].row,
        &runtimes,
        &config
            .as_ref()
            .map(|c| c.trial_runtime.clone())
            .unwrap_or_default(),
    );
    for line in &left_out {
        println!("{line}");
    }
    if runtimes.is_empty() {
        println!("Nothing left to verify.");
        return Ok(exit::OK);
    }
    let sweep = SweepChild::new(children, probe);
    let mut manifest = manifest;
    let v = verify_and_record(
        &subjects,
        &sweep,
        &runtimes,
        &settings,
        folder,
        &mut manifest,
    )?;
    crate::cmd::export::write_config(
        subjects[0].row,
        &manifest,
        crate::confirm::read_recommendation(folder).as_ref(),
        folder,
    )?;
    println!(
        "Config (header updated): {}",
        folder.join("config.yaml").display()
    );
    match crate::report::write(folder, None) {
        Ok(written) => println!("Report: {}", written.html.display()),
        Err(e) => println!("warning: report.html not written ({e:#})"),
    }
    Ok(status(&v, &runtimes))
}

/// Verifies `subjects`, prints what it finds, and records it in the folder
/// (verify.json) and in `manifest` (written).
pub fn verify_and_record(
    subjects: &[Subject],
    sweep: &SweepChild,
    runtimes: &AppRuntimes,
    settings: &VerifySettings,
    folder: &Path,
    manifest: &mut Manifest,
) -> anyhow::Result<Verification> {
    println!(
        "\nVerifying {} in the app's runtimes: {} round(s) of {} request(s) per configuration and runtime",
        subjects
            .iter()
            .map(|s| format!("{} {}", s.label(), s.row.trial_id))
            .collect::<Vec<_>>()
            .join(" and "),
        settings.rounds,
        settings.repetitions
    );
    let apps = crate::runtime::named(runtimes);
    let temperature = manifest.sweep.temperature;
    let v = verify::verify(
        subjects,
        sweep,
        &apps,
        settings,
        temperature,
        folder,
        &mut |line| eprintln!("  {line}"),
    )?;
    println!();
    for line in render::lines(&v) {
        println!("{line}");
    }
    manifest.app_verification = Some(manifest::AppVerification {
        verified_at: v.verified_at.clone(),
        runtimes: v.runtimes.iter().map(|r| r.describe()).collect(),
        lines: render::lines(&v),
    });
    manifest.updated_at = crate::clock::now_rfc3339();
    manifest::write(&folder.join(store::MANIFEST), manifest)?;
    Ok(v)
}

/// 0 when every named runtime measured the recommended configuration.
fn status(v: &Verification, runtimes: &AppRuntimes) -> u8 {
    let named = usize::from(runtimes.python.is_some()) + usize::from(runtimes.server.is_some());
    let measured = v
        .results
        .iter()
        .filter(|r| r.role.is_none() && r.ratio.is_some())
        .count();
    if crate::interrupt::requested() {
        exit::INTERRUPTED
    } else if measured == named {
        exit::OK
    } else {
        exit::RUNTIME_FAILED
    }
}
