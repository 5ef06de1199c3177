//! `[sweep] runtime`: where the trials run. `"llama-sweep"` (the default)
//! measures llama.cpp as llama-sweep links it, in its own child process;
//! `"server"` runs every trial, the references included, through the
//! llama-server binary `[app] server` names: started with the trial's
//! flags, measured by llama-sweep acting as the app's clients
//! (`measure::server_trial`). Every figure then comes from the app's
//! request, so what the server runtime cannot measure yet (depths, a
//! conversation's history) is refused here, before the sweep.

use super::AppSettings;
use super::error::did_you_mean;
use super::raw::RawConfig;
use super::validate::Ctx;
use crate::config::ConfigError;
use crate::protocol::Workload;
use std::path::PathBuf;

/// The llama-server every trial runs through; `None`: llama-sweep's own.
pub(super) fn trial_server(
    ctx: &Ctx,
    raw: &RawConfig,
    app: &AppSettings,
    workload: &Workload,
) -> Result<Option<PathBuf>, ConfigError> {
    let Some(runtime) = &raw.sweep.get_ref().runtime else {
        return Ok(None);
    };
    let span = Some(runtime.span());
    match runtime.get_ref().as_str() {
        "llama-sweep" => Ok(None),
        "server" => {
            let Some(binary) = &app.runtimes.server else {
                return ctx.err(
                    "sweep.runtime",
                    span,
                    "\"server\" runs every trial through a llama-server: name the binary as \
                     `server = \"path/to/llama-server\"` under [app]",
                );
            };
            if !workload.n_depth.is_empty() || workload.request_history_tokens > 0 {
                return ctx.err(
                    "sweep.runtime",
                    span,
                    "trials through llama-server measure the app's request on an empty cache: \
                     workload.n_depth and workload.request_history_tokens are measured by \
                     runtime = \"llama-sweep\" only",
                );
            }
            Ok(Some(binary.clone()))
        }
        other => {
            let hint = did_you_mean(other, ["llama-sweep", "server"])
                .map(|k| format!("did you mean \"{k}\"? "))
                .unwrap_or_default();
            ctx.err(
                "sweep.runtime",
                span,
                format!("unknown runtime {other:?}; {hint}expected \"llama-sweep\" or \"server\""),
            )
        }
    }
}
