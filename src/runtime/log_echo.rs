//! Copies a log file that another process writes (llama-server's) to this
//! process's stderr as it grows, whole lines at a time. A trial's child
//! writes its stderr to the trial's log; echoing the server's log there as
//! it happens means a trial killed for its timeout still leaves what the
//! server was doing when it stopped answering.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the file is looked at.
const EVERY: Duration = Duration::from_millis(200);

/// A running echo; [`LogEcho::finish`] copies the rest and ends it.
pub struct LogEcho {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LogEcho {
    /// Starts echoing `path` (which may not exist yet) to stderr, each line
    /// prefixed with `prefix`.
    pub fn start(path: &Path, prefix: &'static str) -> LogEcho {
        let done = Arc::new(AtomicBool::new(false));
        let path = path.to_path_buf();
        let thread = {
            let done = done.clone();
            std::thread::spawn(move || {
                let mut copied = Copied::default();
                loop {
                    let last = done.load(Ordering::Acquire);
                    copied.more(&path, prefix, last, &mut std::io::stderr().lock());
                    if last {
                        return;
                    }
                    std::thread::sleep(EVERY);
                }
            })
        };
        LogEcho {
            done,
            thread: Some(thread),
        }
    }

    /// Copies what is left, the last line even without its newline.
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LogEcho {
    fn drop(&mut self) {
        self.end();
    }
}

/// The file, open once it exists (its position is how far it was
/// copied), and the unfinished line read so far.
#[derive(Default)]
struct Copied {
    file: Option<File>,
    partial: Vec<u8>,
}

impl Copied {
    /// Copies the whole lines written since the last call (and, when
    /// `last`, the unfinished one) to `out`.
    fn more(&mut self, path: &Path, prefix: &str, last: bool, out: &mut impl Write) {
        if self.file.is_none() {
            self.file = File::open(path).ok();
        }
        if let Some(file) = &mut self.file {
            let _ = file.read_to_end(&mut self.partial);
        }
        let whole = match self.partial.iter().rposition(|&b| b == b'\n') {
            Some(at) => at + 1,
            None if last => self.partial.len(),
            None => 0,
        };
        let lines: Vec<u8> = self.partial.drain(..whole).collect();
        for line in lines.split_inclusive(|&b| b == b'\n') {
            let _ = out.write_all(prefix.as_bytes());
            let _ = out.write_all(line);
            if !line.ends_with(b"\n") {
                let _ = out.write_all(b"\n");
            }
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_lines_are_copied_as_they_are_written_and_the_rest_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        let mut copied = Copied::default();
        let mut out = Vec::new();
        copied.more(&path, "| ", false, &mut out);
        assert!(out.is_empty(), "no file yet, nothing copied");
        std::fs::write(&path, "loading\nready\nslot 0: proc").unwrap();
        copied.more(&path, "| ", false, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "| loading\n| ready\n");
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"essing\nhung").unwrap();
        copied.more(&path, "| ", false, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "| loading\n| ready\n| slot 0: processing\n"
        );
        copied.more(&path, "| ", true, &mut out);
        assert!(String::from_utf8_lossy(&out).ends_with("processing\n| hung\n"));
    }
}
