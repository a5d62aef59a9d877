//! Where log lines go: stderr, in batches.
//!
//! Every proxied request logs one line. Writing each line with its own `write(2)` — or handing
//! it to a writer thread that must be woken for it, as `tracing-appender` does — cost about a
//! fifth of the gateway's CPU per small request (measured with perf: the writer thread's
//! wake-ups and syscalls). Here a line is appended to a shared in-memory buffer; the buffer is
//! written out in one call when it passes [`FLUSH_BYTES`], when a warning or error is logged
//! (those appear at once, after everything before them), every [`FLUSH_EVERY`] by a background
//! thread, and at process exit. Lines keep their order: one lock guards the output, and the
//! buffer is only taken while holding it.

use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::Duration;

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// A buffer at least this large is written out by the thread that filled it.
pub const FLUSH_BYTES: usize = 32 * 1024;
/// How long a line may wait in the buffer at most (plus the time one write takes).
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// A batching buffer in front of an output.
pub struct Batcher<W> {
    pending: Mutex<Vec<u8>>,
    /// Held while writing out, so batches reach the output in the order they were taken.
    output: Mutex<W>,
}

impl<W: Write> Batcher<W> {
    pub const fn new(output: W) -> Batcher<W> {
        Batcher {
            pending: Mutex::new(Vec::new()),
            output: Mutex::new(output),
        }
    }

    /// Add a line; written out at once when `urgent` or when the buffer is full.
    pub fn append(&self, line: &[u8], urgent: bool) {
        let full = match self.pending.lock() {
            Ok(mut p) => {
                p.extend_from_slice(line);
                p.len() >= FLUSH_BYTES
            }
            Err(_) => return,
        };
        if full || urgent {
            self.flush();
        }
    }

    /// Write out everything buffered so far.
    pub fn flush(&self) {
        let Ok(mut out) = self.output.lock() else {
            return;
        };
        let data = match self.pending.lock() {
            Ok(mut p) => std::mem::take(&mut *p),
            Err(_) => return,
        };
        if !data.is_empty() {
            let _ = out.write_all(&data);
            let _ = out.flush();
        }
    }
}

/// The process's stderr, as a `Write` that can live in a `static`.
pub struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr().lock().write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        std::io::stderr().lock().write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
    }
}

static STDERR: Batcher<Stderr> = Batcher::new(Stderr);

/// Write out everything logged so far.
pub fn flush() {
    STDERR.flush();
}

extern "C" fn flush_at_exit() {
    flush();
}

/// The `MakeWriter` for `tracing_subscriber::fmt`: batched stderr. Creating it starts the
/// background flusher and registers the flush at exit (once per process).
#[derive(Clone, Copy)]
pub struct Batched;

impl Batched {
    pub fn stderr() -> Batched {
        static START: Once = Once::new();
        START.call_once(|| {
            // SAFETY: registering a plain `extern "C" fn()` with atexit(3).
            unsafe { libc::atexit(flush_at_exit) };
            let _ = std::thread::Builder::new()
                .name("log-flush".into())
                .spawn(|| loop {
                    std::thread::sleep(FLUSH_EVERY);
                    flush();
                });
            let default_hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                flush();
                default_hook(info);
            }));
        });
        Batched
    }
}

/// One log line being written (tracing's formatter writes a whole line, then drops this).
pub struct Line {
    bytes: Vec<u8>,
    urgent: bool,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if !self.bytes.is_empty() {
            STDERR.append(&self.bytes, self.urgent);
        }
    }
}

impl<'a> MakeWriter<'a> for Batched {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            bytes: Vec::with_capacity(256),
            urgent: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line {
            bytes: Vec::with_capacity(256),
            urgent: *meta.level() <= Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// An output that records what reached it, write by write.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_wait_for_a_flush_and_keep_their_order() {
        let out = Recorder::default();
        let b = Batcher::new(out.clone());
        b.append(b"one\n", false);
        b.append(b"two\n", false);
        assert!(out.0.lock().unwrap().is_empty());
        b.flush();
        assert_eq!(*out.0.lock().unwrap(), vec![b"one\ntwo\n".to_vec()]);
        b.flush(); // nothing pending: no empty write
        assert_eq!(out.0.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_warning_goes_out_at_once_after_what_came_before() {
        let out = Recorder::default();
        let b = Batcher::new(out.clone());
        b.append(b"info\n", false);
        b.append(b"warn\n", true);
        assert_eq!(*out.0.lock().unwrap(), vec![b"info\nwarn\n".to_vec()]);
    }

    #[test]
    fn a_full_buffer_is_written_by_the_thread_that_filled_it() {
        let out = Recorder::default();
        let b = Batcher::new(out.clone());
        let line = vec![b'x'; 1000];
        for _ in 0..FLUSH_BYTES / 1000 {
            b.append(&line, false);
        }
        assert!(out.0.lock().unwrap().is_empty());
        b.append(&line, false);
        let writes = out.0.lock().unwrap();
        assert_eq!(writes.len(), 1);
        assert_eq!(writes[0].len(), (FLUSH_BYTES / 1000 + 1) * 1000);
    }
}
