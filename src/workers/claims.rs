//! Claims: which worker measures which trial, safe on a shared network
//! filesystem. A claim is a file `claims/<trial_id>.<generation>` made with
//! an exclusive create (atomic on NFS v3 and later, unlike advisory locks);
//! the highest generation is the claim that counts. Its holder renews the
//! lease inside it while the trial runs; a claim whose lease ran out, or whose
//! holder is a dead process on this host, is taken over by creating the next
//! generation, so of two workers that see it expire only one wins. Claiming
//! is followed by a fresh look at the rows: a trial recorded meanwhile is not
//! measured again. A holder whose claim lapsed (its renewals failed for a
//! lease, or another worker took the trial over) learns it before recording
//! ([`ClaimGuard::still_held`]) and discards what it measured.
//!
//! "Its holder is a dead process on this host" needs to know which holders
//! share this host's process table: not the hostname (containers and cloned
//! hosts share names) but the kernel's boot id and the pid namespace
//! ([`host_identity`]), and the holder's start time guards against a pid
//! reused by another process.
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
    /// The process table the pid belongs to ([`host_identity`]); empty in
    /// claims written before it was recorded (their lease decides alone).
    #[serde(default)]
    pub host_id: String,
    /// The holder's start time in clock ticks since boot (/proc/PID/stat),
    /// 0 where unknown.
    #[serde(default)]
    pub started: u64,
}

impl Holder {
    fn expired(&self, now_ms: u64, here: &str) -> bool {
        if now_ms > self.renewed_ms.saturating_add(self.lease_ms) {
            return true;
        }
        // A holder in this process table that is gone needs no lease to
        // run out; one elsewhere (whatever its host's name) does.
        if self.host_id.is_empty() || self.host_id != here {
            return false;
        }
        match process_start(self.pid) {
            None => true,
            Some(started) => self.started != 0 && started != self.started,
        }
    }
}

/// The identity of this host's process table: the kernel's boot id and the
/// pid namespace. Two processes with equal identities can see each other's
/// pids; empty where either cannot be read.
pub fn host_identity() -> String {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let namespace = std::fs::read_link("/proc/self/ns/pid")
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    if boot.trim().is_empty() || namespace.is_empty() {
        return String::new();
    }
    format!("{}/{namespace}", boot.trim())
}

/// When `pid` started, in clock ticks since boot; `None` if there is no
/// such process.
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields after it start at the last ')'. starttime is field 22.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
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
    /// This host's process table ([`host_identity`]).
    host_id: String,
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
            host_id: host_identity(),
            lease,
        })
    }

    fn path(&self, trial_id: &str, generation: u64) -> PathBuf {
        self.dir.join(format!("{trial_id}.{generation}"))
    }

    fn holder(&self) -> Holder {
        let pid = std::process::id();
        Holder {
            worker: self.worker.clone(),
            host: self.host.clone(),
            pid,
            renewed_ms: now_ms(),
            lease_ms: self.lease.as_millis() as u64,
            host_id: self.host_id.clone(),
            started: process_start(pid).unwrap_or(0),
        }
    }

    /// Every trial with a claim file and its newest generation, from one
    /// look at the folder (generations need not be consecutive: released
    /// and abandoned ones leave gaps of any length).
    fn newest_generations(&self) -> std::collections::BTreeMap<String, u64> {
        let mut newest = std::collections::BTreeMap::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return newest;
        };
        for entry in entries.flatten() {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some((id, generation)) = name.rsplit_once('.') else {
                continue;
            };
            let Ok(generation) = generation.parse::<u64>() else {
                continue;
            };
            let slot = newest.entry(id.to_string()).or_insert(generation);
            *slot = (*slot).max(generation);
        }
        newest
    }

    /// The newest generation of a trial's claim and its holder, if any.
    fn current(&self, trial_id: &str) -> Option<(u64, Holder)> {
        let generation = *self.newest_generations().get(trial_id)?;
        Some((generation, self.read_holder(trial_id, generation)?))
    }

    /// The holder a claim file names. A file caught between its create and
    /// its first write reads as a holder renewed at its modification time.
    fn read_holder(&self, trial_id: &str, generation: u64) -> Option<Holder> {
        let path = self.path(trial_id, generation);
        let meta = std::fs::metadata(&path).ok()?;
        Some(
            std::fs::read(&path)
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
                    host_id: String::new(),
                    started: 0,
                }),
        )
    }

    /// Claims `trial_id` for this worker, unless another worker holds a
    /// live claim on it.
    pub fn claim(&self, trial_id: &str) -> anyhow::Result<Claim> {
        loop {
            let generation = match self.current(trial_id) {
                None => 1,
                Some((g, holder)) => {
                    if !holder.expired(now_ms(), &self.host_id) && holder.worker != self.worker {
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
            host_id: host_identity(),
            lease: Duration::ZERO,
        };
        reader.live()
    }

    /// The trials with a live claim now, and who holds each.
    pub fn live(&self) -> Vec<(String, Holder)> {
        let now = now_ms();
        self.newest_generations()
            .into_iter()
            .filter_map(|(id, generation)| {
                let holder = self.read_holder(&id, generation)?;
                (!holder.expired(now, &self.host_id)).then_some((id, holder))
            })
            .collect()
    }

    /// Writes a renewed lease into this worker's claim file (a temporary
    /// file renamed over it: readers see the old or the new, never half).
    fn renew(&self, trial_id: &str, generation: u64) -> anyhow::Result<()> {
        self.check_still_newest(trial_id, generation)?;
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

impl Claims {
    /// Errs when a newer generation of the claim exists: another worker
    /// took the trial over (this worker's lease had lapsed).
    fn check_still_newest(&self, trial_id: &str, generation: u64) -> anyhow::Result<()> {
        match self.newest_generations().get(trial_id) {
            Some(&newest) if newest > generation => {
                let by = self.read_holder(trial_id, newest).map_or_else(
                    || "another worker".into(),
                    |h| format!("{} on {}", h.worker, h.host),
                );
                anyhow::bail!("trial {trial_id} was taken over by {by} (claim generation {newest})")
            }
            Some(_) => Ok(()),
            None => anyhow::bail!(
                "the claim on trial {trial_id} is gone from {}",
                self.dir.display()
            ),
        }
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
    /// Set by the renewing thread when the claim is lost: why.
    lost: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl ClaimGuard {
    fn start(claims: Claims, trial_id: String, generation: u64) -> ClaimGuard {
        let (stop, stopped) = mpsc::channel::<()>();
        let lost = std::sync::Arc::new(std::sync::Mutex::new(None));
        let renewer = {
            let (claims, trial_id, lost) = (claims.clone(), trial_id.clone(), lost.clone());
            let every = (claims.lease / 4).max(Duration::from_millis(10));
            std::thread::spawn(move || {
                let mut renewed = std::time::Instant::now();
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let why = match claims.renew(&trial_id, generation) {
                        Ok(()) => {
                            renewed = std::time::Instant::now();
                            continue;
                        }
                        Err(e) if renewed.elapsed() >= claims.lease => format!(
                            "its lease of {} s lapsed: renewing failed ({e:#})",
                            claims.lease.as_secs_f64()
                        ),
                        Err(e) if claims.check_still_newest(&trial_id, generation).is_err() => {
                            format!("{e:#}")
                        }
                        // A passing failure: the lease still holds.
                        Err(_) => continue,
                    };
                    *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                    return;
                }
            })
        };
        ClaimGuard {
            claims,
            trial_id,
            generation,
            stop: Some(stop),
            renewer: Some(renewer),
            lost,
        }
    }

    pub fn trial_id(&self) -> &str {
        &self.trial_id
    }

    /// Whether this worker still holds the claim, asked before recording:
    /// `Err(why)` when its lease lapsed or another worker took the trial
    /// over, and what it measured must be discarded.
    pub fn still_held(&self) -> Result<(), String> {
        if let Some(why) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(why);
        }
        self.claims
            .check_still_newest(&self.trial_id, self.generation)
            .map_err(|e| format!("{e:#}"))
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

    /// A claim file written by hand, as another process would leave it.
    fn put(dir: &Path, name: &str, holder: &Holder) {
        std::fs::create_dir_all(dir.join(CLAIMS)).unwrap();
        std::fs::write(
            dir.join(CLAIMS).join(name),
            serde_json::to_vec(holder).unwrap(),
        )
        .unwrap();
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    fn holder(host_id: &str, pid: u32, started: u64) -> Holder {
        Holder {
            worker: "other".into(),
            host: "host-a".into(),
            pid,
            renewed_ms: now_ms(),
            lease_ms: 3_600_000,
            host_id: host_id.into(),
            started,
        }
    }

    #[test]
    fn a_live_claim_on_another_host_with_the_same_name_is_not_taken_for_dead() {
        let dir = tempfile::tempdir().unwrap();
        // Same hostname, another machine: its pid means nothing here.
        put(
            dir.path(),
            "t1.1",
            &holder("another-boot/pid:[1]", dead_pid(), 1),
        );
        let b = claims(dir.path(), "b", 60_000);
        assert!(matches!(b.claim("t1").unwrap(), Claim::Busy(_)));
        assert_eq!(b.live().len(), 1);
    }

    #[test]
    fn a_pid_reused_by_another_process_does_not_keep_a_claim_alive() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        let started = process_start(me).unwrap();
        put(
            dir.path(),
            "t1.1",
            &holder(&host_identity(), me, started + 1),
        );
        let b = claims(dir.path(), "b", 60_000);
        assert!(matches!(b.claim("t1").unwrap(), Claim::Taken(_)));
    }

    #[test]
    fn a_live_claim_past_a_gap_of_several_generations_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::process::id();
        put(
            dir.path(),
            "t1.4",
            &holder(&host_identity(), me, process_start(me).unwrap()),
        );
        let b = claims(dir.path(), "b", 60_000);
        assert!(matches!(b.claim("t1").unwrap(), Claim::Busy(_)));
        assert_eq!(b.live().len(), 1);
        assert!(!dir.path().join(CLAIMS).join("t1.1").exists());
    }

    #[test]
    fn a_worker_whose_claim_was_taken_over_learns_it_before_recording() {
        let dir = tempfile::tempdir().unwrap();
        let a = claims(dir.path(), "a", 100);
        let Claim::Taken(guard) = a.claim("t1").unwrap() else {
            panic!()
        };
        assert_eq!(guard.still_held(), Ok(()));
        // a is stalled (a stopped process, a hung filesystem): its lease
        // runs out and b takes the trial over.
        let mut stalled = guard;
        stalled.stop_renewing();
        std::thread::sleep(Duration::from_millis(200));
        let b = claims(dir.path(), "b", 60_000);
        let Claim::Taken(_b_guard) = b.claim("t1").unwrap() else {
            panic!("b takes over the lapsed claim")
        };
        let why = stalled.still_held().unwrap_err();
        assert!(why.contains("taken over by b"), "{why}");
    }

    #[test]
    fn a_claim_whose_renewals_fail_for_a_lease_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let a = claims(dir.path(), "a", 200);
        let Claim::Taken(guard) = a.claim("t1").unwrap() else {
            panic!()
        };
        // The claims folder becomes unwritable (a full or read-only share).
        std::fs::remove_dir_all(dir.path().join(CLAIMS)).unwrap();
        std::fs::write(dir.path().join(CLAIMS), b"not a folder").unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let why = guard.still_held().unwrap_err();
        assert!(why.contains("lapsed") || why.contains("gone"), "{why}");
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
        put(dir.path(), "t1.1", &holder(&host_identity(), dead_pid(), 1));
        let b = claims(dir.path(), "b", 60_000);
        assert!(matches!(b.claim("t1").unwrap(), Claim::Taken(_)));
        assert!(dir.path().join(CLAIMS).join("t1.2").exists());
    }
}
