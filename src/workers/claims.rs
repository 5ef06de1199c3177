//! Claims: which worker measures which trial, safe on a shared network
//! filesystem. A claim is a file `claims/<trial_id>.<generation>` made with
//! an exclusive create (atomic on NFS v3 and later, unlike advisory locks);
//! the highest generation is the claim that counts. Its holder renews the
//! lease inside it while the trial runs; a claim whose lease ran out, or whose
//! holder is a dead process on this host, is taken over by creating the next
//! generation, so of two workers that see it expire only one wins. Claiming
//! is followed by a fresh look at the rows: a trial recorded meanwhile is not
//! measured again.
//!
//! Leases compare wall clocks of the hosts: they must agree to within a
//! fraction of the lease (NTP does this on every cluster).

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub const CLAIMS: &str = "claims";

/// How long a claim holds without renewal, unless told otherwise.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Who holds a claim, as its file says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub worker: String,
    pub host: String,
    pub pid: u32,
    /// When the lease was last renewed, milliseconds since the epoch.
    #[serde(default)]
    pub renewed_ms: u64,
    #[serde(default)]
    pub lease_ms: u64,
}

impl Holder {
    fn expired(&self, now_ms: u64, here: &str) -> bool {
        if now_ms > self.renewed_ms.saturating_add(self.lease_ms) {
            return true;
        }
        // A holder on this host that is gone needs no lease to run out.
        self.host == here && !process_alive(self.pid)
    }
}

fn process_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The claims of one sweep folder, as one worker sees them.
#[derive(Debug, Clone)]
pub struct Claims {
    dir: PathBuf,
    worker: String,
    host: String,
    lease: Duration,
}

/// What trying to claim a trial gave.
#[derive(Debug)]
pub enum Claim {
    /// This worker holds it now; the lease is renewed until released.
    Taken(ClaimGuard),
    /// Another worker holds a live claim on it.
    Busy(Holder),
}

impl Claims {
    pub fn new(folder: &Path, worker: &str, host: &str, lease: Duration) -> anyhow::Result<Self> {
        let dir = folder.join(CLAIMS);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Claims {
            dir,
            worker: worker.to_string(),
            host: host.to_string(),
            lease,
        })
    }

    fn path(&self, trial_id: &str, generation: u64) -> PathBuf {
        self.dir.join(format!("{trial_id}.{generation}"))
    }

    fn holder(&self) -> Holder {
        Holder {
            worker: self.worker.clone(),
            host: self.host.clone(),
            pid: std::process::id(),
            renewed_ms: now_ms(),
            lease_ms: self.lease.as_millis() as u64,
        }
    }

    /// The newest generation of a trial's claim and its holder, if any.
    /// A file caught between its create and its first write reads as a
    /// holder renewed at its modification time.
    fn current(&self, trial_id: &str) -> Option<(u64, Holder)> {
        let mut found = None;
        let mut generation = 1;
        loop {
            let path = self.path(trial_id, generation);
            let Ok(meta) = std::fs::metadata(&path) else {
                // Released claims leave gaps below the newest: look one past.
                if !std::fs::exists(self.path(trial_id, generation + 1)).unwrap_or(false) {
                    return found;
                }
                generation += 1;
                continue;
            };
            let holder = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Holder>(&b).ok())
                .unwrap_or_else(|| Holder {
                    worker: "?".into(),
                    host: "?".into(),
                    pid: 0,
                    renewed_ms: meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0, |d| d.as_millis() as u64),
                    lease_ms: DEFAULT_LEASE.as_millis() as u64,
                });
            found = Some((generation, holder));
            generation += 1;
        }
    }

    /// Claims `trial_id` for this worker, unless another worker holds a
    /// live claim on it.
    pub fn claim(&self, trial_id: &str) -> anyhow::Result<Claim> {
        loop {
            let generation = match self.current(trial_id) {
                None => 1,
                Some((g, holder)) => {
                    if !holder.expired(now_ms(), &self.host) && holder.worker != self.worker {
                        return Ok(Claim::Busy(holder));
                    }
                    g + 1
                }
            };
            let path = self.path(trial_id, generation);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(mut file) => {
                    let holder = self.holder();
                    file.write_all(&serde_json::to_vec(&holder)?)
                        .and_then(|_| file.sync_all())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    return Ok(Claim::Taken(ClaimGuard::start(
                        self.clone(),
                        trial_id.to_string(),
                        generation,
                    )));
                }
                // Another worker made this generation first: look again.
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot create {}", path.display()));
                }
            }
        }
    }

    /// The live claims of a folder, for a reader: nothing is created.
    pub fn live_in(folder: &Path) -> Vec<(String, Holder)> {
        let reader = Claims {
            dir: folder.join(CLAIMS),
            worker: String::new(),
            host: String::new(),
            lease: Duration::ZERO,
        };
        reader.live()
    }

    /// The trials with a live claim now, and who holds each.
    pub fn live(&self) -> Vec<(String, Holder)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let (id, generation) = name.rsplit_once('.')?;
                generation.parse::<u64>().ok()?;
                Some(id.to_string())
            })
            .collect();
        ids.sort();
        ids.dedup();
        let now = now_ms();
        ids.into_iter()
            .filter_map(|id| {
                let (_, holder) = self.current(&id)?;
                (!holder.expired(now, &self.host)).then_some((id, holder))
            })
            .collect()
    }

    /// Writes a renewed lease into this worker's claim file (a temporary
    /// file renamed over it: readers see the old or the new, never half).
    fn renew(&self, trial_id: &str, generation: u64) -> anyhow::Result<()> {
        let path = self.path(trial_id, generation);
        let tmp = self.dir.join(format!(
            ".{trial_id}.{generation}.{}.tmp",
            std::process::id()
        ));
        std::fs::write(&tmp, serde_json::to_vec(&self.holder())?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }
}

/// A claim held by this worker. Its lease is renewed by a thread until the
/// guard is released (the file removed: the row is recorded, or the trial
/// was stopped) or dropped (renewal stops, the file stays until its lease
/// runs out: as a killed worker leaves it).
#[derive(Debug)]
pub struct ClaimGuard {
    claims: Claims,
    trial_id: String,
    generation: u64,
    /// Dropping it wakes the renewing thread, which then ends.
    stop: Option<mpsc::Sender<()>>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl ClaimGuard {
    fn start(claims: Claims, trial_id: String, generation: u64) -> ClaimGuard {
        let (stop, stopped) = mpsc::channel::<()>();
        let renewer = {
            let (claims, trial_id) = (claims.clone(), trial_id.clone());
            let every = (claims.lease / 4).max(Duration::from_millis(10));
            std::thread::spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let _ = claims.renew(&trial_id, generation);
                }
            })
        };
        ClaimGuard {
            claims,
            trial_id,
            generation,
            stop: Some(stop),
            renewer: Some(renewer),
        }
    }

    pub fn trial_id(&self) -> &str {
        &self.trial_id
    }

    fn stop_renewing(&mut self) {
        self.stop.take();
        if let Some(thread) = self.renewer.take() {
            let _ = thread.join();
        }
    }

    /// Gives the claim up: its generation and every older one are removed.
    pub fn release(mut self) {
        self.stop_renewing();
        for generation in (1..=self.generation).rev() {
            let _ = std::fs::remove_file(self.claims.path(&self.trial_id, generation));
        }
    }
}

impl Drop for ClaimGuard {
    fn drop(&mut self) {
        self.stop_renewing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(dir: &Path, worker: &str, lease_ms: u64) -> Claims {
        Claims::new(dir, worker, "host-a", Duration::from_millis(lease_ms)).unwrap()
    }

    #[test]
    fn a_live_claim_is_busy_for_others_and_free_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            claims(dir.path(), "a", 60_000),
            claims(dir.path(), "b", 60_000),
        );
        let Claim::Taken(guard) = a.claim("t1").unwrap() else {
            panic!("first claim")
        };
        match b.claim("t1").unwrap() {
            Claim::Busy(h) => assert_eq!((h.worker.as_str(), h.pid), ("a", std::process::id())),
            other => panic!("{other:?}"),
        }
        assert_eq!(b.live().len(), 1);
        guard.release();
        assert!(b.live().is_empty());
        assert!(matches!(b.claim("t1").unwrap(), Claim::Taken(_)));
    }

    #[test]
    fn an_expired_lease_is_taken_over_by_exactly_one_worker() {
        let dir = tempfile::tempdir().unwrap();
        let a = claims(dir.path(), "a", 50);
        let Claim::Taken(guard) = a.claim("t1").unwrap() else {
            panic!()
        };
        drop(guard); // a dies: no more renewals
        std::thread::sleep(Duration::from_millis(120));
        let winners: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|i| {
                    let c = claims(dir.path(), &format!("w{i}"), 60_000);
                    s.spawn(move || match c.claim("t1").unwrap() {
                        Claim::Taken(g) => {
                            std::mem::forget(g);
                            true
                        }
                        Claim::Busy(_) => false,
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(winners.iter().filter(|w| **w).count(), 1, "{winners:?}");
    }

    #[test]
    fn a_renewed_lease_outlives_its_length() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (claims(dir.path(), "a", 200), claims(dir.path(), "b", 200));
        let Claim::Taken(guard) = a.claim("t1").unwrap() else {
            panic!()
        };
        std::thread::sleep(Duration::from_millis(600));
        assert!(matches!(b.claim("t1").unwrap(), Claim::Busy(_)));
        guard.release();
    }

    #[test]
    fn a_dead_process_on_this_host_loses_its_claim_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = Holder {
            worker: "gone".into(),
            host: "host-a".into(),
            pid: dead,
            renewed_ms: now_ms(),
            lease_ms: 3_600_000,
        };
        std::fs::create_dir_all(dir.path().join(CLAIMS)).unwrap();
        std::fs::write(
            dir.path().join(CLAIMS).join("t1.1"),
            serde_json::to_vec(&stale).unwrap(),
        )
        .unwrap();
        let b = claims(dir.path(), "b", 60_000);
        assert!(matches!(b.claim("t1").unwrap(), Claim::Taken(_)));
        assert!(dir.path().join(CLAIMS).join("t1.2").exists());
    }
}
