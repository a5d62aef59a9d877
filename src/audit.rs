//! The audit log: one JSON line per push, pull, delete and denial (who, namespace, repository,
//! reference, action, decision, status, bytes). Never a token.

use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

/// One audited request.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    pub time: String,
    pub user: &'a str,
    pub action: &'a str,
    pub namespace: &'a str,
    pub repository: &'a str,
    pub reference: &'a str,
    pub decision: &'a str,
    pub status: u16,
    pub bytes: u64,
    pub client: &'a str,
}

/// What an audited request did, from its method and route class; `None` when only denials of
/// it are audited.
pub fn action(method: &str, route_class: &str) -> Option<&'static str> {
    match (method, route_class) {
        ("GET" | "HEAD", "manifest" | "blob") => Some("pull"),
        ("PUT", "manifest") | ("POST" | "PATCH" | "PUT", "upload_start" | "upload") => Some("push"),
        ("DELETE", "manifest" | "blob" | "admin_blob") => Some("delete"),
        ("DELETE", "upload") => Some("cancel"),
        _ => None,
    }
}

/// The audit sink.
pub struct Audit {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Audit {
    /// Audit to a file (appended) or, with `None`, to stdout.
    pub fn open(path: Option<&std::path::Path>) -> std::io::Result<Audit> {
        let out: Box<dyn Write + Send> = match path {
            Some(p) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)?,
            ),
            None => Box::new(std::io::stdout()),
        };
        Ok(Audit {
            out: Mutex::new(out),
        })
    }

    pub fn record(&self, e: &Event<'_>) {
        let Ok(mut line) = serde_json::to_vec(e) else {
            return;
        };
        line.push(b'\n');
        let mut out = match self.out.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Err(err) = out.write_all(&line).and_then(|()| out.flush()) {
            tracing::error!(error = %err, "cannot write the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions() {
        assert_eq!(action("GET", "blob"), Some("pull"));
        assert_eq!(action("PATCH", "upload"), Some("push"));
        assert_eq!(action("DELETE", "manifest"), Some("delete"));
        assert_eq!(action("GET", "tags"), None);
    }
}
