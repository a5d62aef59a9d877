//! Image API handler tests over a real bound listener.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::api::tests::{start_cluster, Server};
use crate::cluster::identity::hash_token;
use crate::cluster::Cluster;

const BASE: &str = "/apis/image.openshift.io/v1";
const REG: Option<&str> = Some("registry-token");
const ALICE: Option<&str> = Some("alice-token");
const ROOT: Option<&str> = Some("root-token");

fn policy_with(extra: &str) -> String {
    format!(
        r#"
[[users]]
name = "alice"
token_sha256 = "{alice}"

[[users]]
name = "bob"
token_sha256 = "{bob}"

[[users]]
name = "pat"
token_sha256 = "{pat}"

[[users]]
name = "root"
token_sha256 = "{root}"

[[bindings]]
namespace = "demo"
role = "edit"
subjects = ["user:alice"]

[[bindings]]
namespace = "limited"
role = "edit"
subjects = ["user:alice"]

[[bindings]]
namespace = "quota"
role = "edit"
subjects = ["user:alice"]

[[bindings]]
role = "system:image-pruner"
subjects = ["user:pat"]

[[bindings]]
role = "cluster-admin"
subjects = ["user:root"]

[[limit_ranges]]
namespace = "limited"
name = "image-limits"
limits = [
  {{ type = "openshift.io/Image", max = {{ storage = "1Ki" }} }},
  {{ type = "openshift.io/ImageStream", max = {{ "openshift.io/images" = "2", "openshift.io/image-tags" = "2" }} }},
]

[[resource_quotas]]
namespace = "quota"
name = "image-quota"
hard = {{ "openshift.io/imagestreams" = "2", "openshift.io/image-storage" = "10Gi" }}
{extra}
"#,
        alice = hex::encode(hash_token("alice-token")),
        bob = hex::encode(hash_token("bob-token")),
        pat = hex::encode(hash_token("pat-token")),
        root = hex::encode(hash_token("root-token")),
    )
}

async fn start() -> Server {
    start_cluster(Cluster::from_policy_str(&policy_with("")).expect("valid policy")).await
}

impl Server {
    async fn put(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        let body = serde_json::to_vec(&body).unwrap();
        self.send(reqwest::Method::PUT, path, token, Some(body))
            .await
    }

    async fn delete(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(reqwest::Method::DELETE, path, token, None).await
    }

    async fn create_stream(&self, ns: &str, name: &str, token: Option<&str>) -> (u16, Value) {
        self.post(
            &format!("{BASE}/namespaces/{ns}/imagestreams"),
            token,
            json!({"kind":"ImageStream","apiVersion":"image.openshift.io/v1","metadata":{"name":name}}),
        )
        .await
    }

    async fn map(&self, ns: &str, is: &str, tag: &str, image: Value) -> (u16, Value) {
        self.post(
            &format!("{BASE}/namespaces/{ns}/imagestreammappings"),
            REG,
            json!({"kind":"ImageStreamMapping","apiVersion":"image.openshift.io/v1",
                   "metadata":{"namespace":ns,"name":is},"image":image,"tag":tag}),
        )
        .await
    }

    async fn stream(&self, ns: &str, name: &str) -> Value {
        let (code, v) = self
            .get(&format!("{BASE}/namespaces/{ns}/imagestreams/{name}"), REG)
            .await;
        assert_eq!(code, 200, "{v}");
        v
    }
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// The digest numbered `n` (`sha256:000…<n in hex>`).
fn digest_n(n: u64) -> String {
    format!("sha256:{n:064x}")
}

/// A schema2 image named `sha256:<name>…` with the given layers and config.
fn image(name: char, layers: &[(char, u64)], config: (char, u64)) -> Value {
    let layers: Vec<_> = layers.iter().map(|(c, s)| (digest(*c), *s)).collect();
    image_of(&digest(name), &layers, (digest(config.0), config.1))
}

/// A schema2 image `name` with the given layer and config digests and sizes.
fn image_of(name: &str, layers: &[(String, u64)], config: (String, u64)) -> Value {
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.1, "digest": config.0},
        "layers": layers.iter().map(|(d, s)| json!({"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": s, "digest": d})).collect::<Vec<_>>(),
    });
    json!({
        "metadata": {"name": name, "annotations": {"openshift.io/image.managed": "true"}},
        "dockerImageReference": format!("image-registry.local:5000/ns/is@{name}"),
        "dockerImageManifest": manifest.to_string(),
        "dockerImageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "dockerImageLayers": layers.iter().map(|(d, s)| json!({"name": d, "size": s, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"})).collect::<Vec<_>>(),
    })
}

fn small(name: char) -> Value {
    image(name, &[('a', 10)], ('c', 5))
}

fn items_of(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["metadata"]["namespace"].as_str().unwrap_or(""),
                i["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn create_stream_shape_and_errors() {
    let s = start().await;
    s.cluster.set_registry_host("registry.example:5000");
    let (code, v) = s.create_stream("demo", "is", ALICE).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["kind"], "ImageStream");
    assert_eq!(v["apiVersion"], "image.openshift.io/v1");
    assert_eq!(v["metadata"]["name"], "is");
    assert_eq!(v["metadata"]["namespace"], "demo");
    assert_eq!(v["metadata"]["uid"].as_str().unwrap().len(), 36);
    assert_eq!(v["metadata"]["resourceVersion"], "1");
    assert_eq!(v["metadata"]["generation"], 1);
    assert!(v["metadata"]["creationTimestamp"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(
        v["status"],
        json!({"dockerImageRepository": "registry.example:5000/demo/is", "tags": []})
    );

    let (code, v) = s.create_stream("demo", "is", ALICE).await;
    assert_eq!(code, 409);
    assert_eq!(v["reason"], "AlreadyExists");
    assert_eq!(
        v["message"],
        "imagestreams.image.openshift.io \"is\" already exists"
    );
    assert_eq!(
        v["details"],
        json!({"name":"is","group":"image.openshift.io","kind":"imagestreams"})
    );

    let (code, v) = s.create_stream("demo", "Bad_Name", ALICE).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["reason"], "Invalid");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .starts_with("ImageStream.image.openshift.io \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": must match"));

    let (code, v) = s.create_stream("demo", "x", Some("bob-token")).await;
    assert_eq!(code, 403);
    assert_eq!(
        v["message"],
        "imagestreams.image.openshift.io is forbidden: User \"bob\" cannot create resource \"imagestreams\" in API group \"image.openshift.io\" in the namespace \"demo\""
    );
    let (code, _) = s.create_stream("demo", "x", Some("wrong")).await;
    assert_eq!(code, 401);

    let (code, v) = s
        .get(&format!("{BASE}/namespaces/demo/imagestreams/nope"), ALICE)
        .await;
    assert_eq!(code, 404);
    assert_eq!(
        v["message"],
        "imagestreams.image.openshift.io \"nope\" not found"
    );
    assert_eq!(
        v["details"],
        json!({"name":"nope","group":"image.openshift.io","kind":"imagestreams"})
    );

    let (code, v) = s
        .delete(&format!("{BASE}/namespaces/demo/imagestreams/is"), ALICE)
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "Success");
    assert_eq!(v["details"]["kind"], "imagestreams");
    let (code, _) = s
        .delete(&format!("{BASE}/namespaces/demo/imagestreams/is"), ALICE)
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn mapping_creates_image_and_tag_events_newest_first() {
    let s = start().await;
    s.create_stream("demo", "is", ALICE).await;
    let (code, v) = s.map("demo", "is", "latest", small('1')).await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(
        v,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201})
    );
    // The image was created as sent, with metadata filled in.
    let (code, img) = s.get(&format!("{BASE}/images/{}", digest('1')), REG).await;
    assert_eq!(code, 200, "{img}");
    assert_eq!(img["kind"], "Image");
    assert_eq!(img["apiVersion"], "image.openshift.io/v1");
    assert_eq!(
        img["dockerImageMetadata"],
        json!({"kind":"DockerImage","apiVersion":"1.0","Size":15})
    );
    assert_eq!(
        img["dockerImageManifest"],
        small('1')["dockerImageManifest"]
    );
    assert_eq!(
        img["metadata"]["annotations"]["openshift.io/image.managed"],
        "true"
    );
    assert!(img["metadata"]["uid"].is_string());
    assert!(img["metadata"]["resourceVersion"].is_string());

    let (code, _) = s.map("demo", "is", "latest", small('2')).await;
    assert_eq!(code, 201);
    // Same newest image again: no new event.
    let (code, _) = s.map("demo", "is", "latest", small('2')).await;
    assert_eq!(code, 201);
    // An existing image is kept as is.
    let mut changed = small('1');
    changed["metadata"]["labels"] = json!({"changed": "yes"});
    let (code, _) = s.map("demo", "is", "other", changed).await;
    assert_eq!(code, 201);
    let (_, img) = s.get(&format!("{BASE}/images/{}", digest('1')), REG).await;
    assert_eq!(img["metadata"].get("labels"), None);

    let st = s.stream("demo", "is").await;
    let tags = st["status"]["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 2);
    assert_eq!(tags[0]["tag"], "latest");
    let items = tags[0]["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["image"], digest('2'));
    assert_eq!(items[1]["image"], digest('1'));
    assert_eq!(items[1]["generation"], 1);
    assert_eq!(items[0]["generation"], 2);
    assert_eq!(
        items[1]["dockerImageReference"],
        format!("image-registry.local:5000/ns/is@{}", digest('1'))
    );
    assert!(items[0]["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(tags[1]["tag"], "other");
    assert_eq!(st["metadata"]["generation"], 4);

    let stats = s.cluster.stats();
    assert_eq!(stats["imagestreammappings"], 4);
    assert_eq!(stats["imagestreams"], 2);
    assert_eq!(stats["images"], 2);
}

#[tokio::test]
async fn mapping_errors() {
    let s = start().await;
    let (code, v) = s.map("demo", "nope", "latest", small('1')).await;
    assert_eq!(code, 404, "{v}");
    assert_eq!(
        v,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"imagestreams.image.openshift.io \"nope\" not found","reason":"NotFound",
               "details":{"name":"nope","group":"image.openshift.io","kind":"imagestreammappings"},"code":404})
    );
    // Nothing was created.
    let (code, _) = s.get(&format!("{BASE}/images/{}", digest('1')), REG).await;
    assert_eq!(code, 404);

    s.create_stream("demo", "is", ALICE).await;
    let (code, v) = s.map("demo", "is", "", small('1')).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(
        v["message"],
        "ImageStreamMapping.image.openshift.io \"is\" is invalid: tag: Required value"
    );
    let (code, v) = s
        .post(
            &format!("{BASE}/namespaces/demo/imagestreammappings"),
            REG,
            json!({"kind":"ImageStreamMapping","metadata":{"name":"is"},"image":small('1')}),
        )
        .await;
    assert_eq!(code, 422, "{v}");
    let mut bad = small('1');
    bad["metadata"]["name"] = json!("latest");
    let (code, v) = s.map("demo", "is", "latest", bad).await;
    assert_eq!(code, 422, "{v}");
    let (code, v) = s
        .post(
            &format!("{BASE}/namespaces/demo/imagestreammappings"),
            REG,
            json!({"kind":"ImageStreamMapping","metadata":{"namespace":"other","name":"is"},"tag":"x","image":small('1')}),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    assert_eq!(
        v["message"],
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    let (code, v) = s
        .post(
            &format!("{BASE}/namespaces/demo/imagestreammappings"),
            ALICE,
            json!({"kind":"Pod"}),
        )
        .await;
    assert_eq!(code, 400, "{v}");
    let (code, _) = s
        .post(
            &format!("{BASE}/namespaces/demo/imagestreammappings"),
            Some("bob-token"),
            json!({}),
        )
        .await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn stream_list_pagination() {
    let s = start().await;
    for name in ["c", "a", "b"] {
        assert_eq!(s.create_stream("demo", name, ALICE).await.0, 201);
    }
    assert_eq!(s.create_stream("quota", "z", ALICE).await.0, 201);
    let list = format!("{BASE}/namespaces/demo/imagestreams");
    let (code, v) = s.get(&list, ALICE).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kind"], "ImageStreamList");
    assert_eq!(v["metadata"]["resourceVersion"], "4");
    assert_eq!(items_of(&v), ["demo/a", "demo/b", "demo/c"]);
    assert_eq!(v["metadata"].get("continue"), None);

    let (_, p1) = s.get(&format!("{list}?limit=2"), ALICE).await;
    assert_eq!(items_of(&p1), ["demo/a", "demo/b"]);
    let token = p1["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, p2) = s
        .get(&format!("{list}?limit=2&continue={token}"), ALICE)
        .await;
    assert_eq!(items_of(&p2), ["demo/c"]);
    assert_eq!(p2["metadata"].get("continue"), None);

    let (code, v) = s.get(&format!("{list}?continue=garbage"), ALICE).await;
    assert_eq!(code, 400, "{v}");
    let (code, _) = s.get(&format!("{list}?limit=x"), ALICE).await;
    assert_eq!(code, 400);

    // All namespaces: cluster-wide permission only.
    let all = format!("{BASE}/imagestreams");
    let (code, _) = s.get(&all, ALICE).await;
    assert_eq!(code, 403);
    let (code, v) = s.get(&all, REG).await;
    assert_eq!(code, 200);
    assert_eq!(items_of(&v), ["demo/a", "demo/b", "demo/c", "quota/z"]);
    let (_, p1) = s.get(&format!("{all}?limit=3"), REG).await;
    assert_eq!(items_of(&p1), ["demo/a", "demo/b", "demo/c"]);
    let token = p1["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, p2) = s.get(&format!("{all}?limit=3&continue={token}"), REG).await;
    assert_eq!(items_of(&p2), ["quota/z"]);
    // A token of another namespace's list is refused.
    let (code, _) = s
        .get(
            &format!("{BASE}/namespaces/quota/imagestreams?continue={token}"),
            ALICE,
        )
        .await;
    assert_eq!(code, 400);
}

#[tokio::test]
async fn images_crud_label_selector_and_pages() {
    let s = start().await;
    let images = format!("{BASE}/images");
    for (c, app) in [('3', "web"), ('1', "web"), ('2', "db")] {
        let mut img = small(c);
        img["kind"] = json!("Image");
        img["apiVersion"] = json!("image.openshift.io/v1");
        img["metadata"]["labels"] = json!({"app": app});
        let (code, v) = s.post(&images, REG, img).await;
        assert_eq!(code, 201, "{v}");
        assert_eq!(v["metadata"]["name"], digest(c));
        assert_eq!(v["dockerImageMetadata"]["Size"], 15);
    }
    let (code, v) = s.post(&images, REG, small('1')).await;
    assert_eq!(code, 409);
    assert_eq!(
        v["message"],
        format!(
            "images.image.openshift.io \"{}\" already exists",
            digest('1')
        )
    );
    let mut bad = small('1');
    bad["metadata"]["name"] = json!("sha256:xyz");
    let (code, v) = s.post(&images, REG, bad).await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["reason"], "Invalid");

    let (code, v) = s.get(&images, ROOT).await;
    assert_eq!(code, 200);
    assert_eq!(v["kind"], "ImageList");
    assert_eq!(
        items_of(&v),
        [
            format!("/{}", digest('1')),
            format!("/{}", digest('2')),
            format!("/{}", digest('3'))
        ]
    );
    let (_, web) = s
        .get(&format!("{images}?labelSelector=app%3Dweb&limit=1"), ROOT)
        .await;
    assert_eq!(items_of(&web), [format!("/{}", digest('1'))]);
    let token = web["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, web2) = s
        .get(
            &format!("{images}?labelSelector=app%3Dweb&limit=1&continue={token}"),
            ROOT,
        )
        .await;
    assert_eq!(items_of(&web2), [format!("/{}", digest('3'))]);
    assert_eq!(web2["metadata"].get("continue"), None);
    let (_, not_web) = s
        .get(&format!("{images}?labelSelector=app!%3Dweb"), ROOT)
        .await;
    assert_eq!(items_of(&not_web), [format!("/{}", digest('2'))]);
    let (code, _) = s
        .get(&format!("{images}?labelSelector=app+in+(a)"), ROOT)
        .await;
    assert_eq!(code, 400);

    let one = format!("{images}/{}", digest('2'));
    let (code, v) = s.delete(&one, Some("bob-token")).await;
    assert_eq!(code, 403, "{v}");
    let (code, v) = s.delete(&one, Some("pat-token")).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["details"]["kind"], "images");
    let (code, v) = s.get(&one, REG).await;
    assert_eq!(code, 404);
    assert_eq!(
        v["message"],
        format!("images.image.openshift.io \"{}\" not found", digest('2'))
    );
}

#[tokio::test]
async fn status_update_uses_optimistic_concurrency() {
    let s = start().await;
    s.create_stream("demo", "is", ALICE).await;
    s.map("demo", "is", "latest", small('1')).await;
    s.map("demo", "is", "latest", small('2')).await;
    s.map("demo", "is", "old", small('1')).await;
    let current = s.stream("demo", "is").await;
    let rv = current["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let path = format!("{BASE}/namespaces/demo/imagestreams/is/status");

    // Pruning: keep only the newest event of latest, empty "old".
    let mut update = current.clone();
    update["status"]["tags"] = json!([
        {"tag": "latest", "items": [current["status"]["tags"][0]["items"][0].clone()]},
        {"tag": "old", "items": []},
    ]);
    let mut stale = update.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    let (code, v) = s.put(&path, Some("pat-token"), stale).await;
    assert_eq!(code, 409, "{v}");
    assert_eq!(v["reason"], "Conflict");
    assert_eq!(
        v["message"],
        "Operation cannot be fulfilled on imagestreams.image.openshift.io \"is\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let mut no_rv = update.clone();
    no_rv["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let (code, v) = s.put(&path, Some("pat-token"), no_rv).await;
    assert_eq!(code, 422, "{v}");

    // `edit` does not include imagestreams/status.
    let (code, v) = s.put(&path, ALICE, update.clone()).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "imagestreams.image.openshift.io \"is\" is forbidden: User \"alice\" cannot update resource \"imagestreams/status\" in API group \"image.openshift.io\" in the namespace \"demo\""
    );
    let (code, v) = s.put(&path, Some("pat-token"), update.clone()).await;
    assert_eq!(code, 200, "{v}");
    assert_ne!(v["metadata"]["resourceVersion"], json!(rv));
    // The same update again is now stale.
    let (code, stale) = s.put(&path, Some("pat-token"), update).await;
    assert_eq!(code, 409, "{stale}");
    let tags = v["status"]["tags"].as_array().unwrap();
    assert_eq!(tags.len(), 1, "{v}");
    assert_eq!(tags[0]["items"].as_array().unwrap().len(), 1);
    assert_eq!(tags[0]["items"][0]["image"], digest('2'));
    let (code, _) = s.put(&path, Some("bob-token"), json!({})).await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn layers_of_a_stream() {
    let s = start().await;
    s.create_stream("demo", "is", ALICE).await;
    s.map(
        "demo",
        "is",
        "latest",
        image('1', &[('a', 10), ('b', 20)], ('c', 5)),
    )
    .await;
    s.map(
        "demo",
        "is",
        "latest",
        image('2', &[('a', 10), ('d', 30)], ('e', 6)),
    )
    .await;
    let (code, v) = s
        .get(
            &format!("{BASE}/namespaces/demo/imagestreams/is/layers"),
            REG,
        )
        .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kind"], "ImageStreamLayers");
    assert_eq!(v["apiVersion"], "image.openshift.io/v1");
    let blobs = v["blobs"].as_object().unwrap();
    assert_eq!(blobs.len(), 5);
    assert_eq!(
        blobs[&digest('d')],
        json!({"size": 30, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"})
    );
    assert_eq!(
        blobs[&digest('e')],
        json!({"size": 6, "mediaType": "application/vnd.docker.container.image.v1+json"})
    );
    assert_eq!(
        v["images"][digest('1')],
        json!({"layers": [digest('a'), digest('b')], "config": digest('c'), "imageMissing": false, "manifests": []})
    );
    let (code, _) = s
        .get(
            &format!("{BASE}/namespaces/demo/imagestreams/is/layers"),
            Some("bob-token"),
        )
        .await;
    assert_eq!(code, 403);
    let (code, _) = s
        .get(
            &format!("{BASE}/namespaces/demo/imagestreams/nope/layers"),
            REG,
        )
        .await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn stream_tags_and_stream_images() {
    let s = start().await;
    s.create_stream("demo", "is", ALICE).await;
    s.map("demo", "is", "latest", small('1')).await;
    // An image that exists but is not in the stream.
    s.post(&format!("{BASE}/images"), REG, small('9')).await;

    let istag = format!("{BASE}/namespaces/demo/imagestreamtags/is:latest");
    let (code, v) = s.get(&istag, REG).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kind"], "ImageStreamTag");
    assert_eq!(v["apiVersion"], "image.openshift.io/v1");
    assert_eq!(v["metadata"]["name"], "is:latest");
    assert_eq!(v["metadata"]["namespace"], "demo");
    assert_eq!(v["tag"], Value::Null);
    assert_eq!(v["generation"], 1);
    assert_eq!(v["image"]["metadata"]["name"], digest('1'));
    assert_eq!(v["image"]["kind"], "Image");

    let (code, v) = s
        .get(
            &format!("{BASE}/namespaces/demo/imagestreamtags/is:nope"),
            REG,
        )
        .await;
    assert_eq!(code, 404);
    assert_eq!(
        v["message"],
        "imagestreamtags.image.openshift.io \"is:nope\" not found"
    );
    let (code, _) = s
        .get(
            &format!("{BASE}/namespaces/demo/imagestreamtags/nocolon"),
            REG,
        )
        .await;
    assert_eq!(code, 400);

    let isimage = |d: &str| format!("{BASE}/namespaces/demo/imagestreamimages/is@{d}");
    let (code, v) = s.get(&isimage(&digest('1')), REG).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kind"], "ImageStreamImage");
    assert_eq!(v["metadata"]["name"], format!("is@{}", digest('1')));
    assert_eq!(v["image"]["metadata"]["name"], digest('1'));
    let (code, v) = s.get(&isimage(&digest('9')), REG).await;
    assert_eq!(code, 404, "{v}");
    assert_eq!(
        v["message"],
        format!(
            "imagestreamimages.image.openshift.io \"is@{}\" not found",
            digest('9')
        )
    );

    let (code, v) = s.delete(&istag, REG).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "Success");
    let (code, _) = s.get(&istag, REG).await;
    assert_eq!(code, 404);
    let (code, _) = s.delete(&istag, REG).await;
    assert_eq!(code, 404);
    assert!(s.stream("demo", "is").await["status"]["tags"]
        .as_array()
        .unwrap()
        .is_empty());
    // No longer in the history.
    let (code, _) = s.get(&isimage(&digest('1')), REG).await;
    assert_eq!(code, 404);
    let stats = s.cluster.stats();
    assert_eq!(stats["imagestreamtags"], 6);
    assert_eq!(stats["imagestreamimages"], 3);
}

#[tokio::test]
async fn limit_range_refusals() {
    let s = start().await;
    s.create_stream("limited", "is", ALICE).await;
    // 2048 bytes > 1Ki.
    let big = image('1', &[('a', 2000)], ('c', 48));
    let (code, v) = s.map("limited", "is", "latest", big).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(v["reason"], "Forbidden");
    assert_eq!(
        v["message"],
        "imagestreammappings.image.openshift.io \"is\" is forbidden: requested usage of storage exceeds the maximum limit per openshift.io/Image (2Ki > 1Ki)"
    );
    assert_eq!(
        v["details"],
        json!({"name":"is","group":"image.openshift.io","kind":"imagestreammappings"})
    );
    // The size limit is checked even when the stream does not exist.
    let (code, _) = s
        .map(
            "limited",
            "nope",
            "latest",
            image('1', &[('a', 2000)], ('c', 48)),
        )
        .await;
    assert_eq!(code, 403);

    assert_eq!(s.map("limited", "is", "latest", small('1')).await.0, 201);
    assert_eq!(s.map("limited", "is", "latest", small('2')).await.0, 201);
    let (code, v) = s.map("limited", "is", "latest", small('3')).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "imagestreammappings.image.openshift.io \"is\" is forbidden: requested usage of openshift.io/images exceeds the maximum limit per openshift.io/ImageStream (3 > 2)"
    );
    // The refused mapping created nothing (one transaction).
    let (code, _) = s.get(&format!("{BASE}/images/{}", digest('3')), REG).await;
    assert_eq!(code, 404);
    assert_eq!(s.map("limited", "is", "second", small('1')).await.0, 201);
    let (code, v) = s.map("limited", "is", "third", small('1')).await;
    assert_eq!(code, 403);
    assert_eq!(
        v["message"],
        "imagestreammappings.image.openshift.io \"is\" is forbidden: requested usage of openshift.io/image-tags exceeds the maximum limit per openshift.io/ImageStream (3 > 2)"
    );

    let (code, v) = s.get("/api/v1/namespaces/limited/limitranges", REG).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["items"],
        json!([{
            "kind": "LimitRange", "apiVersion": "v1",
            "metadata": {"name": "image-limits", "namespace": "limited"},
            "spec": {"limits": [
                {"type": "openshift.io/Image", "max": {"storage": "1Ki"}},
                {"type": "openshift.io/ImageStream", "max": {"openshift.io/image-tags": "2", "openshift.io/images": "2"}},
            ]},
        }])
    );
    assert_eq!(v["kind"], "LimitRangeList");
    assert_eq!(v["apiVersion"], "v1");
    assert!(v["metadata"]["resourceVersion"].is_string());
    let (code, v) = s.get("/api/v1/namespaces/demo/limitranges", REG).await;
    assert_eq!(code, 200);
    assert_eq!(v["items"], json!([]));
    let (code, _) = s.get("/api/v1/namespaces/demo/limitranges", ALICE).await;
    assert_eq!(code, 403);
}

#[tokio::test]
async fn quota_refusal_and_usage() {
    let s = start().await;
    assert_eq!(s.create_stream("quota", "a", ALICE).await.0, 201);
    assert_eq!(s.create_stream("quota", "b", ALICE).await.0, 201);
    let (code, v) = s.create_stream("quota", "c", ALICE).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "imagestreams.image.openshift.io \"c\" is forbidden: exceeded quota: image-quota, requested: openshift.io/imagestreams=1, used: openshift.io/imagestreams=2, limited: openshift.io/imagestreams=2"
    );
    assert_eq!(
        v["details"],
        json!({"name":"c","group":"image.openshift.io","kind":"imagestreams"})
    );
    // Quotas are per namespace.
    assert_eq!(s.create_stream("demo", "c", ALICE).await.0, 201);

    // Layer 'a' shared by both images and both streams: counted once.
    s.map(
        "quota",
        "a",
        "latest",
        image('1', &[('a', 100), ('b', 20)], ('c', 5)),
    )
    .await;
    s.map(
        "quota",
        "b",
        "latest",
        image('2', &[('a', 100), ('d', 7)], ('e', 3)),
    )
    .await;
    s.map("demo", "c", "latest", image('3', &[('z', 999)], ('y', 1)))
        .await;
    let (code, v) = s.get("/api/v1/namespaces/quota/resourcequotas", REG).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["kind"], "ResourceQuotaList");
    assert_eq!(
        v["items"],
        json!([{
            "kind": "ResourceQuota", "apiVersion": "v1",
            "metadata": {"name": "image-quota", "namespace": "quota"},
            "spec": {"hard": {"openshift.io/image-storage": "10Gi", "openshift.io/imagestreams": "2"}},
            "status": {
                "hard": {"openshift.io/image-storage": "10Gi", "openshift.io/imagestreams": "2"},
                "used": {"openshift.io/image-storage": "135", "openshift.io/imagestreams": "2"},
            },
        }])
    );
    // Deleting a stream frees quota.
    s.delete(&format!("{BASE}/namespaces/quota/imagestreams/b"), ALICE)
        .await;
    assert_eq!(s.create_stream("quota", "c", ALICE).await.0, 201);
    let stats = s.cluster.stats();
    assert_eq!(stats["resourcequotas"], 1);
    assert_eq!(stats["limitranges"], 0);
}

/// A namespace `storage` editable by alice, with a 1Ki image-storage quota.
const STORAGE_QUOTA: &str = r#"
[[bindings]]
namespace = "storage"
role = "edit"
subjects = ["user:alice"]

[[resource_quotas]]
namespace = "storage"
name = "storage-quota"
hard = { "openshift.io/image-storage" = "1Ki" }
"#;

async fn storage_used(s: &Server) -> String {
    let (code, v) = s
        .get("/api/v1/namespaces/storage/resourcequotas", REG)
        .await;
    assert_eq!(code, 200, "{v}");
    v["items"][0]["status"]["used"]["openshift.io/image-storage"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn image_storage_quota_refuses_mappings() {
    let s = start_cluster(Cluster::from_policy_str(&policy_with(STORAGE_QUOTA)).unwrap()).await;
    assert_eq!(s.create_stream("storage", "a", ALICE).await.0, 201);
    assert_eq!(s.create_stream("storage", "b", ALICE).await.0, 201);
    // 600 + 200 + 24 = 824 of 1024.
    let img1 = image('1', &[('a', 600), ('b', 200)], ('c', 24));
    assert_eq!(s.map("storage", "a", "latest", img1.clone()).await.0, 201);
    assert_eq!(storage_used(&s).await, "824");

    // Layer a and config c are already counted: only d and e (180 + 30) are new.
    let img2 = image('2', &[('a', 600), ('d', 180)], ('e', 30));
    let (code, v) = s.map("storage", "b", "latest", img2).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"imagestreammappings.image.openshift.io \"b\" is forbidden: exceeded quota: storage-quota, requested: openshift.io/image-storage=210, used: openshift.io/image-storage=824, limited: openshift.io/image-storage=1Ki",
               "reason":"Forbidden",
               "details":{"name":"b","group":"image.openshift.io","kind":"imagestreammappings"},"code":403})
    );
    // Nothing was stored: no image, no tag event, usage unchanged.
    let (code, _) = s.get(&format!("{BASE}/images/{}", digest('2')), REG).await;
    assert_eq!(code, 404);
    assert_eq!(s.stream("storage", "b").await["status"]["tags"], json!([]));
    assert_eq!(storage_used(&s).await, "824");

    // An image already referenced in the namespace costs nothing.
    assert_eq!(s.map("storage", "b", "latest", img1).await.0, 201);
    // Up to the limit exactly: 824 + 170 + 30 = 1024.
    let img3 = image('3', &[('a', 600), ('d', 170)], ('e', 30));
    assert_eq!(s.map("storage", "b", "other", img3).await.0, 201);
    assert_eq!(storage_used(&s).await, "1024");
    let img4 = image('4', &[('f', 1)], ('c', 24));
    let (code, v) = s.map("storage", "a", "next", img4).await;
    assert_eq!(code, 403, "{v}");
    assert_eq!(
        v["message"],
        "imagestreammappings.image.openshift.io \"a\" is forbidden: exceeded quota: storage-quota, requested: openshift.io/image-storage=1, used: openshift.io/image-storage=1024, limited: openshift.io/image-storage=1Ki"
    );

    // Images created by digest are in no stream: not counted, not refused...
    let img5 = image('5', &[('9', 5000)], ('8', 10));
    assert_eq!(s.post(&format!("{BASE}/images"), REG, img5).await.0, 201);
    assert_eq!(storage_used(&s).await, "1024");
    // ...until a mapping references them (the stored image is what counts,
    // whatever the mapping's body says).
    let (code, v) = s
        .map("storage", "a", "next", image('5', &[], ('8', 10)))
        .await;
    assert_eq!(code, 403, "{v}");
    assert!(v["message"].as_str().unwrap().contains(
        "requested: openshift.io/image-storage=5010, used: openshift.io/image-storage=1024,"
    ));

    // Freeing storage (removing the tags of b) lets a mapping in.
    for tag in ["latest", "other"] {
        let (code, v) = s
            .delete(
                &format!("{BASE}/namespaces/storage/imagestreamtags/b:{tag}"),
                REG,
            )
            .await;
        assert_eq!(code, 200, "{v}");
    }
    assert_eq!(storage_used(&s).await, "824");
    let img4 = image('4', &[('f', 1)], ('c', 24));
    assert_eq!(s.map("storage", "a", "next", img4).await.0, 201);
    assert_eq!(storage_used(&s).await, "825");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_mappings_never_overrun_image_storage_quota() {
    let s = start_cluster(Cluster::from_policy_str(&policy_with(STORAGE_QUOTA)).unwrap()).await;
    for is in ["a", "b"] {
        assert_eq!(s.create_stream("storage", is, ALICE).await.0, 201);
    }
    // Twelve images of 200 distinct bytes each (layer 150 + config 50): only
    // five fit in 1024 bytes, whatever the interleaving.
    let maps = (0..12u64).map(|i| {
        let img = image_of(
            &digest_n(1000 + i),
            &[(digest_n(2000 + i), 150)],
            (digest_n(3000 + i), 50),
        );
        let is = if i % 2 == 0 { "a" } else { "b" };
        let s = &s;
        async move { s.map("storage", is, &format!("t{i}"), img).await }
    });
    let results = futures_util::future::join_all(maps).await;
    let mut codes: Vec<u16> = results.iter().map(|(code, _)| *code).collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        [201, 201, 201, 201, 201, 403, 403, 403, 403, 403, 403, 403]
    );
    for (code, v) in &results {
        if *code == 403 {
            let m = v["message"].as_str().unwrap();
            assert!(
                m.contains("exceeded quota: storage-quota, requested: openshift.io/image-storage=200, used: openshift.io/image-storage=1000, limited: openshift.io/image-storage=1Ki"),
                "{m}"
            );
        }
    }
    assert_eq!(storage_used(&s).await, "1000");
    // Only the admitted images were stored.
    let (code, v) = s.get(&format!("{BASE}/images"), ROOT).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["items"].as_array().unwrap().len(), 5);
}

fn write_policy(path: &Path, extra: &str) {
    std::fs::write(path, policy_with(extra)).unwrap();
}

/// Make sure a rewritten file gets a different mtime even on coarse clocks.
fn touch_later(path: &Path, secs: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(secs))
        .unwrap();
}

#[tokio::test]
async fn policy_reloads_when_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    write_policy(&policy, "");
    let cluster = Cluster::open(&policy, None).unwrap();
    cluster.set_reload_interval(Duration::ZERO);
    let s = start_cluster(cluster).await;
    assert_eq!(s.create_stream("demo", "a", ALICE).await.0, 201);
    write_policy(
        &policy,
        "[[resource_quotas]]\nnamespace = \"demo\"\nname = \"q\"\nhard = { \"openshift.io/imagestreams\" = 1 }\n",
    );
    touch_later(&policy, 5);
    let (code, v) = s.create_stream("demo", "b", ALICE).await;
    assert_eq!(code, 403, "{v}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("exceeded quota: q,"));
    // The service account added at start survives reloads.
    let (code, _) = s
        .get(&format!("{BASE}/namespaces/demo/imagestreams/a"), REG)
        .await;
    assert_eq!(code, 200);

    // A broken file keeps the current policy in force.
    std::fs::write(&policy, "users = 5\n").unwrap();
    touch_later(&policy, 10);
    let (code, _) = s.create_stream("demo", "b", ALICE).await;
    assert_eq!(code, 403);
    assert!(s.cluster.reload_policy().is_err());

    // Explicit reload.
    write_policy(&policy, "");
    s.cluster.reload_policy().unwrap();
    assert_eq!(s.create_stream("demo", "b", ALICE).await.0, 201);
}

#[tokio::test]
async fn objects_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let data = dir.path().join("api.db");
    write_policy(&policy, "");
    {
        let s = start_cluster(Cluster::open(&policy, Some(&data)).unwrap()).await;
        s.create_stream("demo", "is", ALICE).await;
        assert_eq!(s.map("demo", "is", "latest", small('1')).await.0, 201);
    }
    // Give the aborted server task a moment to drop its Arc<Cluster>.
    let mut reopened = None;
    for _ in 0..50 {
        match Cluster::open(&policy, Some(&data)) {
            Ok(c) => {
                reopened = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let s = start_cluster(reopened.expect("store reopens")).await;
    let st = s.stream("demo", "is").await;
    assert_eq!(st["status"]["tags"][0]["items"][0]["image"], digest('1'));
    let rv: u64 = st["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (code, v) = s.create_stream("demo", "second", ALICE).await;
    assert_eq!(code, 201);
    let rv2: u64 = v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv, "{rv2} > {rv}");
    let (code, _) = s.get(&format!("{BASE}/images/{}", digest('1')), REG).await;
    assert_eq!(code, 200);
}
