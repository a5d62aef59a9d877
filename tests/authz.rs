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

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Status, registry error code and `WWW-Authenticate` challenge of an answer.
async fn error_code(resp: reqwest::Response) -> (StatusCode, String, Option<String>) {
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string());
    let (status, code, _) = error_of(resp).await;
    (status, code, challenge)
}

/// The challenge of a denied request.
const ACCESS_DENIED: &str = r#"Basic realm=openshift,error="access denied""#;

/// What [`error_code`] gives for a 401 `UNAUTHORIZED` with `challenge`.
fn unauthorized(challenge: &str) -> (StatusCode, String, Option<String>) {
    (
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED".into(),
        Some(challenge.into()),
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

    // pull without permission
    let r = stack.get("/v2/secret/app/tags/list", VIEWER).await;
    assert_eq!(error_code(r).await, unauthorized(ACCESS_DENIED));
    let back = tempfile::tempdir().unwrap();
    let (ok, out) = pull(
        &stack,
        "secret/app",
        back.path(),
        &format!("--src-creds=u:{VIEWER}"),
    );
    assert!(!ok && out.to_lowercase().contains("unauthorized"), "{out}");

    // push with a pull-only token
    let r = stack.post("/v2/demo/app/blobs/uploads/", VIEWER).await;
    assert_eq!(error_code(r).await, unauthorized(ACCESS_DENIED));
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
    let r = stack.post("/v2/public/app/blobs/uploads/", ANONYMOUS).await;
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
    let r = stack.get("/v2/public/app/tags/list", "no-such-token").await;
    assert_eq!(error_code(r).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn challenges_base_and_token_endpoint() {
    let stack = Stack::start();
    let c = client();
    let basic = async |path: &str, user: &str, password: &str| {
        c.get(stack.url(path))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap()
    };
    // no credentials: Bearer challenge with the token realm derived from the request
    let r = c.get(stack.url("/v2/")).send().await.unwrap();
    let realm = format!(r#"Bearer realm="http://{}/openshift/token""#, stack.host());
    assert_eq!(error_code(r).await, unauthorized(&realm));
    // valid token (Basic, user name ignored) → 200 {}
    let r = basic("/v2/", "whoever", DEV).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    assert_eq!(r.text().await.unwrap(), "{}");
    // anonymous → 200
    let r = stack.get("/v2/", ANONYMOUS).await;
    assert_eq!(r.status(), 200);
    // invalid token → Basic access denied
    let r = stack.get("/v2/", "bogus").await;
    assert_eq!(error_code(r).await.2.as_deref(), Some(ACCESS_DENIED));

    // token endpoint
    let r = c.get(stack.url("/openshift/token")).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"token":"anonymous","access_token":"anonymous"})
    );
    let r = basic("/openshift/token?scope=repository:demo/app:pull", "u", DEV).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        serde_json::json!({"token":DEV,"access_token":DEV})
    );
    let r = basic("/openshift/token", "u", "bogus").await;
    assert_eq!(r.status(), 401);
    let r = stack.get("/openshift/token", DEV).await;
    assert_eq!(r.status(), 401);
    let r = basic("/openshift/token?scope=repository:a/b/c:pull", "u", DEV).await;
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
        let r = stack.get(&p, DEV).await;
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
    let r = stack.delete("/v2/_catalog", DEV).await;
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
    // warm the cache for one token
    let r = stack.head(BLOB, DEV).await;
    assert_ne!(r.status(), 503);
    stack.cluster.kill();
    for token in [VIEWER, READER_ALL] {
        let r = stack.get("/v2/demo/app/tags/list", token).await;
        let (st, code, _) = error_code(r).await;
        assert_eq!(
            (st, code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE")
        );
    }
    let r = stack.get("/v2/", PRUNER).await;
    assert_eq!(r.status(), 503);
    // a still-valid cached allow keeps working
    let r = stack.head(BLOB, DEV).await;
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
    let r = stack
        .post(
            &format!("/v2/demo/app/blobs/uploads/?mount={layer}&from=secret/app"),
            DEV,
        )
        .await;
    assert_eq!(
        r.status(),
        202,
        "a refused mount must start a normal upload"
    );
    let r = stack
        .head(&format!("/v2/demo/app/blobs/{layer}"), DEV)
        .await;
    assert_eq!(
        r.status(),
        404,
        "the blob must not have leaked into demo/app"
    );

    // a reader of secret who may push to demo gets the mount
    let r = stack
        .post(
            &format!("/v2/demo/app2/blobs/uploads/?mount={layer}&from=secret/app"),
            READER_ALL,
        )
        .await;
    assert_eq!(r.status(), 201);
    assert!(location(&r).contains("/v2/demo/app2/blobs/"));
}

#[tokio::test]
async fn legacy_oapi_reviews() {
    let stack = Stack::start_with("review_api = \"legacy\"");
    seed(&stack, "public/legacy", DEV);
    let r = stack.get("/v2/public/legacy/tags/list", VIEWER).await;
    assert_eq!(r.status(), 200);
    let r = stack.get("/v2/secret/x/tags/list", VIEWER).await;
    assert_eq!(r.status(), 401);
    // anonymous: the review is refused for system:anonymous, the gateway asks on its behalf
    let r = stack.get("/v2/public/legacy/tags/list", ANONYMOUS).await;
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
