//! Operating the gateway: metrics, audit log, readiness, overload protection, header limits.

mod common;

use std::time::Duration;

use common::*;
use futures_util::stream;
use serde_json::Value;

const OPS: &str = "\n[metrics]\nsecret_file = \"metrics.secret\"\n\n[audit]\nenabled = true\nfile = \"audit.log\"\n\n[overload]\nwrite_max_running = 1\nwrite_max_in_queue = 0\n";

fn ops_stack() -> Stack {
    // the secret file must exist before the gateway reads its config
    Stack::start_with_files(OPS, &[("metrics.secret", "metrics-secret-123")])
}

#[tokio::test]
async fn metrics_and_audit_for_a_push_and_a_denial() {
    let stack = ops_stack();
    let src = tempfile::tempdir().unwrap();
    oci_image(src.path(), "v1", 5, &[10_000]);
    let (ok, out) = push(
        &stack,
        src.path(),
        "demo/audited",
        &format!("--dest-creds=x:{DEV}"),
    );
    assert!(ok, "{out}");
    let r = stack.get("/v2/secret/app/tags/list", VIEWER).await;
    assert_eq!(r.status(), 401);

    // metrics: the secret reads them, a user without the right does not
    let r = stack.get("/extensions/v2/metrics", DEV).await;
    assert_eq!(r.status(), 401);
    let r = stack
        .get("/extensions/v2/metrics", "metrics-secret-123")
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(
        text.contains(
            "portcullis_requests_total{method=\"PUT\",route=\"manifest\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("status=\"401\""), "{text}");
    assert!(text.contains("portcullis_decision_cache_hits_total"));
    assert!(text.contains("portcullis_request_duration_seconds_bucket"));

    // audit: JSON lines for the push and the denial, with the user name and no token
    let audit = std::fs::read_to_string(stack.dir.path().join("audit.log")).unwrap();
    assert!(
        !audit.contains(DEV) && !audit.contains(VIEWER),
        "tokens in the audit log"
    );
    let lines: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["action"] == "push"
            && l["user"] == "developer"
            && l["repository"] == "audited"
            && l["namespace"] == "demo"),
        "{audit}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["decision"] == "denied" && l["status"] == 401 && l["namespace"] == "secret"),
        "{audit}"
    );
}

#[tokio::test]
async fn readiness_follows_the_upstream() {
    let mut stack = ops_stack();
    assert_eq!(status_of(&stack, "/readyz").await, 200);
    stack.registry.kill();
    let r = client().get(stack.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("upstream"));
    // liveness stays up
    assert_eq!(status_of(&stack, "/healthz").await, 200);
}

#[tokio::test]
async fn overload_gives_429_with_retry_after_and_header_limits_431() {
    let stack = ops_stack();
    let loc = start_upload(&stack, "demo/slow", DEV).await;
    // hold the only write slot with a slowly streamed PATCH
    let slow = stream::unfold(0u32, |i| async move {
        if i >= 20 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        Some((Ok::<_, std::io::Error>(vec![0u8; 1024]), i + 1))
    });
    let c = client();
    let held = tokio::spawn(async move {
        c.patch(loc)
            .bearer_auth(DEV)
            .body(reqwest::Body::wrap_stream(slow))
            .send()
            .await
            .unwrap()
            .status()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = stack.post("/v2/demo/slow/blobs/uploads/", DEV).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(error_of(r).await.1, "TOOMANYREQUESTS");
    // reads are a separate class
    let r = stack.get("/v2/", DEV).await;
    assert_eq!(r.status(), 200);
    assert_eq!(held.await.unwrap(), 202);

    let mut req = client().get(stack.url("/v2/")).bearer_auth(DEV);
    for i in 0..150 {
        req = req.header(format!("x-filler-{i}"), "x");
    }
    assert_eq!(req.send().await.unwrap().status(), 431);
}
