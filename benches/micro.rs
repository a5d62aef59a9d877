//! Criterion micro-benchmarks of the per-request path: route classification, credential
//! decoding, access resolution, a decision-cache hit (against the embedded API over real
//! HTTP, warmed first), manifest parse and validation. `cargo bench --bench micro`.

use std::sync::Arc;
use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use http::Method;
use portcullis::auth::access::{self, Access};
use portcullis::auth::authorizer::{Authorizer, CacheSettings};
use portcullis::auth::credentials::{self, Token};
use portcullis::cluster::{self, Cluster};
use portcullis::manifest;
use portcullis::openshift::{ApiClient, ApiSettings};
use portcullis::route::{self, Repo};

const DIGEST: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const TOKEN: &str = "bench-token-0001";

fn routes(c: &mut Criterion) {
    let blob = format!("/v2/team-a/app/blobs/{DIGEST}");
    c.bench_function("route::classify blob", |b| {
        b.iter(|| route::classify(black_box(&blob), None))
    });
    c.bench_function("route::classify manifest tag", |b| {
        b.iter(|| route::classify(black_box("/v2/team-a/app/manifests/v1.2.3"), None))
    });
    c.bench_function("route::classify upload with state", |b| {
        b.iter(|| route::classify(black_box("/v2/team-a/app/blobs/uploads/5b3c-1d"), Some("_state=abcdefgh&digest=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")))
    });
}

fn creds(c: &mut Criterion) {
    let basic = b"Basic dW5pY29ybjpzaGEyNTZ-YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXo=";
    let bearer = b"Bearer sha256~abcdefghijklmnopqrstuvwxyz0123456789";
    c.bench_function("credentials::parse basic", |b| {
        b.iter(|| credentials::parse(Some(black_box(basic))))
    });
    c.bench_function("credentials::parse bearer", |b| {
        b.iter(|| credentials::parse(Some(black_box(bearer))))
    });
    // the token's sha256 (its cache key) is computed here, once per request
    c.bench_function("Token::new (hashes the token)", |b| {
        b.iter(|| Token::new(black_box("sha256~abcdefghijklmnopqrstuvwxyz0123456789")))
    });
}

fn accesses(c: &mut Criterion) {
    let q = format!("mount={DIGEST}&from=team-b/base");
    let r = route::classify("/v2/team-a/app/blobs/uploads/", Some(&q)).unwrap();
    c.bench_function("access::plan push with mount", |b| {
        b.iter(|| access::plan(black_box(&Method::POST), black_box(&r)))
    });
}

fn decision_cache(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let policy = format!(
        "[[users]]\nname = \"u\"\ntoken_sha256 = \"{}\"\n[[bindings]]\nnamespace = \"team-a\"\nrole = \"system:image-puller\"\nsubjects = [\"user:u\"]\n",
        hex::encode(Token::new(TOKEN).hash())
    );
    let cluster = Arc::new(Cluster::from_policy_str(&policy).unwrap());
    let addr = rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(cluster::serve(l, cluster));
        addr
    });
    let api = ApiClient::new(ApiSettings {
        base_url: format!("http://{addr}/").parse().unwrap(),
        ca_pem: None,
        insecure: false,
        token: None,
        timeout: Duration::from_secs(5),
        legacy_reviews: false,
    })
    .unwrap();
    let authz = Authorizer::new(
        api,
        CacheSettings {
            allow_ttl: Duration::from_secs(3600),
            deny_ttl: Duration::from_secs(5),
            max_entries: 100_000,
        },
    );
    let token = Token::new(TOKEN);
    let pull = Access::pull(&Repo::parse("team-a/app").unwrap());
    assert!(
        rt.block_on(authz.allowed(Some(&token), &pull)).unwrap(),
        "warm-up review must allow"
    );
    c.bench_function("authorizer::allowed cache hit", |b| {
        b.to_async(&rt).iter(|| async {
            authz
                .allowed(Some(black_box(&token)), black_box(&pull))
                .await
                .unwrap()
        })
    });
}

fn manifests(c: &mut Criterion) {
    let layers: Vec<serde_json::Value> = (0..12)
        .map(|i| {
            serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{:064x}", i + 1), "size": 1000 + i})
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 1234},
        "layers": layers,
    }))
    .unwrap();
    c.bench_function("manifest::parse 12 layers", |b| {
        b.iter(|| {
            manifest::parse(
                Some("application/vnd.oci.image.manifest.v1+json"),
                black_box(&body),
            )
            .unwrap()
        })
    });
    let m = manifest::parse(None, &body).unwrap();
    let repo = Repo::parse("team-a/app").unwrap();
    c.bench_function("manifest::image::build", |b| {
        b.iter(|| {
            manifest::image::build(black_box(&m), &body, &repo, "registry.example:5000", None)
        })
    });
}

criterion_group!(benches, routes, creds, accesses, decision_cache, manifests);
criterion_main!(benches);
