//! Handler tests over a real bound listener.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::cluster::identity::hash_token;
use crate::cluster::{serve, Cluster};

/// A cluster served on a bound listener (also used by the image API tests);
/// the server task is aborted on drop.
pub(super) struct Server {
    base: String,
    pub(super) cluster: Arc<Cluster>,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn policy() -> String {
    format!(
        r#"
[[users]]
name = "alice"
token_sha256 = "{alice}"
groups = ["developers"]

[[users]]
name = "bob"
token_sha256 = "{bob}"

[[users]]
name = "pat"
token_sha256 = "{pat}"

[[service_accounts]]
namespace = "ci"
name = "builder"
token_sha256 = "{sa}"

[[bindings]]
namespace = "team-a"
role = "system:image-builder"
subjects = ["user:alice", "serviceaccount:ci:builder"]

[[bindings]]
namespace = "shared"
role = "system:image-puller"
subjects = ["group:developers"]

[[bindings]]
namespace = "public"
role = "system:image-puller"
subjects = ["group:system:unauthenticated"]

[[bindings]]
role = "system:image-pruner"
subjects = ["user:pat"]
"#,
        alice = hex::encode(hash_token("alice-token")),
        bob = hex::encode(hash_token("bob-token")),
        pat = hex::encode(hash_token("pat-token")),
        sa = hex::encode(hash_token("sa-token")),
    )
}

/// Serve `cluster`, with the registry's service account
/// (`openshift-registry:registry`, token `registry-token`) added.
pub(super) async fn start_cluster(cluster: Cluster) -> Server {
    let cluster = Arc::new(cluster);
    cluster.add_service_account(
        "openshift-registry",
        "registry",
        "registry-token",
        "system:registry",
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(serve(listener, cluster.clone()));
    Server {
        base: format!("http://{addr}"),
        cluster,
        client: reqwest::Client::builder().no_proxy().build().unwrap(),
        task,
    }
}

async fn start_with(policy: &str) -> Server {
    start_cluster(Cluster::from_policy_str(policy).expect("valid policy")).await
}

async fn start() -> Server {
    start_with(&policy()).await
}

impl Server {
    /// Send a request (a body as `application/json`); the answer's status and
    /// JSON (a string if it is not JSON).
    pub(super) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub(super) async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    async fn post_raw(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    pub(super) async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.post_raw(path, token, serde_json::to_vec(&body).unwrap())
            .await
    }

    async fn ssar(&self, token: Option<&str>, attrs: Value) -> (u16, Value) {
        self.post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            token,
            json!({"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview",
                   "spec":{"resourceAttributes": attrs}}),
        )
        .await
    }

    async fn legacy_lsar(
        &self,
        ns: &str,
        token: Option<&str>,
        verb: &str,
        is: &str,
    ) -> (u16, Value) {
        self.post(
            &format!("/oapi/v1/namespaces/{ns}/localsubjectaccessreviews"),
            token,
            json!({"kind":"LocalSubjectAccessReview","apiVersion":"v1","namespace":"","verb":verb,
                   "resourceAPIGroup":"","resourceAPIVersion":"","resource":"imagestreams/layers",
                   "resourceName":is,"user":"","groups":null}),
        )
        .await
    }
}

fn layers(ns: &str, verb: &str) -> Value {
    json!({"namespace":ns,"verb":verb,"group":"image.openshift.io","resource":"imagestreams/layers","name":"is"})
}

#[tokio::test]
async fn healthz_and_stats() {
    let s = start().await;
    let (code, body) = s.get("/healthz", None).await;
    assert_eq!((code, body), (200, Value::String("ok".into())));
    s.ssar(Some("alice-token"), layers("team-a", "get")).await;
    s.legacy_lsar("team-a", Some("alice-token"), "get", "is")
        .await;
    let (code, body) = s.get("/portcullis/stats", None).await;
    assert_eq!(code, 200);
    assert_eq!(body["selfsubjectaccessreviews"], 1);
    assert_eq!(body["localsubjectaccessreviews"], 1);
    assert_eq!(body["oapi.localsubjectaccessreviews"], 1);
    assert_eq!(body["users"], 0);
    assert_eq!(s.cluster.stats()["selfsubjectaccessreviews"], 1);
}

#[tokio::test]
async fn self_subject_review() {
    let s = start().await;
    let path = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    let body = json!({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"});
    let (code, v) = s.post(path, Some("alice-token"), body.clone()).await;
    assert_eq!(code, 201);
    assert_eq!(v["kind"], "SelfSubjectReview");
    assert_eq!(v["apiVersion"], "authentication.k8s.io/v1");
    assert_eq!(v["metadata"], json!({"creationTimestamp": null}));
    let ui = &v["status"]["userInfo"];
    assert_eq!(ui["username"], "alice");
    assert_eq!(ui["uid"].as_str().unwrap().len(), 36);
    assert_eq!(
        ui["groups"],
        json!([
            "developers",
            "system:authenticated",
            "system:authenticated:oauth"
        ])
    );

    let (code, v) = s.post(path, Some("sa-token"), body.clone()).await;
    assert_eq!(code, 201);
    assert_eq!(
        v["status"]["userInfo"]["username"],
        "system:serviceaccount:ci:builder"
    );
    assert_eq!(
        v["status"]["userInfo"]["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:ci",
            "system:authenticated"
        ])
    );

    let (code, v) = s.post(path, None, body.clone()).await;
    assert_eq!(code, 201);
    assert_eq!(
        v["status"]["userInfo"],
        json!({"username":"system:anonymous","groups":["system:unauthenticated"]})
    );

    let (code, v) = s.post(path, Some("wrong"), body).await;
    assert_eq!(code, 401);
    assert_eq!(
        v,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"Unauthorized","reason":"Unauthorized","code":401})
    );
    assert_eq!(s.cluster.stats()["selfsubjectreviews"], 4);
    assert_eq!(s.cluster.stats()["unauthorized"], 1);
}

#[tokio::test]
async fn users_tilde() {
    let s = start().await;
    let (code, v) = s
        .get("/apis/user.openshift.io/v1/users/~", Some("alice-token"))
        .await;
    assert_eq!(code, 200);
    assert_eq!(v["kind"], "User");
    assert_eq!(v["apiVersion"], "user.openshift.io/v1");
    assert_eq!(v["metadata"]["name"], "alice");
    assert!(v["metadata"]["uid"].is_string());
    assert_eq!(v["identities"], json!([]));
    assert!(v["groups"]
        .as_array()
        .unwrap()
        .contains(&json!("developers")));

    let (code, v) = s.get("/oapi/v1/users/~", Some("sa-token")).await;
    assert_eq!(code, 200);
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["metadata"]["name"], "system:serviceaccount:ci:builder");

    let (code, v) = s.get("/apis/user.openshift.io/v1/users/~", None).await;
    assert_eq!(code, 403);
    assert_eq!(v["reason"], "Forbidden");
    assert_eq!(
        v["message"],
        "users.user.openshift.io \"~\" is forbidden: User \"system:anonymous\" cannot get resource \"users\" in API group \"user.openshift.io\" at the cluster scope"
    );
    assert_eq!(
        v["details"],
        json!({"name":"~","group":"user.openshift.io","kind":"users"})
    );

    let (code, v) = s.get("/oapi/v1/users/~", None).await;
    assert_eq!(code, 403);
    assert_eq!(
        v["message"],
        "users \"~\" is forbidden: User \"system:anonymous\" cannot get resource \"users\" in API group \"\" at the cluster scope"
    );

    let (code, _) = s.get("/oapi/v1/users/~", Some("bogus")).await;
    assert_eq!(code, 401);
    // Other users need `get users`.
    let (code, _) = s
        .get("/apis/user.openshift.io/v1/users/bob", Some("alice-token"))
        .await;
    assert_eq!(code, 403);
    assert_eq!(s.cluster.stats()["users"], 6);
    assert_eq!(s.cluster.stats()["oapi.users"], 3);
}

#[tokio::test]
async fn self_subject_access_reviews() {
    let s = start().await;
    let (code, v) = s
        .ssar(Some("alice-token"), layers("team-a", "update"))
        .await;
    assert_eq!(code, 201);
    assert_eq!(v["kind"], "SelfSubjectAccessReview");
    assert_eq!(v["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(v["spec"]["resourceAttributes"], layers("team-a", "update"));
    assert_eq!(v["status"]["allowed"], true);
    assert!(v["status"].get("denied").is_none());
    assert_eq!(
        v["status"]["reason"],
        "RBAC: allowed by RoleBinding \"bindings[0]/team-a\" of ClusterRole \"system:image-builder\" to User \"alice\""
    );

    let (code, v) = s.ssar(Some("alice-token"), layers("team-b", "get")).await;
    assert_eq!(code, 201);
    assert_eq!(v["status"]["allowed"], false);

    // Group binding in "shared"; subresource given separately.
    let attrs = json!({"namespace":"shared","verb":"get","group":"image.openshift.io",
                       "resource":"imagestreams","subresource":"layers","name":"x"});
    let (_, v) = s.ssar(Some("alice-token"), attrs.clone()).await;
    assert_eq!(v["status"]["allowed"], true);
    assert_eq!(v["spec"]["resourceAttributes"], attrs);
    let (_, v) = s.ssar(Some("bob-token"), attrs).await;
    assert_eq!(v["status"]["allowed"], false);

    // Cluster-scoped prune check.
    let prune = json!({"verb":"delete","group":"image.openshift.io","resource":"images"});
    let (_, v) = s.ssar(Some("pat-token"), prune.clone()).await;
    assert_eq!(v["status"]["allowed"], true);
    let (_, v) = s.ssar(Some("alice-token"), prune).await;
    assert_eq!(v["status"]["allowed"], false);

    // Anonymous may not create SSARs (OCP 4.16+).
    let (code, v) = s.ssar(None, layers("public", "get")).await;
    assert_eq!(code, 403);
    assert_eq!(
        v,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"selfsubjectaccessreviews.authorization.k8s.io is forbidden: User \"system:anonymous\" cannot create resource \"selfsubjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope",
               "reason":"Forbidden","details":{"group":"authorization.k8s.io","kind":"selfsubjectaccessreviews"},"code":403})
    );
    let (code, _) = s.ssar(Some("nope"), layers("public", "get")).await;
    assert_eq!(code, 401);

    // Neither attribute kind → 422.
    let (code, v) = s
        .post(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            Some("alice-token"),
            json!({"kind":"SelfSubjectAccessReview","spec":{}}),
        )
        .await;
    assert_eq!(code, 422);
    assert_eq!(v["reason"], "Invalid");
}

#[tokio::test]
async fn anonymous_ssar_allowed_when_self_access_reviewer_bound() {
    let p = format!(
        "{}\n[[bindings]]\nrole = \"self-access-reviewer\"\nsubjects = [\"group:system:unauthenticated\"]\n",
        policy()
    );
    let s = start_with(&p).await;
    let (code, v) = s.ssar(None, layers("public", "get")).await;
    assert_eq!(code, 201);
    assert_eq!(v["status"]["allowed"], true);
    let (code, v) = s.ssar(None, layers("team-a", "get")).await;
    assert_eq!(code, 201);
    assert_eq!(v["status"]["allowed"], false);
    let (code, v) = s.legacy_lsar("public", None, "get", "is").await;
    assert_eq!(code, 201);
    assert_eq!(v["allowed"], true);
}

#[tokio::test]
async fn subject_access_reviews() {
    let s = start().await;
    let path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let anon = |ns: &str| {
        json!({"apiVersion":"authorization.k8s.io/v1","kind":"SubjectAccessReview",
               "spec":{"user":"system:anonymous","groups":["system:unauthenticated"],
                       "resourceAttributes": layers(ns, "get")}})
    };
    let (code, v) = s.post(path, Some("registry-token"), anon("public")).await;
    assert_eq!(code, 201);
    assert_eq!(v["kind"], "SubjectAccessReview");
    assert_eq!(v["spec"]["user"], "system:anonymous");
    assert_eq!(v["spec"]["groups"], json!(["system:unauthenticated"]));
    assert_eq!(v["status"]["allowed"], true);
    let (_, v) = s.post(path, Some("registry-token"), anon("team-a")).await;
    assert_eq!(v["status"]["allowed"], false);

    // Only the given groups count: alice without "developers" has no access to "shared".
    let alice = |groups: Value| {
        json!({"kind":"SubjectAccessReview","spec":{"user":"alice","groups":groups,
               "resourceAttributes": layers("shared", "get")}})
    };
    let (_, v) = s
        .post(path, Some("registry-token"), alice(json!(null)))
        .await;
    assert_eq!(v["status"]["allowed"], false);
    let (_, v) = s
        .post(path, Some("registry-token"), alice(json!(["developers"])))
        .await;
    assert_eq!(v["status"]["allowed"], true);

    // Callers need `create subjectaccessreviews`.
    let (code, v) = s.post(path, Some("alice-token"), anon("public")).await;
    assert_eq!(code, 403);
    assert_eq!(
        v["message"],
        "subjectaccessreviews.authorization.k8s.io is forbidden: User \"alice\" cannot create resource \"subjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope"
    );
    let (code, _) = s.post(path, None, anon("public")).await;
    assert_eq!(code, 403);

    // No user and no groups → 422.
    let (code, v) = s
        .post(
            path,
            Some("registry-token"),
            json!({"kind":"SubjectAccessReview","spec":{"resourceAttributes": layers("x", "get")}}),
        )
        .await;
    assert_eq!(code, 422);
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("at least one of user or group"));
    assert_eq!(s.cluster.stats()["subjectaccessreviews"], 7);
}

#[tokio::test]
async fn local_subject_access_reviews() {
    let s = start().await;
    let path = "/apis/authorization.k8s.io/v1/namespaces/team-a/localsubjectaccessreviews";
    let body = |user: &str, ns: &str| {
        json!({"apiVersion":"authorization.k8s.io/v1","kind":"LocalSubjectAccessReview",
               "metadata":{"namespace":"team-a"},
               "spec":{"user":user,"resourceAttributes":{"namespace":ns,"verb":"update",
                       "group":"image.openshift.io","resource":"imagestreams/layers"}}})
    };
    // Personal review: implicit.
    let (code, v) = s.post(path, Some("alice-token"), body("alice", "")).await;
    assert_eq!(code, 201);
    assert_eq!(v["kind"], "LocalSubjectAccessReview");
    assert_eq!(v["metadata"]["namespace"], "team-a");
    assert_eq!(v["spec"]["resourceAttributes"]["namespace"], "team-a");
    assert_eq!(v["status"]["allowed"], true);
    // About someone else: needs `create localsubjectaccessreviews` in the namespace.
    let (code, v) = s
        .post(path, Some("alice-token"), body("bob", "team-a"))
        .await;
    assert_eq!(code, 403);
    assert_eq!(
        v["message"],
        "localsubjectaccessreviews.authorization.k8s.io is forbidden: User \"alice\" cannot create resource \"localsubjectaccessreviews\" in API group \"authorization.k8s.io\" in the namespace \"team-a\""
    );
    let (code, _) = s.post(path, None, body("system:anonymous", "team-a")).await;
    assert_eq!(code, 403);
    // Namespace mismatch.
    let (code, v) = s
        .post(path, Some("alice-token"), body("alice", "team-b"))
        .await;
    assert_eq!(code, 400);
    assert_eq!(v["reason"], "BadRequest");
}

#[tokio::test]
async fn legacy_reviews() {
    let s = start().await;
    let (code, v) = s
        .legacy_lsar("team-a", Some("alice-token"), "update", "is")
        .await;
    assert_eq!(code, 201);
    assert_eq!(
        v,
        json!({"kind":"SubjectAccessReviewResponse","apiVersion":"v1","namespace":"team-a",
               "allowed":true,"reason":"allowed by rule in team-a","evaluationError":""})
    );
    let (code, v) = s
        .legacy_lsar("team-b", Some("alice-token"), "get", "is")
        .await;
    assert_eq!(code, 201);
    assert_eq!(v["allowed"], false);
    assert_eq!(v["namespace"], "team-b");
    assert_eq!(
        v["reason"],
        "User \"alice\" cannot get imagestreams/layers in project \"team-b\""
    );

    // Anonymous callers are refused unless self-access-reviewer is bound.
    let (code, v) = s.legacy_lsar("public", None, "get", "is").await;
    assert_eq!(code, 403);
    assert_eq!(
        v["message"],
        "localsubjectaccessreviews is forbidden: User \"system:anonymous\" cannot create resource \"localsubjectaccessreviews\" in API group \"\" in the namespace \"public\""
    );
    let (code, _) = s.legacy_lsar("public", Some("bad"), "get", "is").await;
    assert_eq!(code, 401);

    // Namespaced SAR fallback.
    let (code, v) = s
        .post(
            "/oapi/v1/namespaces/team-a/subjectaccessreviews",
            Some("sa-token"),
            json!({"kind":"SubjectAccessReview","apiVersion":"v1","namespace":"","verb":"get",
                   "resourceAPIGroup":"","resourceAPIVersion":"","resource":"imagestreams/layers",
                   "resourceName":"is","user":"","groups":null,"scopes":null}),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(v["namespace"], "team-a");
    assert_eq!(v["allowed"], true);

    // Cluster prune check.
    let prune = json!({"kind":"SubjectAccessReview","apiVersion":"v1","namespace":"","verb":"delete",
                       "resourceAPIGroup":"","resourceAPIVersion":"","resource":"images","resourceName":"",
                       "user":"","groups":null});
    let (code, v) = s
        .post(
            "/oapi/v1/subjectaccessreviews",
            Some("pat-token"),
            prune.clone(),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(
        v,
        json!({"kind":"SubjectAccessReviewResponse","apiVersion":"v1","namespace":"",
               "allowed":true,"reason":"allowed by cluster rule","evaluationError":""})
    );
    let (_, v) = s
        .post("/oapi/v1/subjectaccessreviews", Some("alice-token"), prune)
        .await;
    assert_eq!(v["allowed"], false);
    assert_eq!(
        v["reason"],
        "User \"alice\" cannot delete images at the cluster scope"
    );

    // Reviews about others need the create permission (the registry SA has it cluster-wide).
    let other = json!({"kind":"SubjectAccessReview","apiVersion":"v1","namespace":"","verb":"delete",
                       "resourceAPIGroup":"","resource":"images","user":"pat","groups":[]});
    let (code, _) = s
        .post(
            "/oapi/v1/subjectaccessreviews",
            Some("alice-token"),
            other.clone(),
        )
        .await;
    assert_eq!(code, 403);
    let (code, v) = s
        .post(
            "/oapi/v1/subjectaccessreviews",
            Some("registry-token"),
            other,
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(v["allowed"], true);

    // 3.6 style: modern group on the legacy endpoint.
    let (code, v) = s
        .post(
            "/oapi/v1/namespaces/team-a/localsubjectaccessreviews",
            Some("alice-token"),
            json!({"kind":"LocalSubjectAccessReview","apiVersion":"v1","verb":"get",
                   "resourceAPIGroup":"image.openshift.io","resource":"imagestreams/layers","resourceName":"is"}),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(v["allowed"], true);

    // Wrong kind for the endpoint and namespace mismatch.
    let (code, _) = s
        .post(
            "/oapi/v1/namespaces/team-a/localsubjectaccessreviews",
            Some("alice-token"),
            json!({"kind":"SubjectAccessReview","apiVersion":"v1","verb":"get","resource":"imagestreams/layers"}),
        )
        .await;
    assert_eq!(code, 400);
    let (code, _) = s
        .post(
            "/oapi/v1/namespaces/team-a/localsubjectaccessreviews",
            Some("alice-token"),
            json!({"kind":"LocalSubjectAccessReview","namespace":"team-b","verb":"get","resource":"imagestreams/layers"}),
        )
        .await;
    assert_eq!(code, 400);
    let st = s.cluster.stats();
    assert_eq!(st["oapi.localsubjectaccessreviews"], 7);
    assert_eq!(st["oapi.subjectaccessreviews"], 5);
    assert_eq!(st["subjectaccessreviews"], 5);
}

#[tokio::test]
async fn protocol_errors() {
    let s = start().await;
    let ssar = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

    let (code, v) = s
        .post_raw(ssar, Some("alice-token"), b"{not json".to_vec())
        .await;
    assert_eq!(code, 400);
    assert_eq!(v["kind"], "Status");
    assert_eq!(v["reason"], "BadRequest");
    assert_eq!(v["code"], 400);

    let (code, _) = s
        .post_raw(ssar, Some("alice-token"), b"[1,2]".to_vec())
        .await;
    assert_eq!(code, 400);
    let (code, _) = s.post_raw(ssar, Some("alice-token"), Vec::new()).await;
    assert_eq!(code, 400);
    let (code, _) = s
        .post(
            ssar,
            Some("alice-token"),
            json!({"kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":5}}}),
        )
        .await;
    assert_eq!(code, 400);
    let (code, v) = s
        .post(
            ssar,
            Some("alice-token"),
            json!({"apiVersion":"v1","kind":"SelfSubjectAccessReview","spec":{}}),
        )
        .await;
    assert_eq!(code, 400);
    assert!(v["message"].as_str().unwrap().contains("API version"));
    // Go-style nulls are accepted.
    let (code, v) = s
        .post(
            ssar,
            Some("alice-token"),
            json!({"kind":null,"spec":{"resourceAttributes":{"namespace":"team-a","verb":"get",
                   "group":"image.openshift.io","resource":"imagestreams/layers","name":null}}}),
        )
        .await;
    assert_eq!(code, 201);
    assert_eq!(v["status"]["allowed"], true);

    // Too large.
    let big = vec![b' '; (1 << 20) + 1];
    let (code, v) = s.post_raw(ssar, Some("alice-token"), big).await;
    assert_eq!(code, 413);
    assert_eq!(v["kind"], "Status");

    // Unknown path, wrong method.
    let (code, v) = s.get("/apis/nope/v1/things", Some("alice-token")).await;
    assert_eq!(code, 404);
    assert_eq!(
        v,
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"the server could not find the requested resource","reason":"NotFound",
               "details":{},"code":404})
    );
    let (code, _) = s.get("/apis/nope/v1/things", Some("bad-token")).await;
    assert_eq!(code, 401);
    let (code, v) = s.get(ssar, Some("alice-token")).await;
    assert_eq!(code, 405);
    assert_eq!(v["reason"], "MethodNotAllowed");
    assert_eq!(v["code"], 405);
    let (code, _) = s.post("/healthz", None, json!({})).await;
    assert_eq!(code, 405);
}
