//! Push and pull through the gateway with real skopeo against a real docker-registry.

mod common;

use common::*;

fn copy_roundtrip(stack: &Stack, repo: &str, push_auth: &[&str], pull_auth: &[&str]) {
    let src = tempfile::tempdir().unwrap();
    let digest = oci_image(src.path(), "v1", 7, &[300_000, 1_500_000, 40_000]);
    let dest = format!("docker://{}/{repo}:v1", stack.host());
    let mut args = vec!["copy", "--dest-tls-verify=false"];
    args.extend_from_slice(push_auth);
    let src_ref = format!("oci:{}:v1", src.path().display());
    args.extend_from_slice(&[&src_ref, &dest]);
    let (ok, out) = skopeo(&args);
    assert!(ok, "push failed: {out}\n{}", stack.gateway_log());

    let back = tempfile::tempdir().unwrap();
    let back_ref = format!("oci:{}:v1", back.path().display());
    let mut args = vec!["copy", "--src-tls-verify=false"];
    args.extend_from_slice(pull_auth);
    args.extend_from_slice(&[&dest, &back_ref]);
    let (ok, out) = skopeo(&args);
    assert!(ok, "pull failed: {out}\n{}", stack.gateway_log());
    assert_eq!(oci_manifest_digest(back.path(), "v1"), digest);
    let (a, b) = (tree_digests(&src.path().join("blobs")), tree_digests(&back.path().join("blobs")));
    assert_eq!(a, b, "blobs differ");
}

#[test]
fn skopeo_push_pull_with_credentials_via_token_endpoint() {
    let stack = Stack::start();
    let creds = format!("--dest-creds=anyone:{DEV}");
    let src_creds = format!("--src-creds=ignored:{DEV}");
    copy_roundtrip(&stack, "demo/app", &[&creds], &[&src_creds]);
}

#[test]
fn skopeo_push_pull_with_bearer_token() {
    let stack = Stack::start();
    let t = format!("--dest-registry-token={DEV}");
    let s = format!("--src-registry-token={DEV}");
    copy_roundtrip(&stack, "demo/bearer", &[&t], &[&s]);
}

#[test]
fn skopeo_anonymous_pull_of_public_namespace() {
    let stack = Stack::start();
    let creds = format!("--dest-creds=x:{DEV}");
    copy_roundtrip(&stack, "public/base", &[&creds], &["--src-no-creds"]);
}
