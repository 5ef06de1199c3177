//! Hex digests: the sweep file's sha256, model fingerprints, trial ids.

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
