//! The time as rows, logs and manifests write it: RFC 3339, in seconds.

use std::time::SystemTime;

/// Now, e.g. `2026-12-01T21:37:22Z`.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
