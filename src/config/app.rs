//! `[app]`: the runtimes the user's app really runs, llama-cpp-python
//! (named by the app's Python interpreter) and/or a llama-server binary,
//! and how long to verify in them. A name with a `/` is a path, relative to
//! the sweep file's folder; a bare name is looked up on PATH. Either must
//! exist now: a typo is found before the sweep, not after it.

use super::raw::RawConfig;
use super::validate::Ctx;
use super::{AppRuntimes, AppSettings};
use crate::config::ConfigError;
use std::path::{Path, PathBuf};
use toml::Spanned;

pub(super) fn app(ctx: &Ctx, raw: &RawConfig, base_dir: &Path) -> Result<AppSettings, ConfigError> {
    let a = &raw.app;
    let defaults = AppSettings::default();
    let program =
        |key: &str, value: &Option<Spanned<String>>| -> Result<Option<PathBuf>, ConfigError> {
            let Some(v) = value else { return Ok(None) };
            match find_program(v.get_ref(), base_dir) {
            Some(path) => Ok(Some(path)),
            None => ctx.err(
                &format!("app.{key}"),
                Some(v.span()),
                format!(
                    "no such program: {} (a path, relative to the sweep file, or a name on PATH)",
                    v.get_ref()
                ),
            ),
        }
        };
    let count =
        |key: &str, v: &Option<Spanned<i64>>, max: i64| -> Result<Option<i64>, ConfigError> {
            match v {
                None => Ok(None),
                Some(n) if (1..=max).contains(n.get_ref()) => Ok(Some(*n.get_ref())),
                Some(n) => ctx.err(
                    &format!("app.{key}"),
                    Some(n.span()),
                    format!("must be between 1 and {max}"),
                ),
            }
        };
    Ok(AppSettings {
        runtimes: AppRuntimes {
            python: program("python", &a.python)?,
            server: program("server", &a.server)?,
        },
        rounds: count("rounds", &a.rounds, 100)?.map_or(defaults.rounds, |n| n as usize),
        repetitions: count("repetitions", &a.repetitions, 1000)?.map(|n| n as u32),
        timeout: match &a.timeout_s {
            None => None,
            Some(t) if t.get_ref().0 > 0.0 && t.get_ref().0 <= 86_400.0 => {
                Some(std::time::Duration::from_secs_f64(t.get_ref().0))
            }
            Some(t) => {
                return ctx.err(
                    "app.timeout_s",
                    Some(t.span()),
                    "must be a number of seconds above 0 and at most 86400",
                );
            }
        },
    })
}

/// `name` as a path (relative to `base_dir`) when it has a `/`, else the
/// first executable of that name on PATH.
pub fn find_program(name: &str, base_dir: &Path) -> Option<PathBuf> {
    if name.contains('/') {
        let path = base_dir.join(name);
        return path
            .is_file()
            .then(|| std::path::absolute(&path).unwrap_or(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    #[test]
    fn app_runtimes_are_found_and_a_typo_is_an_error_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("m.gguf"), b"GGUF").unwrap();
        std::fs::create_dir(dir.path().join("venv")).unwrap();
        std::fs::write(dir.path().join("venv/python"), b"").unwrap();
        let base = "[sweep]\nname = \"s\"\n[[model]]\npath = \"m.gguf\"\n";
        let file = dir.path().join("sweep.toml");
        let none = parse(&file, base).unwrap();
        assert!(none.app.runtimes.is_empty());
        assert_eq!(none.app.rounds, 5);
        let c = parse(
            &file,
            &format!("{base}[app]\npython = \"venv/python\"\nserver = \"sh\"\nrounds = 3\n"),
        )
        .unwrap();
        assert_eq!(
            c.app.runtimes.python.as_deref(),
            Some(
                std::path::absolute(dir.path().join("venv/python"))
                    .unwrap()
                    .as_path()
            )
        );
        assert!(c.app.runtimes.server.as_ref().unwrap().ends_with("sh"));
        assert_eq!(c.app.rounds, 3);
        let err = parse(&file, &format!("{base}[app]\npython = \"venv/pyhton\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("app.python") && err.contains("no such program: venv/pyhton"),
            "{err}"
        );
        assert!(err.contains(":6"), "the line is named: {err}");
        let err = parse(&file, &format!("{base}[app]\nrounds = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("app.rounds") && err.contains("between 1 and 100"),
            "{err}"
        );
    }
}
