//! `manifest::parse(content_type, body)` on arbitrary input.
//!
//! Input: `<content-type>\n<body>`; an empty first line means no `Content-Type`, and an input
//! without `\n` is a body with no `Content-Type`. Properties: never panics; when `Ok`, `digest` is
//! the sha256 of the exact body bytes, and a declared (non-generic) Content-Type agrees with the
//! manifest kind.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::manifest::parse::{bare, parse};
use portcullis::route::Digest;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let ct = std::str::from_utf8(&data[..i]).ok();
            (ct.filter(|c| !c.is_empty()), &data[i + 1..])
        }
        None => (None, data),
    };
    let Ok(m) = parse(content_type, body) else {
        return;
    };
    assert_eq!(
        m.digest,
        Digest::sha256_of(body),
        "digest is not sha256(body)"
    );
    if let Some(ct) = content_type.map(bare) {
        if !ct.is_empty() && ct != "application/json" {
            assert_eq!(m.kind.media_type(), ct, "kind disagrees with Content-Type");
        }
    }
    let _ = m.blobs();
    let _ = m.referrer_artifact_type();
});
