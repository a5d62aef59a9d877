//! Authentication and authorization through the gateway: denials, challenges, bad input, the
//! decision cache, failing closed, and cross-repository mounts.

mod common;

use base64::Engine as _;
use common::*;
use reqwest::header::HeaderValue;
use reqwest::StatusCode;
use serde_json::Value;

/// A blob path: proxied to the upstream, so only authorization needs the API.
const BLOB: &str =
    "/v2/public/x/blobs/sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn error_code(resp: reqwest::Response) -> (StatusCode, String, Option<String>) {
    let status = resp.status();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (
        status,
        body["errors"][0]["code"].as_str().unwrap_or("").to_string(),
        challenge,
    )
}

/// Push one small image with the developer token, so there is something to pull.
fn seed(stack: &Stack, repo: &str, token: &str) -> String {
    let src = tempfile::tempdir().unwrap();
    let digest = oci_image(src.path(), "v1", 3, &[20_000, 30_000]);
    let (ok, out) = push(
        stack,
        src.path(),
        repo,
        &format!("--dest-registry-token={token}"),
    );
    assert!(ok, "{out}");
    digest
}

#[tokio::test]
async fn denials_are_401_with_basic_access_denied() {
    let stack = Stack::start();
    seed(&stack, "secret/app", SECRET_OWNER);
    let denied = r#"Basic realm=openshift,error="access denied""#;

    // pull without permission
    let r = client()
        .get(stack.url("/v2/secret/app/tags/list"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        (
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED".into(),
            Some(denied.into())
        )
    );
    let back = tempfile::tempdir().unwrap();
    let (ok, out) = pull(
        &stack,
        "secret/app",
        back.path(),
        &format!("--src-creds=u:{VIEWER}"),
    );
    assert!(!ok && out.to_lowercase().contains("unauthorized"), "{out}");

    // push with a pull-only token
    let r = client()
        .post(stack.url("/v2/demo/app/blobs/uploads/"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        (
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED".into(),
            Some(denied.into())
        )
    );
    let src = tempfile::tempdir().unwrap();
    oci_image(src.path(), "v1", 9, &[1000]);
    let (ok, out) = push(
        &stack,
        src.path(),
        "demo/app",
        &format!("--dest-creds=u:{VIEWER}"),
    );
    assert!(!ok, "{out}");

    // anonymous push into a public (pull-only) namespace
    let r = client()
        .post(stack.url("/v2/public/app/blobs/uploads/"))
        .header("Authorization", "Bearer anonymous")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.0, StatusCode::UNAUTHORIZED);
    let (ok, out) = push(&stack, src.path(), "public/app", "--dest-no-creds");
    assert!(!ok, "{out}");

    // the upstream never saw the refused push
    assert!(!stack
        .storage()
        .join("docker/registry/v2/repositories/demo")
        .exists());
    assert!(!stack
        .storage()
        .join("docker/registry/v2/repositories/public")
        .exists());
    // an unknown token is denied, not an error
    let r = client()
        .get(stack.url("/v2/public/app/tags/list"))
        .bearer_auth("no-such-token")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn challenges_base_and_token_endpoint() {
    let stack = Stack::start();
    let c = client();
    // no credentials: Bearer challenge with the token realm derived from the request
    let r = c.get(stack.url("/v2/")).send().await.unwrap();
    let realm = format!(r#"Bearer realm="http://{}/openshift/token""#, stack.host());
    assert_eq!(
        error_code(r).await,
        (StatusCode::UNAUTHORIZED, "UNAUTHORIZED".into(), Some(realm))
    );
    // valid token (Basic, user name ignored) → 200 {}
    let r = c
        .get(stack.url("/v2/"))
        .basic_auth("whoever", Some(DEV))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(r.text().await.unwrap(), "{}");
    // anonymous → 200
    let r = c
        .get(stack.url("/v2/"))
        .header("Authorization", "Bearer anonymous")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // invalid token → Basic access denied
    let r = c
        .get(stack.url("/v2/"))
        .bearer_auth("bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await.2.as_deref(),
        Some(r#"Basic realm=openshift,error="access denied""#)
    );

    // token endpoint
    let r = c.get(stack.url("/openshift/token")).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"token":"anonymous","access_token":"anonymous"})
    );
    let r = c
        .get(stack.url("/openshift/token?scope=repository:demo/app:pull"))
        .basic_auth("u", Some(DEV))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"token":DEV,"access_token":DEV})
    );
    let r = c
        .get(stack.url("/openshift/token"))
        .basic_auth("u", Some("bogus"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(stack.url("/openshift/token"))
        .bearer_auth(DEV)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = c
        .get(stack.url("/openshift/token?scope=repository:a/b/c:pull"))
        .basic_auth("u", Some(DEV))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // health is public
    assert_eq!(
        c.get(stack.url("/healthz")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test]
async fn bad_input_gets_the_documented_codes() {
    let stack = Stack::start();
    let c = client();
    let path = "/v2/demo/app/tags/list";
    let cases: Vec<(String, &str, StatusCode, &str)> = vec![
        (
            format!("Basic {}", "!!!notbase64"),
            path,
            StatusCode::UNAUTHORIZED,
            "failed to decode credentials",
        ),
        (
            format!("Basic {}", b64("nocolon")),
            path,
            StatusCode::UNAUTHORIZED,
            "failed to decode credentials",
        ),
        (
            format!("Basic {}", b64("user:")),
            path,
            StatusCode::UNAUTHORIZED,
            "failed to decode credentials",
        ),
        (
            "Digest abc".to_string(),
            path,
            StatusCode::UNAUTHORIZED,
            "Bearer realm=",
        ),
        (
            "Bearer".to_string(),
            path,
            StatusCode::UNAUTHORIZED,
            "Bearer realm=",
        ),
        (
            format!("Bearer {}", "a".repeat(16 * 1024)),
            path,
            StatusCode::UNAUTHORIZED,
            "failed to decode credentials",
        ),
    ];
    for (auth, p, status, challenge) in cases {
        let r = c
            .get(stack.url(p))
            .header("Authorization", HeaderValue::from_str(&auth).unwrap())
            .send()
            .await
            .unwrap();
        let (st, code, ch) = error_code(r).await;
        assert_eq!(
            (st, code.as_str()),
            (status, "UNAUTHORIZED"),
            "{}",
            &auth[..auth.len().min(40)]
        );
        assert!(
            ch.unwrap_or_default().contains(challenge),
            "{}",
            &auth[..auth.len().min(40)]
        );
    }

    let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    let names: Vec<(String, &str)> = vec![
        ("/v2/demo/tags/list".into(), "NAME_INVALID"),
        ("/v2/a/b/c/tags/list".into(), "NAME_INVALID"),
        ("/v2/demo/../app/tags/list".into(), "NAME_INVALID"),
        ("/v2/Demo/app/manifests/latest".into(), "NAME_INVALID"),
        ("/v2/demo/App/blobs/uploads/".into(), "NAME_INVALID"),
        ("/v2/demo/app/blobs/sha256:1234".into(), "DIGEST_INVALID"),
        ("/v2/demo/app/manifests/md5:abc".into(), "DIGEST_INVALID"),
        (
            format!("/v2/demo/app/blobs/uploads/?mount={d}&from=onlyone"),
            "NAME_INVALID",
        ),
    ];
    for (p, code) in names {
        // even with good credentials, and before anything else happens
        let r = c.get(stack.url(&p)).bearer_auth(DEV).send().await.unwrap();
        assert_eq!(error_code(r).await.1, code, "{p}");
        let r = c.get(stack.url(&p)).send().await.unwrap();
        let (st, got, _) = error_code(r).await;
        assert_eq!(
            (st, got.as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{p} without credentials"
        );
    }
    // wrong method
    let r = c
        .delete(stack.url("/v2/_catalog"))
        .bearer_auth(DEV)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.1, "UNSUPPORTED");
}

#[tokio::test]
async fn parallel_pulls_cause_one_review_per_access() {
    let stack = Stack::start();
    seed(&stack, "demo/cached", DEV);
    let before = stack.api_stats().await;
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (c, url) = (c.clone(), stack.url("/v2/demo/cached/tags/list"));
        tasks.push(tokio::spawn(async move {
            c.get(url)
                .bearer_auth(READER_ALL)
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let after = stack.api_stats().await;
    let n = |v: &Value| v["selfsubjectaccessreviews"].as_u64().unwrap_or(0);
    assert_eq!(n(&after) - n(&before), 1, "before {before} after {after}");
}

#[tokio::test]
async fn api_down_fails_closed_with_503() {
    let mut stack = Stack::start();
    let c = client();
    // warm the cache for one token
    let r = c
        .head(stack.url(BLOB))
        .bearer_auth(DEV)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 503);
    stack.cluster.kill();
    for token in [VIEWER, READER_ALL] {
        let r = c
            .get(stack.url("/v2/demo/app/tags/list"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let (st, code, _) = error_code(r).await;
        assert_eq!(
            (st, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
        );
    }
    let r = c
        .get(stack.url("/v2/"))
        .bearer_auth(PRUNER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    // a still-valid cached allow keeps working
    let r = c
        .head(stack.url(BLOB))
        .bearer_auth(DEV)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 503);
    assert_ne!(r.status(), 401);
}

#[tokio::test]
async fn mount_from_unreadable_namespace_becomes_a_plain_upload() {
    let stack = Stack::start();
    seed(&stack, "secret/app", SECRET_OWNER);
    // find a layer of the secret image
    let tags = client()
        .get(stack.url("/v2/secret/app/manifests/v1"))
        .bearer_auth(SECRET_OWNER)
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    let manifest: Value = tags.json().await.unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();

    // the developer may push to demo but not read secret: the mount is ignored
    let r = client()
        .post(stack.url(&format!(
            "/v2/demo/app/blobs/uploads/?mount={layer}&from=secret/app"
        )))
        .bearer_auth(DEV)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        202,
        "a refused mount must start a normal upload"
    );
    let r = client()
        .head(stack.url(&format!("/v2/demo/app/blobs/{layer}")))
        .bearer_auth(DEV)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "the blob must not have leaked into demo/app"
    );

    // a reader of secret who may push to demo gets the mount
    let r = client()
        .post(stack.url(&format!(
            "/v2/demo/app2/blobs/uploads/?mount={layer}&from=secret/app"
        )))
        .bearer_auth(READER_ALL)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .contains("/v2/demo/app2/blobs/"));
}

#[tokio::test]
async fn legacy_oapi_reviews() {
    let stack = Stack::start_with("review_api = \"legacy\"");
    seed(&stack, "public/legacy", DEV);
    let c = client();
    let r = c
        .get(stack.url("/v2/public/legacy/tags/list"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(stack.url("/v2/secret/x/tags/list"))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // anonymous: the review is refused for system:anonymous, the gateway asks on its behalf
    let r = c
        .get(stack.url("/v2/public/legacy/tags/list"))
        .header("Authorization", "Bearer anonymous")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let stats = stack.api_stats().await;
    assert!(
        stats["localsubjectaccessreviews"].as_u64().unwrap() >= 2,
        "{stats}"
    );
    assert_eq!(
        stats["selfsubjectaccessreviews"].as_u64().unwrap(),
        0,
        "{stats}"
    );
}
