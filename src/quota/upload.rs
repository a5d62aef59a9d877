//! Facts about one upload request, from its headers and URL (pure): where in the blob its bytes
//! start, how many it declares, and whether chunks arrive in order.
//!
//! The offset is never taken from one replica's memory: it comes from the request itself —
//! `Content-Range`, or the `_state` token Distribution put in the upload URL (JSON after a
//! 32-byte HMAC; the upstream rejects a request whose `_state` is forged or whose offset is not
//! the session's real size, so a client cannot lie about it and still get bytes stored).

use base64::Engine as _;

/// A parsed `Content-Range: <start>-<end>` (inclusive; the OCI form, no `bytes ` unit needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
}

impl ContentRange {
    /// Number of bytes in the range (never zero: `end >= start`). A hand-made `0-u64::MAX` range
    /// (2^64 bytes; the parser refuses it) saturates to `u64::MAX` instead of overflowing to 0.
    pub fn bytes(&self) -> u64 {
        (self.end - self.start).saturating_add(1)
    }
}

/// Parse `start-end` (also accepts a `bytes ` prefix and a `/total` suffix).
pub fn parse_content_range(v: &str) -> Option<ContentRange> {
    let v = v.trim();
    let v = v
        .strip_prefix("bytes ")
        .or_else(|| v.strip_prefix("bytes="))
        .unwrap_or(v);
    let v = v.split('/').next()?;
    let (a, b) = v.split_once('-')?;
    let (start, end) = (a.trim().parse::<u64>().ok()?, b.trim().parse::<u64>().ok()?);
    // `end < u64::MAX`: the exclusive end `end + 1` (= offset + bytes, what quota checks add up)
    // must fit in a u64
    (end >= start && end < u64::MAX).then_some(ContentRange { start, end })
}

/// The offset recorded in Distribution's `_state` upload token, if it decodes.
pub fn state_offset(state: &str) -> Option<u64> {
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(state)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(state.trim_end_matches('='))
        })
        .ok()?;
    let json = raw.get(32..)?;
    let v: serde_json::Value = serde_json::from_slice(json).ok()?;
    v.get("Offset")?.as_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("0-99"),
            Some(ContentRange { start: 0, end: 99 })
        );
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some(ContentRange {
                start: 100,
                end: 199
            })
        );
        assert_eq!(parse_content_range("5-4"), None);
        assert_eq!(parse_content_range("x-4"), None);
        assert_eq!(parse_content_range("5"), None);
        assert_eq!(ContentRange { start: 10, end: 19 }.bytes(), 10);
    }

    #[test]
    fn ranges_ending_at_u64_max_are_refused() {
        // found by fuzzing (fuzz/artifacts/upload_ranges/repro-full-u64-range): `0-u64::MAX`
        // parsed, and `bytes()` (`end - start + 1`) overflowed: a panic with overflow checks, 0
        // declared bytes without them (so a chunk passed the quota check unmetered). Any range
        // ending at u64::MAX also overflowed the gateway's `offset + bytes`.
        assert_eq!(parse_content_range("000-18446744073709551615"), None);
        assert_eq!(parse_content_range("5-18446744073709551615"), None);
        assert_eq!(
            parse_content_range("0-18446744073709551614").map(|r| r.bytes()),
            Some(u64::MAX)
        );
        let cr = |start, end| ContentRange { start, end };
        assert_eq!(cr(0, u64::MAX).bytes(), u64::MAX);
        assert_eq!(cr(u64::MAX, u64::MAX).bytes(), 1);
    }

    #[test]
    fn state_tokens() {
        let json =
            br#"{"Name":"ns/is","UUID":"u","Offset":12345,"StartedAt":"2026-01-01T00:00:00Z"}"#;
        let mut raw = vec![7u8; 32];
        raw.extend_from_slice(json);
        let token = base64::engine::general_purpose::URL_SAFE.encode(&raw);
        assert_eq!(state_offset(&token), Some(12345));
        assert_eq!(state_offset("not base64!"), None);
        assert_eq!(
            state_offset(&base64::engine::general_purpose::URL_SAFE.encode([1u8; 10])),
            None
        );
    }
}
