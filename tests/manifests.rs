//! Manifests, tags, referrers and the catalog live in the OpenShift image API.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A small OCI image pushed by hand: returns (manifest bytes, digest).
async fn push_small_image(
    stack: &Stack,
    repo: &str,
    tag: &str,
    seed: u64,
    token: &str,
) -> (Vec<u8>, String) {
    let config = serde_json::to_vec(&json!({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":[format!("S={seed}")]}})).unwrap();
    let layer = noise(seed, 1000);
    let cd = upload_blob(stack, repo, &config, token).await;
    let ld = upload_blob(stack, repo, &layer, token).await;
    let m = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":config.len()},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":ld,"size":layer.len()}]})).unwrap();
    let r = put_manifest(stack, repo, tag, OCI_MANIFEST, m.clone(), token).await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let d = digest_of(&m);
    (m, d)
}

#[tokio::test]
async fn multiarch_and_docker_images_round_trip_through_the_image_api() {
    let mut stack = Stack::start();
    // multi-arch OCI index
    let src = tempfile::tempdir().unwrap();
    let index_digest = oci_multiarch(src.path(), "v1", 21);
    let (ok, out) = skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("--dest-registry-token={DEV}"),
        &format!("oci:{}:v1", src.path().display()),
        &format!("docker://{}/demo/multi:v1", stack.host()),
    ]);
    assert!(ok, "{out}\n{}", stack.gateway_log());
    // Docker schema 2 (converted by skopeo on push)
    let src2 = tempfile::tempdir().unwrap();
    oci_image(src2.path(), "v1", 22, &[50_000, 60_000]);
    let (ok, out) = skopeo(&[
        "copy",
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &format!("--dest-registry-token={DEV}"),
        &format!("oci:{}:v1", src2.path().display()),
        &format!("docker://{}/demo/docker:v1", stack.host()),
    ]);
    assert!(ok, "{out}\n{}", stack.gateway_log());

    let check = |stack: &Stack| {
        let back = tempfile::tempdir().unwrap();
        let (ok, out) = skopeo(&[
            "copy",
            "--all",
            "--src-tls-verify=false",
            &format!("--src-registry-token={DEV}"),
            &format!("docker://{}/demo/multi:v1", stack.host()),
            &format!("oci:{}:v1", back.path().display()),
        ]);
        assert!(ok, "{out}");
        assert_eq!(oci_manifest_digest(back.path(), "v1"), index_digest);
        assert_eq!(
            tree_digests(&src.path().join("blobs")),
            tree_digests(&back.path().join("blobs"))
        );
        let dir = tempfile::tempdir().unwrap();
        let (ok, out) = skopeo(&[
            "copy",
            "--src-tls-verify=false",
            &format!("--src-registry-token={DEV}"),
            &format!("docker://{}/demo/docker:v1", stack.host()),
            &format!("dir:{}", dir.path().display()),
        ]);
        assert!(ok, "{out}");
        std::fs::read(dir.path().join("manifest.json")).unwrap()
    };
    let docker_manifest = check(&stack);
    let docker_digest = digest_of(&docker_manifest);
    assert!(String::from_utf8_lossy(&docker_manifest)
        .contains("application/vnd.docker.distribution.manifest.v2+json"));

    // the API holds the images with the exact bytes, and the tags in the streams' status
    let (st, img) = stack
        .api_get(&format!(
            "/apis/image.openshift.io/v1/images/{docker_digest}"
        ))
        .await;
    assert_eq!(st, 200, "{img}\n{}", stack.gateway_log());
    assert_eq!(
        img["dockerImageManifest"].as_str().unwrap().as_bytes(),
        docker_manifest.as_slice()
    );
    assert_eq!(
        img["dockerImageReference"],
        format!("{}/demo/docker@{docker_digest}", stack.host())
    );
    let (_, stream) = stack
        .api_get("/apis/image.openshift.io/v1/namespaces/demo/imagestreams/multi")
        .await;
    assert_eq!(stream["status"]["tags"][0]["tag"], "v1");
    assert_eq!(
        stream["status"]["tags"][0]["items"][0]["image"],
        index_digest
    );
    let (_, idx) = stack
        .api_get(&format!(
            "/apis/image.openshift.io/v1/images/{index_digest}"
        ))
        .await;
    assert_eq!(idx["dockerImageManifests"].as_array().unwrap().len(), 2);
    // the upstream does not know the tags: they live in the API only
    let r = client()
        .get(format!(
            "http://127.0.0.1:{}/v2/demo/multi/manifests/v1",
            stack.registry_port
        ))
        .header("Accept", OCI_INDEX)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // restart the API and the gateway: everything is still there
    stack.restart_api_and_gateway();
    assert_eq!(check(&stack), docker_manifest);
}

#[tokio::test]
async fn get_head_negotiation_and_tags() {
    let stack = Stack::start();
    let (bytes, digest) = push_small_image(&stack, "demo/app", "b", 31, DEV).await;
    for tag in ["a", "c", "d"] {
        let r = put_manifest(&stack, "demo/app", tag, OCI_MANIFEST, bytes.clone(), DEV).await;
        assert_eq!(r.status(), 201);
    }
    let get_oci = |reference: String| {
        client()
            .get(stack.url(&format!("/v2/demo/app/manifests/{reference}")))
            .bearer_auth(VIEWER)
            .header("Accept", OCI_MANIFEST)
            .send()
    };
    // by tag and digest, with headers
    for reference in ["a", digest.as_str()] {
        let r = get_oci(reference.to_string()).await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(r.headers()["etag"], format!("\"{digest}\"").as_str());
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }
    // a repeated GET by digest of an image pushed here is answered without any API call
    let before = stack.api_stats().await;
    assert_eq!(get_oci(digest.clone()).await.unwrap().status(), 200);
    assert_eq!(stack.api_stats().await, before);
    let r = stack.head("/v2/demo/app/manifests/a", VIEWER).await;
    assert_eq!(r.status(), 200, "{}", stack.gateway_log());
    assert_eq!(
        r.headers()["content-length"],
        bytes.len().to_string().as_str()
    );
    // an Accept that does not allow OCI
    let r = client()
        .get(stack.url("/v2/demo/app/manifests/a"))
        .bearer_auth(VIEWER)
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    let (st, code, _) = error_of(r).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
    // unknown tag, unknown digest (one API call: the image lookup), unknown stream
    let r = stack.get("/v2/demo/app/manifests/nope", VIEWER).await;
    assert_eq!(error_of(r).await.1, "MANIFEST_UNKNOWN");
    let unknown = format!("sha256:{}", "0".repeat(64));
    let before = stack.api_stats().await;
    let r = stack
        .get(&format!("/v2/demo/app/manifests/{unknown}"), VIEWER)
        .await;
    assert_eq!(error_of(r).await.1, "MANIFEST_UNKNOWN");
    let after = stack.api_stats().await;
    let total = |v: &serde_json::Value| {
        v.as_object()
            .map(|o| o.values().filter_map(|n| n.as_u64()).sum::<u64>())
            .unwrap_or(0)
    };
    assert_eq!(total(&after) - total(&before), 1, "{before} -> {after}");
    let r = stack.get("/v2/demo/none/tags/list", VIEWER).await;
    let (st, code, _) = error_of(r).await;
    assert_eq!((st, code.as_str()), (StatusCode::NOT_FOUND, "NAME_UNKNOWN"));

    // tags: sorted, paginated with Link
    let r = stack.get("/v2/demo/app/tags/list", VIEWER).await;
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"name":"demo/app","tags":["a","b","c","d"]})
    );
    let r = stack.get("/v2/demo/app/tags/list?n=2", VIEWER).await;
    assert_eq!(
        r.headers()["link"],
        "</v2/demo/app/tags/list?n=2&last=b>; rel=\"next\""
    );
    assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!(["a", "b"]));
    let r = stack.get("/v2/demo/app/tags/list?n=2&last=b", VIEWER).await;
    assert!(r.headers().get("link").is_none());
    assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!(["c", "d"]));

    // tag delete: viewer may not, developer may
    let r = stack.delete("/v2/demo/app/manifests/c", VIEWER).await;
    assert_eq!(r.status(), 401);
    let r = stack.delete("/v2/demo/app/manifests/c", DEV).await;
    assert_eq!(r.status(), 202);
    let r = stack.delete("/v2/demo/app/manifests/c", DEV).await;
    let (st, code, _) = error_of(r).await;
    assert_eq!(
        (st, code.as_str()),
        (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN")
    );
    let r = stack.get("/v2/demo/app/tags/list", VIEWER).await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["tags"],
        json!(["a", "b", "d"])
    );

    // delete by digest: needs the pruner; removes the image from the stream
    let r = stack
        .delete(&format!("/v2/demo/app/manifests/{digest}"), DEV)
        .await;
    assert_eq!(r.status(), 401);
    let r = stack
        .delete(&format!("/v2/demo/app/manifests/{digest}"), PRUNER)
        .await;
    assert_eq!(r.status(), 202);
    let r = stack.get("/v2/demo/app/tags/list", VIEWER).await;
    assert_eq!(r.json::<Value>().await.unwrap()["tags"], json!([]));
}

#[tokio::test]
async fn referrers_and_catalog() {
    let stack = Stack::start();
    let (_, subject) = push_small_image(&stack, "demo/app", "v1", 41, DEV).await;
    push_small_image(&stack, "secret/hidden", "v1", 42, SECRET_OWNER).await;
    let empty = upload_blob(&stack, "demo/app", b"{}", DEV).await;
    let mut artifacts = Vec::new();
    for (i, kind) in [
        "application/vnd.example.sbom",
        "application/vnd.example.sig",
    ]
    .iter()
    .enumerate()
    {
        let layer = upload_blob(&stack, "demo/app", format!("payload {i}").as_bytes(), DEV).await;
        let m = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"artifactType":kind,
            "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":empty,"size":2},
            "layers":[{"mediaType":"application/octet-stream","digest":layer,"size":format!("payload {i}").len()}],
            "subject":{"mediaType":OCI_MANIFEST,"digest":subject,"size":10},
            "annotations":{"n":i.to_string()}})).unwrap();
        let d = digest_of(&m);
        let r = put_manifest(&stack, "demo/app", &d, OCI_MANIFEST, m, DEV).await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["oci-subject"], subject.as_str());
        artifacts.push(d);
    }
    let r = stack
        .get(&format!("/v2/demo/app/referrers/{subject}"), VIEWER)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], OCI_INDEX);
    let idx: Value = r.json().await.unwrap();
    let mut got: Vec<String> = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    artifacts.sort();
    assert_eq!(got, artifacts);
    let r = stack
        .get(
            &format!("/v2/demo/app/referrers/{subject}?artifactType=application/vnd.example.sig"),
            VIEWER,
        )
        .await;
    assert_eq!(r.headers()["oci-filters-applied"], "artifactType");
    let idx: Value = r.json().await.unwrap();
    assert_eq!(idx["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(
        idx["manifests"][0]["artifactType"],
        "application/vnd.example.sig"
    );
    // none: an empty index, never 404
    let r = stack
        .get(&format!("/v2/demo/app/referrers/{}", artifacts[0]), VIEWER)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["manifests"], json!([]));
    // the artifacts pushed by digest can be pulled by digest
    let r = stack
        .get(&format!("/v2/demo/app/manifests/{}", artifacts[0]), VIEWER)
        .await;
    assert_eq!(r.status(), 200);

    // catalog: filtered per token, paginated
    let cat = async |t: &str, q: &str| stack.get(&format!("/v2/_catalog{q}"), t).await;
    assert_eq!(
        cat(VIEWER, "").await.json::<Value>().await.unwrap(),
        json!({"repositories":["demo/app"]})
    );
    assert_eq!(
        cat(SECRET_OWNER, "").await.json::<Value>().await.unwrap(),
        json!({"repositories":["secret/hidden"]})
    );
    assert_eq!(
        cat(READER_ALL, "").await.json::<Value>().await.unwrap(),
        json!({"repositories":["demo/app","secret/hidden"]})
    );
    let r = cat(READER_ALL, "?n=1").await;
    assert_eq!(
        r.headers()["link"],
        "</v2/_catalog?n=1&last=demo%2Fapp>; rel=\"next\""
    );
    assert_eq!(
        cat(READER_ALL, "?n=1&last=demo/app")
            .await
            .json::<Value>()
            .await
            .unwrap(),
        json!({"repositories":["secret/hidden"]})
    );
    let r = stack.get("/v2/_catalog", ANONYMOUS).await;
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"repositories":[]}));
}

#[tokio::test]
async fn bad_manifests_are_refused_and_nothing_is_stored() {
    let stack = Stack::start();
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = upload_blob(&stack, "demo/bad", config, DEV).await;
    let ld = upload_blob(&stack, "demo/bad", &noise(5, 500), DEV).await;
    let good = |layer: &str, size: usize| {
        serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":config.len()},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":layer,"size":size}]})).unwrap()
    };
    let missing = digest_of(b"never uploaded");
    let ok_body = good(&ld, 500);
    let cases: Vec<(&str, String, &str, Vec<u8>, &str)> = vec![
        (
            "invalid JSON",
            "t1".into(),
            OCI_MANIFEST,
            b"{nope".to_vec(),
            "MANIFEST_INVALID",
        ),
        (
            "unknown media type",
            "t2".into(),
            "application/x-nope",
            br#"{"schemaVersion":2,"mediaType":"application/x-nope"}"#.to_vec(),
            "MANIFEST_INVALID",
        ),
        (
            "missing layer",
            "t3".into(),
            OCI_MANIFEST,
            good(&missing, 14),
            "MANIFEST_BLOB_UNKNOWN",
        ),
        (
            "wrong size",
            "t4".into(),
            OCI_MANIFEST,
            good(&ld, 501),
            "MANIFEST_BLOB_UNKNOWN",
        ),
        (
            "digest mismatch",
            digest_of(b"other"),
            OCI_MANIFEST,
            ok_body.clone(),
            "DIGEST_INVALID",
        ),
        (
            "5 MiB",
            "t6".into(),
            OCI_MANIFEST,
            vec![b' '; 5 << 20],
            "SIZE_INVALID",
        ),
    ];
    for (what, reference, mt, body, code) in cases {
        let digest = digest_of(&body);
        let r = put_manifest(&stack, "demo/bad", &reference, mt, body, DEV).await;
        let (st, got, _) = error_of(r).await;
        assert_eq!(got, code, "{what}: {st}");
        assert!(st.is_client_error(), "{what}: {st}");
        let (st, _) = stack
            .api_get(&format!("/apis/image.openshift.io/v1/images/{digest}"))
            .await;
        assert_eq!(st, 404, "{what}: nothing stored");
    }
    let (st, _) = stack
        .api_get("/apis/image.openshift.io/v1/namespaces/demo/imagestreams/bad")
        .await;
    assert_eq!(st, 404, "no stream was created by refused pushes");
    // and the good one works
    let r = put_manifest(&stack, "demo/bad", "ok", OCI_MANIFEST, ok_body, DEV).await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn api_admission_refusals_are_denied_with_the_api_message() {
    let stack = Stack::start();
    // namespace `quota` allows 1 MiB per image: two 600 KiB layers pass the per-blob check
    // while streaming, but the image (1.2 MiB) is refused by the API's admission
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cd = upload_blob(&stack, "quota/img", config, DEV).await;
    let l1 = noise(91, 600 * 1024);
    let l2 = noise(92, 600 * 1024);
    let (d1, d2) = (
        upload_blob(&stack, "quota/img", &l1, DEV).await,
        upload_blob(&stack, "quota/img", &l2, DEV).await,
    );
    let m = serde_json::to_vec(&json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,
        "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":config.len()},
        "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":d1,"size":l1.len()},
                  {"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":d2,"size":l2.len()}]})).unwrap();
    let r = put_manifest(&stack, "quota/img", "v1", OCI_MANIFEST, m, DEV).await;
    let msg = denied(r).await;
    assert!(
        msg.contains("exceeds the maximum limit per openshift.io/Image"),
        "{msg}"
    );
    let r = stack.get("/v2/quota/img/manifests/v1", DEV).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn admin_blob_delete_is_for_the_pruner() {
    let stack = Stack::start();
    let data = noise(93, 5000);
    let d = upload_blob(&stack, "demo/gc", &data, DEV).await;
    let r = stack.delete(&format!("/admin/blobs/{d}"), DEV).await;
    assert_eq!(r.status(), 401);
    let r = stack.delete(&format!("/admin/blobs/{d}"), PRUNER).await;
    assert_eq!(r.status(), 204);
    let r = stack.head(&format!("/v2/demo/gc/blobs/{d}"), DEV).await;
    assert_eq!(r.status(), 404);
}
