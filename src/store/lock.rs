//! One sweep per output folder at a time: an exclusive `flock` on
//! `<folder>/.lock`, held for the life of the run. The kernel drops it when
//! the process ends however it ends, so a killed sweep never leaves a stale
//! lock. The file also says who holds it, for the error message.

use crate::exit::FolderUnusable;
use anyhow::Context;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

pub const LOCK_FILE: &str = ".lock";

/// Held while it lives.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

fn try_flock(file: &File, kind: libc::c_int) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), kind | libc::LOCK_NB) == 0 }
}

impl FolderLock {
    /// Takes the folder's lock, or says who has it.
    pub fn acquire(folder: &Path) -> anyhow::Result<FolderLock> {
        Self::acquire_file(&folder.join(LOCK_FILE))
    }

    /// Takes the lock of the file `path` (a worker's rows file's).
    pub fn acquire_file(path: &Path) -> anyhow::Result<FolderLock> {
        let folder = path.parent().unwrap_or(Path::new("."));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if !try_flock(&file, libc::LOCK_EX) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(FolderUnusable(format!(
                "another sweep is writing to {} ({}); wait for it, stop it, or use another sweep name",
                folder.display(),
                holder.trim()
            ))
            .into());
        }
        let holder = format!(
            "pid {}, started {}",
            std::process::id(),
            crate::clock::now_rfc3339()
        );
        file.set_len(0)
            .and_then(|_| file.rewind())
            .and_then(|_| file.write_all(holder.as_bytes()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(FolderLock { _file: file })
    }
}

/// Whether a sweep holds the folder's lock right now (for `status`).
pub fn is_held(folder: &Path) -> bool {
    let Ok(file) = File::open(folder.join(LOCK_FILE)) else {
        return false;
    };
    let free = try_flock(&file, libc::LOCK_SH);
    if free {
        // SAFETY: releasing the shared lock just taken.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
    }
    !free
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_held(dir.path()));
        let first = FolderLock::acquire(dir.path()).unwrap();
        assert!(is_held(dir.path()));
        let err = FolderLock::acquire(dir.path()).unwrap_err();
        assert!(err.to_string().contains("another sweep"), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert!(!is_held(dir.path()));
        FolderLock::acquire(dir.path()).unwrap();
    }
}
