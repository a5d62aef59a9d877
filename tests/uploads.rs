//! Upload shapes through the gateway: docker's single chunked PATCH without a length, OCI
//! chunked uploads with Content-Range, and a monolithic PUT; Location headers point at the
//! gateway.

mod common;

use common::*;

#[tokio::test]
async fn docker_style_single_chunked_patch() {
    let stack = Stack::start();
    let data = noise(11, 5 * 1024 * 1024 + 123);
    let digest = digest_of(&data);
    let loc = start_upload(&stack, "demo/docker", DEV).await;
    let r = patch_chunked(&loc, &data, 32 * 1024, DEV).await;
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["range"], format!("0-{}", data.len() - 1));
    let loc = location(&r);
    assert!(
        loc.starts_with(&stack.url("/v2/demo/docker/blobs/uploads/")),
        "{loc}"
    );
    let r = finish_upload(&loc, &digest, DEV).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(
        get_blob(&stack, "demo/docker", &digest, DEV).await,
        (200, data)
    );
}

#[tokio::test]
async fn oci_chunked_upload_with_content_range() {
    let stack = Stack::start();
    let data = noise(12, 3 * 1024 * 1024);
    let digest = digest_of(&data);
    let mut loc = start_upload(&stack, "demo/chunks", DEV).await;
    let mut offset = 0usize;
    for chunk in data.chunks(1024 * 1024) {
        let end = offset + chunk.len() - 1;
        let r = client()
            .patch(&loc)
            .bearer_auth(DEV)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Range", format!("{offset}-{end}"))
            .header("Content-Length", chunk.len().to_string())
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        assert_eq!(r.headers()["range"], format!("0-{end}"));
        loc = location(&r);
        offset = end + 1;
    }
    // status of the session
    let r = client().get(&loc).bearer_auth(DEV).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let r = finish_upload(&loc, &digest, DEV).await;
    assert_eq!(r.status(), 201);
    assert_eq!(
        get_blob(&stack, "demo/chunks", &digest, DEV).await,
        (200, data)
    );
}

#[tokio::test]
async fn monolithic_post_with_digest() {
    // Distribution 2.8 ignores the body of `POST ?digest=` (it only opens a session); the
    // gateway turns it into POST + PUT so the spec's single-request upload works.
    let stack = Stack::start();
    let data = noise(14, 300_000);
    let digest = digest_of(&data);
    let r = client()
        .post(stack.url(&format!("/v2/demo/post/blobs/uploads/?digest={digest}")))
        .bearer_auth(DEV)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
    assert_eq!(
        get_blob(&stack, "demo/post", &digest, DEV).await,
        (200, data)
    );
}

#[tokio::test]
async fn monolithic_put_and_cancel() {
    let stack = Stack::start();
    let data = noise(13, 200_000);
    let digest = digest_of(&data);
    // a session completed with one PUT carrying the whole blob
    let loc = start_upload(&stack, "demo/mono", DEV).await;
    let r = client()
        .put(with_digest(&loc, &digest))
        .bearer_auth(DEV)
        .header("Content-Type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        get_blob(&stack, "demo/mono", &digest, DEV).await,
        (200, data.clone())
    );
    // HEAD carries the length
    let r = stack
        .head(&format!("/v2/demo/mono/blobs/{digest}"), DEV)
        .await;
    assert_eq!(r.headers()["content-length"], data.len().to_string());

    // cancel an upload: needs push only
    let loc = start_upload(&stack, "demo/mono", DEV).await;
    let r = client()
        .delete(&loc)
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client().delete(&loc).bearer_auth(DEV).send().await.unwrap();
    assert_eq!(r.status(), 204);
}

#[tokio::test]
async fn client_authorization_is_not_forwarded_and_forwarded_headers_are_overwritten() {
    let stack = Stack::start();
    // a spoofed X-Forwarded-Host must not steer the Location the client gets
    let r = client()
        .post(stack.url("/v2/demo/fwd/blobs/uploads/"))
        .bearer_auth(DEV)
        .header("X-Forwarded-Host", "evil.example")
        .header("X-Forwarded-Proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = location(&r);
    assert!(
        loc.starts_with(&format!("http://{}/", stack.host())),
        "{loc}"
    );
    // the registry's own log never sees the token
    let reg = std::fs::read_to_string(&stack.registry.log).unwrap();
    assert!(!reg.contains(DEV));
    assert!(
        !stack.gateway_log().contains(DEV),
        "the gateway must never log tokens"
    );
}
