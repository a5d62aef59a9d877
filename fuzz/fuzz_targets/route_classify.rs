//! `route::classify(path, Some(query))` on arbitrary input.
//!
//! Input: `<path>?<query>` (split at the first `?`; no `?` means an empty query), decoded as
//! UTF-8 lossily so every byte string is a request. Properties: never panics; every repository,
//! digest and reference in an `Ok` route re-parses from its `Display` form to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::route::{classify, Digest, Reference, Repo, Route};

fn repo_round_trips(repo: &Repo) {
    let shown = repo.to_string();
    let again = Repo::parse(&shown)
        .unwrap_or_else(|e| panic!("repo {repo:?} shown as {shown:?} does not re-parse: {e:?}"));
    assert_eq!(&again, repo, "repo {shown:?} did not round-trip");
}

fn digest_round_trips(digest: &Digest) {
    let shown = digest.to_string();
    let again = Digest::parse(&shown)
        .unwrap_or_else(|e| panic!("digest {shown:?} does not re-parse: {e:?}"));
    assert_eq!(&again, digest, "digest {shown:?} did not round-trip");
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    let (path, query) = input.split_once('?').unwrap_or((&input, ""));
    let Ok(route) = classify(path, Some(query)) else {
        return;
    };
    let _ = route.class();
    if let Some(repo) = route.repo() {
        repo_round_trips(repo);
    }
    match &route {
        Route::Manifest { reference, .. } => {
            let shown = reference.to_string();
            let again = Reference::parse(&shown)
                .unwrap_or_else(|e| panic!("reference {shown:?} does not re-parse: {e:?}"));
            assert_eq!(&again, reference);
        }
        Route::Blob { digest, .. }
        | Route::Referrers { digest, .. }
        | Route::AdminBlob { digest }
        | Route::Signatures { digest, .. } => digest_round_trips(digest),
        Route::UploadStart { mount, digest, .. } => {
            if let Some(m) = mount {
                repo_round_trips(&m.from);
                digest_round_trips(&m.digest);
            }
            if let Some(d) = digest {
                digest_round_trips(d);
            }
        }
        Route::Upload { digest, .. } => {
            if let Some(d) = digest {
                digest_round_trips(d);
            }
        }
        _ => {}
    }
});
