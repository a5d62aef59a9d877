//! Push and pull through the gateway with real skopeo against a real docker-registry.

mod common;

use common::*;

fn copy_roundtrip(stack: &Stack, repo: &str, push_auth: &str, pull_auth: &str) {
    let src = tempfile::tempdir().unwrap();
    let digest = oci_image(src.path(), "v1", 7, &[300_000, 1_500_000, 40_000]);
    let (ok, out) = push(stack, src.path(), repo, push_auth);
    assert!(ok, "push failed: {out}\n{}", stack.gateway_log());
    let back = tempfile::tempdir().unwrap();
    let (ok, out) = pull(stack, repo, back.path(), pull_auth);
    assert!(ok, "pull failed: {out}\n{}", stack.gateway_log());
    assert_eq!(oci_manifest_digest(back.path(), "v1"), digest);
    let (a, b) = (
        tree_digests(&src.path().join("blobs")),
        tree_digests(&back.path().join("blobs")),
    );
    assert_eq!(a, b, "blobs differ");
}

#[test]
fn skopeo_push_pull_with_credentials_via_token_endpoint() {
    let stack = Stack::start();
    copy_roundtrip(
        &stack,
        "demo/app",
        &format!("--dest-creds=anyone:{DEV}"),
        &format!("--src-creds=ignored:{DEV}"),
    );
}

#[test]
fn skopeo_push_pull_with_bearer_token() {
    let stack = Stack::start();
    copy_roundtrip(
        &stack,
        "demo/bearer",
        &format!("--dest-registry-token={DEV}"),
        &format!("--src-registry-token={DEV}"),
    );
}

#[test]
fn skopeo_anonymous_pull_of_public_namespace() {
    let stack = Stack::start();
    copy_roundtrip(
        &stack,
        "public/base",
        &format!("--dest-creds=x:{DEV}"),
        "--src-no-creds",
    );
}
