//! Quota enforced mid-stream: oversized uploads are cut off while they stream, the client gets
//! DENIED, and the upstream keeps nothing of them. Namespace `quota` has an
//! `openshift.io/Image` `max.storage` of 1 MiB; namespace `shared` an `openshift.io/image-storage`
//! quota of 3 MiB (see tests/common).

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::stream;
use reqwest::StatusCode;
use serde_json::Value;

const LIMIT: usize = 1 << 20;

/// A streamed body without a length (chunked), in 32 KiB pieces, optionally paced.
fn chunked(data: &[u8], pause: Duration) -> reqwest::Body {
    let chunks: Vec<Vec<u8>> = data.chunks(32 * 1024).map(<[u8]>::to_vec).collect();
    let s = stream::unfold(chunks.into_iter(), move |mut it| async move {
        let c = it.next()?;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        Some((Ok::<_, std::io::Error>(c), it))
    });
    reqwest::Body::wrap_stream(s)
}

/// Upload with the given shape; returns the final response.
async fn upload(stack: &Stack, repo: &str, shape: &str, data: &[u8]) -> reqwest::Response {
    let digest = digest_of(data);
    let c = client();
    // the whole of `data` in one body: with a length, or chunked without one
    let body = || {
        if shape.ends_with("-chunked") {
            chunked(data, Duration::ZERO)
        } else {
            reqwest::Body::from(data.to_vec())
        }
    };
    match shape {
        "post" | "post-chunked" => c
            .post(stack.url(&format!("/v2/{repo}/blobs/uploads/?digest={digest}")))
            .bearer_auth(DEV)
            .body(body())
            .send()
            .await
            .unwrap(),
        "put" | "put-chunked" => {
            let loc = start_upload(stack, repo, DEV).await;
            c.put(with_digest(&loc, &digest))
                .bearer_auth(DEV)
                .body(body())
                .send()
                .await
                .unwrap()
        }
        "patch-range" | "patch-chunked" => {
            let mut loc = start_upload(stack, repo, DEV).await;
            let mut offset = 0;
            for part in data.chunks(600 * 1024) {
                let req = c
                    .patch(&loc)
                    .bearer_auth(DEV)
                    .header("Content-Type", "application/octet-stream");
                let req = if shape == "patch-range" {
                    req.header(
                        "Content-Range",
                        format!("{offset}-{}", offset + part.len() - 1),
                    )
                    .body(part.to_vec())
                } else {
                    req.body(chunked(part, Duration::ZERO))
                };
                let r = req.send().await.unwrap();
                if r.status() != 202 {
                    return r;
                }
                loc = location(&r);
                offset += part.len();
            }
            finish_upload(&loc, &digest, DEV).await
        }
        other => panic!("unknown shape {other}"),
    }
}

#[tokio::test]
async fn every_upload_shape_is_limited() {
    let stack = Stack::start();
    for (i, shape) in [
        "post",
        "post-chunked",
        "put",
        "put-chunked",
        "patch-range",
        "patch-chunked",
    ]
    .iter()
    .enumerate()
    {
        let repo = format!("quota/{shape}");
        // just under the limit: works, and the blob is there
        let small = noise(100 + i as u64, LIMIT - 1000);
        let r = upload(&stack, &repo, shape, &small).await;
        assert_eq!(
            r.status(),
            201,
            "{shape} under the limit: {}",
            r.text().await.unwrap()
        );
        let head = stack
            .head(&format!("/v2/{repo}/blobs/{}", digest_of(&small)), DEV)
            .await;
        assert_eq!(head.status(), 200, "{shape}");
        // just over (and far over): DENIED, nothing left upstream
        for size in [LIMIT + 1, 4 * LIMIT] {
            let big = noise(200 + i as u64, size);
            let msg = denied(upload(&stack, &repo, shape, &big).await).await;
            assert!(
                msg.contains("openshift.io/Image")
                    && msg.contains("\"quota\"")
                    && msg.contains("1048576"),
                "{shape}: {msg}"
            );
            assert_eq!(
                stack.upload_leftovers(&repo),
                0,
                "{shape} {size}: upload data left in the upstream"
            );
            let head = stack
                .head(&format!("/v2/{repo}/blobs/{}", digest_of(&big)), DEV)
                .await;
            assert_eq!(head.status(), 404, "{shape}");
        }
        // the next legal push works
        let again = noise(300 + i as u64, 1000);
        let r = upload(&stack, &repo, shape, &again).await;
        assert_eq!(r.status(), 201, "{shape} after a refusal");
    }
    // the gateway forwarded at most the limit plus one chunk of any refused streamed upload
    let log = stack.gateway_log();
    for line in log.lines().filter(|l| l.contains("refused (quota)")) {
        if let Some(n) = line
            .split("bytes_upstream=")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok())
        {
            assert!(n <= LIMIT + 64 * 1024, "forwarded {n} bytes: {line}");
        }
    }
}

#[tokio::test]
async fn out_of_order_chunks_get_416() {
    let stack = Stack::start();
    let loc = start_upload(&stack, "demo/order", DEV).await;
    let r = client()
        .patch(&loc)
        .bearer_auth(DEV)
        .header("Content-Range", "0-9")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = location(&r);
    let r = client()
        .patch(&loc)
        .bearer_auth(DEV)
        .header("Content-Range", "20-29")
        .body(vec![1u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"][0]["code"], "RANGE_INVALID");
    assert_eq!(v["errors"][0]["detail"]["Range"], "0-9");
}

#[test]
fn skopeo_push_of_an_oversized_layer_is_denied_quickly() {
    let stack = Stack::start();
    let src = tempfile::tempdir().unwrap();
    oci_image(src.path(), "v1", 51, &[20_000, 64 * LIMIT]);
    let t = Instant::now();
    let (ok, out) = push(
        &stack,
        src.path(),
        "quota/big",
        &format!("--dest-creds=x:{DEV}"),
    );
    let took = t.elapsed();
    assert!(!ok, "{out}");
    assert!(
        out.contains("denied") && out.contains("openshift.io/Image"),
        "the user sees why: {out}"
    );
    // far less than the whole layer went upstream
    let log = stack.gateway_log();
    let forwarded: usize = log
        .lines()
        .filter(|l| l.contains("quota/big") && l.contains("method=PATCH"))
        .filter_map(|l| {
            l.split("bytes_upstream=")
                .nth(1)?
                .split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum();
    assert!(
        forwarded <= 2 * LIMIT,
        "forwarded {forwarded} bytes of a 64 MiB layer"
    );
    assert_eq!(stack.upload_leftovers("quota/big"), 0);
    eprintln!("skopeo refused in {took:?}, {forwarded} bytes forwarded");
}

#[tokio::test]
async fn parallel_pushes_cannot_overshoot_the_namespace_quota() {
    let stack = Stack::start();
    // two 2 MiB blobs streamed at the same time into a 3 MiB namespace quota
    let (a, b) = (noise(61, 2 * LIMIT), noise(62, 2 * LIMIT));
    let push_one = async |data: Vec<u8>, repo: &str| {
        let loc = start_upload(&stack, repo, DEV).await;
        let r = client()
            .patch(&loc)
            .bearer_auth(DEV)
            .body(chunked(&data, Duration::from_millis(5)))
            .send()
            .await
            .unwrap();
        if r.status() != 202 {
            return (r.status(), String::new());
        }
        let r = finish_upload(&location(&r), &digest_of(&data), DEV).await;
        (r.status(), digest_of(&data))
    };
    let (ra, rb) = tokio::join!(push_one(a, "shared/one"), push_one(b, "shared/two"));
    let statuses = [ra.0, rb.0];
    assert!(
        statuses.contains(&StatusCode::CREATED) && statuses.contains(&StatusCode::FORBIDDEN),
        "{statuses:?}"
    );
    assert_eq!(
        stack.upload_leftovers("shared/one") + stack.upload_leftovers("shared/two"),
        0
    );
    // make the winner an image; usage stays under the hard limit
    let (winner, digest) = if ra.0 == StatusCode::CREATED {
        ("shared/one", ra.1)
    } else {
        ("shared/two", rb.1)
    };
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let r = client()
        .post(stack.url(&format!(
            "/v2/{winner}/blobs/uploads/?digest={}",
            digest_of(config)
        )))
        .bearer_auth(DEV)
        .body(config.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let m = serde_json::to_vec(&serde_json::json!({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":digest_of(config),"size":config.len()},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":digest,"size":2 * LIMIT}]})).unwrap();
    let r = put_manifest(
        &stack,
        winner,
        "v1",
        "application/vnd.oci.image.manifest.v1+json",
        m,
        DEV,
    )
    .await;
    assert_eq!(r.status(), 201);
    let (_, q) = stack
        .api_get("/api/v1/namespaces/shared/resourcequotas")
        .await;
    let used: u64 = q["items"][0]["status"]["used"]["openshift.io/image-storage"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        used <= 3 * LIMIT as u64 && used >= 2 * LIMIT as u64,
        "used {used}"
    );
    // a further 2 MiB blob does not fit any more
    let c = noise(63, 2 * LIMIT);
    denied(upload(&stack, "shared/three", "patch-chunked", &c).await).await;
}

#[tokio::test]
async fn limit_changes_are_enforced_within_the_ttl() {
    let stack = Stack::start();
    let data = noise(71, LIMIT + LIMIT / 2);
    denied(upload(&stack, "quota/change", "put", &data).await).await;
    stack.set_policy(&policy_with_blob_limit("2Mi"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = upload(&stack, "quota/change", "put", &data).await;
        if r.status() == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the raised limit was not applied in time"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn a_gateway_restart_between_patches_keeps_the_cumulative_limit() {
    let mut stack = Stack::start();
    let loc = start_upload(&stack, "quota/restart", DEV).await;
    let r = client()
        .patch(&loc)
        .bearer_auth(DEV)
        .header("Content-Range", format!("0-{}", 700 * 1024 - 1))
        .body(noise(81, 700 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let loc = location(&r);
    stack.restart_gateway();
    // docker-style: no Content-Range, no length; 700 KiB more crosses 1 MiB in total
    let r = client()
        .patch(&loc)
        .bearer_auth(DEV)
        .body(chunked(&noise(82, 700 * 1024), Duration::ZERO))
        .send()
        .await
        .unwrap();
    denied(r).await;
    assert_eq!(stack.upload_leftovers("quota/restart"), 0);
}
