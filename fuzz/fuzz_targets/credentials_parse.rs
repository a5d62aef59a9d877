//! `auth::credentials::parse(Some(bytes))` on the raw `Authorization` header value.
//!
//! Properties: never panics; a `Token` is non-empty visible ASCII (it is sent on to the API
//! unchanged), and its `Debug` form never contains the secret when the secret is long enough
//! not to collide with the fingerprint text by chance.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::auth::credentials::{parse, Credentials};

fuzz_target!(|data: &[u8]| {
    if let Ok(Credentials::Token(t)) = parse(Some(data)) {
        let s = t.expose();
        assert!(!s.is_empty(), "empty token accepted from {data:?}");
        assert!(
            s.bytes().all(|c| c.is_ascii_graphic()),
            "token {s:?} is not visible ASCII (from {data:?})"
        );
        if s.len() >= 16 {
            assert!(!format!("{t:?}").contains(s), "Debug shows the token");
        }
    }
});
