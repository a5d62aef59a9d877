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

static PENDING: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static OUTPUT: Mutex<()> = Mutex::new(());

/// Write out everything buffered so far.
pub fn flush() {
    let Ok(_out) = OUTPUT.lock() else { return };
    let data = match PENDING.lock() {
        Ok(mut p) => std::mem::take(&mut *p),
        Err(_) => return,
    };
    if !data.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&data);
        let _ = err.flush();
    }
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
        if self.bytes.is_empty() {
            return;
        }
        let full = match PENDING.lock() {
            Ok(mut p) => {
                p.extend_from_slice(&self.bytes);
                p.len() >= FLUSH_BYTES
            }
            Err(_) => return,
        };
        if full || self.urgent {
            flush();
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
