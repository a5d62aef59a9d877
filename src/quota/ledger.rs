//! Bytes of uploads in progress (and of blobs committed but not yet referenced by an image),
//! per namespace, so that parallel pushes through this gateway cannot together overshoot a
//! namespace quota. Entries expire, so an abandoned upload does not hold room forever.
//!
//! Uploads are served in arrival order: an upload only has to leave room for committed blobs
//! and for uploads that started before it, so when two uploads together do not fit, the later
//! one is cut and the earlier one completes (instead of both being cut half-way).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Entry {
    bytes: u64,
    until: Instant,
    /// Arrival order; 0 for committed blobs (they come before every upload).
    seq: u64,
}

/// The reservations of this gateway process.
#[derive(Debug)]
pub struct Ledger {
    ttl: Duration,
    next_seq: std::sync::atomic::AtomicU64,
    by_namespace: Mutex<HashMap<String, HashMap<String, Entry>>>,
}

impl Ledger {
    pub fn new(ttl: Duration) -> Ledger {
        Ledger {
            ttl,
            next_seq: std::sync::atomic::AtomicU64::new(1),
            by_namespace: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, HashMap<String, Entry>>) -> T) -> T {
        let mut guard = match self.by_namespace.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Bytes `key` must leave room for in `namespace`: committed blobs and uploads that
    /// arrived before it (everything but `key` itself when `key` is unknown).
    pub fn reserved_except(&self, namespace: &str, key: &str) -> u64 {
        let now = Instant::now();
        self.with(|m| {
            let Some(ns) = m.get(namespace) else { return 0 };
            let mine = ns.get(key).map_or(u64::MAX, |e| e.seq);
            ns.iter()
                .filter(|(k, v)| k.as_str() != key && v.until > now && v.seq < mine)
                .map(|(_, v)| v.bytes)
                .sum()
        })
    }

    /// Reserve `bytes` for the upload `key` (keeps its place in the arrival order).
    pub fn set(&self, namespace: &str, key: &str, bytes: u64) {
        self.put(namespace, key, bytes, None)
    }

    fn put(&self, namespace: &str, key: &str, bytes: u64, seq: Option<u64>) {
        let now = Instant::now();
        let until = now + self.ttl;
        self.with(|m| {
            let ns = m.entry(namespace.to_string()).or_default();
            ns.retain(|_, v| v.until > now);
            let seq = seq
                .or_else(|| ns.get(key).map(|e| e.seq))
                .unwrap_or_else(|| {
                    self.next_seq
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                });
            ns.insert(key.to_string(), Entry { bytes, until, seq });
        })
    }

    pub fn remove(&self, namespace: &str, key: &str) {
        self.with(|m| {
            if let Some(ns) = m.get_mut(namespace) {
                ns.remove(key);
            }
        })
    }

    /// An upload finished as blob `digest`: keep its bytes reserved under the digest until an
    /// image references it (or the entry expires).
    pub fn committed(&self, namespace: &str, upload: &str, digest: &str) {
        let bytes = self.with(|m| {
            m.get_mut(namespace)
                .and_then(|ns| ns.remove(upload))
                .map(|e| e.bytes)
        });
        if let Some(b) = bytes {
            self.put(namespace, digest, b, Some(0));
        }
    }

    /// An image now references these blobs: the namespace's quota usage counts them.
    pub fn referenced(&self, namespace: &str, digests: &[String]) {
        self.with(|m| {
            if let Some(ns) = m.get_mut(namespace) {
                for d in digests {
                    ns.remove(d);
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations() {
        let l = Ledger::new(Duration::from_secs(60));
        l.set("ns", "u1", 100);
        l.set("ns", "u2", 50);
        l.set("other", "u3", 7);
        // u1 came first: it leaves room only for what came before it
        assert_eq!(l.reserved_except("ns", "u1"), 0);
        assert_eq!(l.reserved_except("ns", "u2"), 100);
        l.set("ns", "u1", 120);
        assert_eq!(l.reserved_except("ns", "u2"), 120, "u1 keeps its place");
        assert_eq!(l.reserved_except("ns", "none"), 170);
        l.committed("ns", "u2", "sha256:a");
        assert_eq!(
            l.reserved_except("ns", "u1"),
            50,
            "committed blobs come first"
        );
        l.referenced("ns", &["sha256:a".to_string()]);
        assert_eq!(l.reserved_except("ns", "u1"), 0);
        l.remove("ns", "u1");
        assert_eq!(l.reserved_except("ns", ""), 0);
    }

    #[test]
    fn entries_expire() {
        let l = Ledger::new(Duration::from_millis(1));
        l.set("ns", "u1", 100);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(l.reserved_except("ns", ""), 0);
    }
}
