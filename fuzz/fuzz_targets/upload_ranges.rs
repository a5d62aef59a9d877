//! `quota::upload::parse_content_range` and `state_offset` on arbitrary input.
//!
//! The input (UTF-8, lossily) is given to both as a header / query value. To reach the JSON half
//! of `_state` (base64 of a 32-byte HMAC followed by JSON), the raw bytes are also base64-encoded
//! (URL-safe, padded and unpadded) and decoded: both encodings must give the same offset.
//! Properties: never panics; a parsed range has `end >= start`, `bytes()` does not overflow, and
//! `start + bytes()` (the exclusive end the gateway's quota check computes) fits in a u64.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use portcullis::quota::upload::{parse_content_range, state_offset};

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Some(r) = parse_content_range(&s) {
        assert!(r.end >= r.start, "range {r:?} from {s:?}");
        assert!(r.bytes() >= 1, "empty range {r:?} from {s:?}");
        // the gateway adds offset (= start) and bytes() for its quota check: must not overflow
        assert_eq!(
            r.start.checked_add(r.bytes()),
            r.end.checked_add(1),
            "{r:?}"
        );
        assert!(
            r.end.checked_add(1).is_some(),
            "exclusive end of {r:?} overflows"
        );
    }
    let _ = state_offset(&s);

    let padded = base64::engine::general_purpose::URL_SAFE.encode(data);
    let unpadded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    assert_eq!(
        state_offset(&padded),
        state_offset(&unpadded),
        "padding changed the offset"
    );
});
