//! HTTP handlers of the embedded API (JSON shapes of the real Kubernetes /
//! OpenShift endpoints).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::{json, Value};

use super::identity::{Authn, UserInfo};
use super::images::nullable;
use super::rbac::{Decision, Request, ResourceAttributes, K8S_AUTHZ_GROUP, USER_GROUP};
use super::{Cluster, Kind};

mod images;

/// Maximum accepted request body.
pub const MAX_BODY: usize = 1 << 20;

type Shared = Arc<Cluster>;

pub fn router(cluster: Shared) -> Router {
    Router::new()
        .route(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            post(self_subject_review),
        )
        .route("/apis/user.openshift.io/v1/users/{name}", get(user_modern))
        .route("/oapi/v1/users/{name}", get(user_legacy))
        .route(
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            post(self_subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            post(subject_access_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/namespaces/{ns}/localsubjectaccessreviews",
            post(local_subject_access_review),
        )
        .route(
            "/oapi/v1/namespaces/{ns}/localsubjectaccessreviews",
            post(legacy_local_review),
        )
        .route(
            "/oapi/v1/namespaces/{ns}/subjectaccessreviews",
            post(legacy_namespaced_review),
        )
        .route("/oapi/v1/subjectaccessreviews", post(legacy_cluster_review))
        .merge(images::routes())
        .route("/healthz", get(healthz))
        .route("/portcullis/stats", get(stats))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(cluster)
}

// ---------------------------------------------------------------------------
// Status errors

/// A k8s `Status` failure response.
#[derive(Debug)]
pub struct ApiError {
    code: StatusCode,
    reason: &'static str,
    message: String,
    details: Option<Value>,
}

impl ApiError {
    fn new(code: StatusCode, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized")
    }

    fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    fn not_found() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
        );
        e.details = Some(json!({}));
        e
    }

    /// `<resource>.<group> "<name>" is forbidden: User "<user>" cannot <verb> resource ...`
    fn forbidden(user: &UserInfo, attrs: &ResourceAttributes) -> ApiError {
        let qualified = if attrs.group.is_empty() {
            attrs.resource.clone()
        } else {
            format!("{}.{}", attrs.resource, attrs.group)
        };
        let object = if attrs.name.is_empty() {
            qualified
        } else {
            format!("{qualified} {:?}", attrs.name)
        };
        let scope = if attrs.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", attrs.namespace)
        };
        let message = format!(
            "{object} is forbidden: User {:?} cannot {} resource {:?} in API group {:?} {scope}",
            user.username,
            attrs.verb,
            attrs.full_resource(),
            attrs.group
        );
        let mut details = serde_json::Map::new();
        if !attrs.name.is_empty() {
            details.insert("name".into(), json!(attrs.name));
        }
        if !attrs.group.is_empty() {
            details.insert("group".into(), json!(attrs.group));
        }
        details.insert("kind".into(), json!(attrs.resource));
        let mut e = ApiError::new(StatusCode::FORBIDDEN, "Forbidden", message);
        e.details = Some(Value::Object(details));
        e
    }

    /// 422 `<Kind>.<group> "" is invalid: <field>: Invalid value: ...`.
    fn invalid(kind: &str, field: &str, value: &str, detail: &str) -> ApiError {
        let message = format!(
            "{kind}.{K8S_AUTHZ_GROUP} \"\" is invalid: {field}: Invalid value: {value:?}: {detail}"
        );
        let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", message);
        e.details = Some(json!({
            "group": K8S_AUTHZ_GROUP,
            "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": format!("Invalid value: {value:?}: {detail}"), "field": field}],
        }));
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code.as_u16(),
        });
        if let (Some(d), Some(obj)) = (self.details, body.as_object_mut()) {
            obj.insert("details".into(), d);
        }
        (self.code, Json(body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

fn created<T: Serialize>(value: T) -> Response {
    (StatusCode::CREATED, Json(value)).into_response()
}

// ---------------------------------------------------------------------------
// Helpers

fn authenticate(cluster: &Cluster, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    match cluster.authenticate(headers.get(header::AUTHORIZATION)) {
        Authn::Anonymous(u) | Authn::Authenticated(u) => Ok(u),
        Authn::Rejected => Err(ApiError::unauthorized()),
    }
}

/// Read the body, at most [`MAX_BODY`] bytes.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            format!("the request body is too large (limit is {MAX_BODY} bytes)"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut buf = BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("error reading request body: {e}")))?;
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Decode a JSON object body, checking `kind` / `apiVersion` when present.
fn decode<T: DeserializeOwned>(
    bytes: &[u8],
    kind: &str,
    api_versions: &[&str],
) -> Result<(T, TypeMeta), ApiError> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("couldn't decode {kind} request body: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::bad_request(format!(
            "couldn't decode {kind} request body: expected a JSON object"
        )));
    }
    let meta: TypeMeta = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::bad_request(format!("couldn't decode {kind} request body: {e}")))?;
    if !meta.api_version.is_empty() && !api_versions.contains(&meta.api_version.as_str()) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            meta.api_version,
            api_versions.first().copied().unwrap_or_default()
        )));
    }
    if !meta.kind.is_empty() && meta.kind != kind {
        return Err(ApiError::bad_request(format!(
            "{} in version {:?} cannot be handled as a {kind}: the kind does not match the endpoint",
            meta.kind,
            api_versions.first().copied().unwrap_or_default()
        )));
    }
    let obj: T = serde_json::from_value(value)
        .map_err(|e| ApiError::bad_request(format!("couldn't decode {kind} request body: {e}")))?;
    Ok((obj, meta))
}

/// Read a request body and decode it as a `kind` object of one of `api_versions`.
pub(super) async fn read_object<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    kind: &str,
    api_versions: &[&str],
) -> Result<T, ApiError> {
    let bytes = read_body(headers, body).await?;
    Ok(decode(&bytes, kind, api_versions)?.0)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default, deserialize_with = "nullable")]
    api_version: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct ObjectMeta {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    namespace: String,
}

// ---------------------------------------------------------------------------
// authentication.k8s.io/v1 SelfSubjectReview

async fn self_subject_review(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    cluster.count(Kind::SelfSubjectReviews);
    let user = authenticate(&cluster, &headers)?;
    let bytes = read_body(&headers, body).await?;
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        let _: (Value, TypeMeta) =
            decode(&bytes, "SelfSubjectReview", &["authentication.k8s.io/v1"])?;
    }
    Ok(created(json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": user_info_json(&user)},
    })))
}

fn user_info_json(user: &UserInfo) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("username".into(), json!(user.username));
    if !user.uid.is_empty() {
        m.insert("uid".into(), json!(user.uid));
    }
    m.insert("groups".into(), json!(user.groups));
    Value::Object(m)
}

// ---------------------------------------------------------------------------
// users/~

async fn user_modern(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    cluster.count(Kind::Users);
    get_user(
        &cluster,
        &headers,
        &name,
        USER_GROUP,
        "user.openshift.io/v1",
    )
}

async fn user_legacy(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    cluster.count(Kind::Users);
    cluster.count(Kind::LegacyUsers);
    get_user(&cluster, &headers, &name, "", "v1")
}

fn get_user(
    cluster: &Cluster,
    headers: &HeaderMap,
    name: &str,
    group: &str,
    api_version: &str,
) -> ApiResult {
    let caller = authenticate(cluster, headers)?;
    let attrs = ResourceAttributes::new("get", group, "users", "", name);
    if !cluster
        .authorize(&caller, &Request::Resource(attrs.clone()))
        .allowed
    {
        return Err(ApiError::forbidden(&caller, &attrs));
    }
    let user = if name == "~" {
        caller
    } else {
        cluster.find_user(name).ok_or_else(|| {
            let qualified = if group.is_empty() {
                "users".to_string()
            } else {
                format!("users.{group}")
            };
            let mut e = ApiError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("{qualified} {name:?} not found"),
            );
            e.details = Some(json!({"name": name, "group": group, "kind": "users"}));
            e
        })?
    };
    let mut metadata = serde_json::Map::new();
    metadata.insert("name".into(), json!(user.username));
    if !user.uid.is_empty() {
        metadata.insert("uid".into(), json!(user.uid));
    }
    Ok(Json(json!({
        "kind": "User",
        "apiVersion": api_version,
        "metadata": metadata,
        "identities": [],
        "groups": user.groups,
    }))
    .into_response())
}

// ---------------------------------------------------------------------------
// authorization.k8s.io/v1 reviews

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceAttributesJson {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    namespace: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    verb: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    group: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    version: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    resource: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    subresource: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    name: String,
}

impl ResourceAttributesJson {
    fn to_request(&self) -> Request {
        Request::Resource(ResourceAttributes {
            verb: self.verb.clone(),
            group: self.group.clone(),
            resource: self.resource.clone(),
            subresource: self.subresource.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
        })
    }
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
struct NonResourceAttributesJson {
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    path: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    verb: String,
}

/// Spec of SelfSubjectAccessReview (user fields absent) and of
/// (Local)SubjectAccessReview.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource_attributes: Option<ResourceAttributesJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    non_resource_attributes: Option<NonResourceAttributesJson>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    user: String,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    groups: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    extra: BTreeMap<String, Vec<String>>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "String::is_empty"
    )]
    uid: String,
}

impl ReviewSpec {
    /// The request to evaluate; 422 unless exactly one of the attribute kinds is set.
    fn request(&self, kind: &str, allow_non_resource: bool) -> Result<Request, ApiError> {
        match (&self.resource_attributes, &self.non_resource_attributes) {
            (Some(r), None) => Ok(r.to_request()),
            (None, Some(n)) if allow_non_resource => Ok(Request::NonResource {
                verb: n.verb.clone(),
                path: n.path.clone(),
            }),
            (None, Some(_)) => Err(ApiError::invalid(
                kind,
                "spec.nonResourceAttributes",
                "",
                "disallowed on this kind of request",
            )),
            (Some(_), Some(_)) => Err(ApiError::invalid(
                kind,
                "spec.nonResourceAttributes",
                "",
                "cannot be specified in combination with resourceAttributes",
            )),
            (None, None) => Err(ApiError::invalid(
                kind,
                "spec.resourceAttributes",
                "null",
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            )),
        }
    }

    fn require_subject(&self, kind: &str) -> Result<(), ApiError> {
        if self.user.is_empty() && self.groups.is_empty() {
            return Err(ApiError::invalid(
                kind,
                "spec.user",
                "",
                "at least one of user or group must be specified",
            ));
        }
        Ok(())
    }

    /// The identity described by the spec: exactly the given user name and groups.
    fn subject(&self) -> UserInfo {
        UserInfo {
            username: self.user.clone(),
            uid: self.uid.clone(),
            groups: self.groups.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct ReviewBody {
    #[serde(default)]
    metadata: Option<ObjectMeta>,
    #[serde(default, deserialize_with = "nullable")]
    spec: ReviewSpec,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReviewStatus {
    allowed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    denied: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    reason: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    evaluation_error: String,
}

impl From<Decision> for ReviewStatus {
    fn from(d: Decision) -> Self {
        ReviewStatus {
            allowed: d.allowed,
            denied: false,
            reason: d.reason,
            evaluation_error: String::new(),
        }
    }
}

fn review_response(
    kind: &str,
    namespace: &str,
    spec: ReviewSpec,
    status: ReviewStatus,
) -> Response {
    let mut metadata = serde_json::Map::new();
    if !namespace.is_empty() {
        metadata.insert("namespace".into(), json!(namespace));
    }
    metadata.insert("creationTimestamp".into(), Value::Null);
    created(json!({
        "kind": kind,
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }))
}

/// Check that `caller` may create `resource` (authorization.k8s.io) in `namespace`.
fn check_create(
    cluster: &Cluster,
    caller: &UserInfo,
    resource: &str,
    group: &str,
    namespace: &str,
) -> Result<(), ApiError> {
    check(
        cluster,
        caller,
        ResourceAttributes::new("create", group, resource, namespace, ""),
    )
}

/// RBAC check of a request: 403 unless `caller` may.
fn check(cluster: &Cluster, caller: &UserInfo, attrs: ResourceAttributes) -> Result<(), ApiError> {
    if cluster
        .authorize(caller, &Request::Resource(attrs.clone()))
        .allowed
    {
        Ok(())
    } else {
        Err(ApiError::forbidden(caller, &attrs))
    }
}

/// Whether `caller` may create a review about itself in `namespace`
/// (implicit for authenticated identities via `system:basic-user`).
fn may_review_self(cluster: &Cluster, caller: &UserInfo, namespace: &str) -> bool {
    let attrs = ResourceAttributes::new(
        "create",
        K8S_AUTHZ_GROUP,
        "selfsubjectaccessreviews",
        namespace,
        "",
    );
    cluster.authorize(caller, &Request::Resource(attrs)).allowed
}

const K8S_AUTHZ_V1: &[&str] = &["authorization.k8s.io/v1"];

/// A cluster-scoped review: the authenticated caller, allowed to create `resource`, and the
/// review it sent.
async fn cluster_review(
    cluster: &Cluster,
    headers: &HeaderMap,
    body: Body,
    kind: &str,
    resource: &str,
) -> Result<(UserInfo, ReviewBody), ApiError> {
    let caller = authenticate(cluster, headers)?;
    check_create(cluster, &caller, resource, K8S_AUTHZ_GROUP, "")?;
    let review = read_object(headers, body, kind, K8S_AUTHZ_V1).await?;
    Ok((caller, review))
}

async fn self_subject_access_review(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    const KIND: &str = "SelfSubjectAccessReview";
    cluster.count(Kind::SelfSubjectAccessReviews);
    let (caller, review) =
        cluster_review(&cluster, &headers, body, KIND, "selfsubjectaccessreviews").await?;
    let mut spec = review.spec;
    let req = spec.request(KIND, true)?;
    let status = ReviewStatus::from(cluster.authorize(&caller, &req));
    // A self review carries no user fields.
    spec.user.clear();
    spec.groups.clear();
    spec.uid.clear();
    spec.extra.clear();
    Ok(review_response(KIND, "", spec, status))
}

async fn subject_access_review(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    const KIND: &str = "SubjectAccessReview";
    cluster.count(Kind::SubjectAccessReviews);
    let (_, review) =
        cluster_review(&cluster, &headers, body, KIND, "subjectaccessreviews").await?;
    let spec = review.spec;
    let req = spec.request(KIND, true)?;
    spec.require_subject(KIND)?;
    let status = ReviewStatus::from(cluster.authorize(&spec.subject(), &req));
    Ok(review_response(KIND, "", spec, status))
}

async fn local_subject_access_review(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Body,
) -> ApiResult {
    const KIND: &str = "LocalSubjectAccessReview";
    cluster.count(Kind::LocalSubjectAccessReviews);
    let caller = authenticate(&cluster, &headers)?;
    let review: ReviewBody = read_object(&headers, body, KIND, K8S_AUTHZ_V1).await?;
    if let Some(meta) = &review.metadata {
        if !meta.namespace.is_empty() && meta.namespace != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
    }
    let mut spec = review.spec;
    if let Some(ra) = spec.resource_attributes.as_mut() {
        if ra.namespace.is_empty() {
            ra.namespace = ns.clone();
        } else if ra.namespace != ns {
            return Err(ApiError::bad_request(format!(
                "spec.resourceAttributes.namespace must match namespace: {ns}"
            )));
        }
    }
    // Personal review: the caller asking about itself (and no more groups than it has).
    let personal =
        spec.user == caller.username && spec.groups.iter().all(|g| caller.groups.contains(g));
    let may_create_any = check_create(
        &cluster,
        &caller,
        "localsubjectaccessreviews",
        K8S_AUTHZ_GROUP,
        &ns,
    );
    if let Err(e) = may_create_any {
        if !(personal && may_review_self(&cluster, &caller, &ns)) {
            return Err(e);
        }
    }
    let req = spec.request(KIND, false)?;
    spec.require_subject(KIND)?;
    let status = ReviewStatus::from(cluster.authorize(&spec.subject(), &req));
    Ok(review_response(KIND, &ns, spec, status))
}

// ---------------------------------------------------------------------------
// Legacy OpenShift /oapi/v1 reviews

/// OpenShift `authorization/v1` (Local)SubjectAccessReview with inlined action.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyReview {
    #[serde(default, deserialize_with = "nullable")]
    namespace: String,
    #[serde(default, deserialize_with = "nullable")]
    verb: String,
    #[serde(default, rename = "resourceAPIGroup", deserialize_with = "nullable")]
    resource_api_group: String,
    #[serde(default, deserialize_with = "nullable")]
    resource: String,
    #[serde(default, deserialize_with = "nullable")]
    resource_name: String,
    #[serde(default, deserialize_with = "nullable")]
    path: String,
    #[serde(default, rename = "isNonResourceURL", deserialize_with = "nullable")]
    is_non_resource_url: bool,
    #[serde(default, deserialize_with = "nullable")]
    user: String,
    #[serde(default, deserialize_with = "nullable")]
    groups: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LegacyEndpoint {
    Local,
    NamespacedSar,
    ClusterSar,
}

const LEGACY_VERSIONS: &[&str] = &["v1", "authorization.openshift.io/v1"];

async fn legacy_local_review(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Body,
) -> ApiResult {
    cluster.count(Kind::LocalSubjectAccessReviews);
    cluster.count(Kind::LegacyLocalSubjectAccessReviews);
    legacy_review(&cluster, &headers, body, LegacyEndpoint::Local, Some(ns)).await
}

async fn legacy_namespaced_review(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Body,
) -> ApiResult {
    cluster.count(Kind::SubjectAccessReviews);
    cluster.count(Kind::LegacySubjectAccessReviews);
    legacy_review(
        &cluster,
        &headers,
        body,
        LegacyEndpoint::NamespacedSar,
        Some(ns),
    )
    .await
}

async fn legacy_cluster_review(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult {
    cluster.count(Kind::SubjectAccessReviews);
    cluster.count(Kind::LegacySubjectAccessReviews);
    legacy_review(&cluster, &headers, body, LegacyEndpoint::ClusterSar, None).await
}

async fn legacy_review(
    cluster: &Cluster,
    headers: &HeaderMap,
    body: Body,
    endpoint: LegacyEndpoint,
    url_namespace: Option<String>,
) -> ApiResult {
    let (kind, resource) = match endpoint {
        LegacyEndpoint::Local => ("LocalSubjectAccessReview", "localsubjectaccessreviews"),
        _ => ("SubjectAccessReview", "subjectaccessreviews"),
    };
    let caller = authenticate(cluster, headers)?;
    let bytes = read_body(headers, body).await?;
    let (mut review, meta): (LegacyReview, _) = decode(&bytes, kind, LEGACY_VERSIONS)?;
    if let Some(ns) = &url_namespace {
        if review.namespace.is_empty() {
            review.namespace = ns.clone();
        } else if review.namespace != *ns {
            return Err(ApiError::bad_request(format!("namespace must be: {ns}")));
        }
    }
    let scope = url_namespace.as_deref().unwrap_or("");
    let personal = review.user.is_empty() && review.groups.is_empty();
    if let Err(e) = check_create(cluster, &caller, resource, "", scope) {
        if !(personal && may_review_self(cluster, &caller, &review.namespace)) {
            return Err(e);
        }
    }
    let subject = if personal {
        caller
    } else {
        UserInfo {
            username: review.user.clone(),
            uid: String::new(),
            groups: review.groups.clone(),
        }
    };
    let req = if review.is_non_resource_url {
        Request::NonResource {
            verb: review.verb.clone(),
            path: review.path.clone(),
        }
    } else {
        Request::Resource(ResourceAttributes::new(
            &review.verb,
            &review.resource_api_group,
            &review.resource,
            &review.namespace,
            &review.resource_name,
        ))
    };
    let decision = cluster.authorize(&subject, &req);
    let reason = legacy_reason(&subject, &review, &decision);
    let api_version = if meta.api_version.is_empty() {
        "v1".to_string()
    } else {
        meta.api_version
    };
    Ok(created(json!({
        "kind": "SubjectAccessReviewResponse",
        "apiVersion": api_version,
        "namespace": review.namespace,
        "allowed": decision.allowed,
        "reason": reason,
        "evaluationError": "",
    })))
}

/// OpenShift 3.x wording of the review reason.
fn legacy_reason(subject: &UserInfo, review: &LegacyReview, decision: &Decision) -> String {
    if decision.allowed {
        return match &decision.allowed_in_namespace {
            Some(ns) => format!("allowed by rule in {ns}"),
            None => "allowed by cluster rule".to_string(),
        };
    }
    if review.is_non_resource_url {
        return format!(
            "User {:?} cannot {} on {:?}",
            subject.username, review.verb, review.path
        );
    }
    let resource = if review.resource_api_group.is_empty() {
        review.resource.clone()
    } else {
        format!("{}.{}", review.resource, review.resource_api_group)
    };
    if review.namespace.is_empty() {
        format!(
            "User {:?} cannot {} {} at the cluster scope",
            subject.username, review.verb, resource
        )
    } else {
        format!(
            "User {:?} cannot {} {} in project {:?}",
            subject.username, review.verb, resource, review.namespace
        )
    }
}

// ---------------------------------------------------------------------------
// Misc

async fn healthz() -> &'static str {
    "ok"
}

async fn stats(State(cluster): State<Shared>) -> Response {
    Json(cluster.stats()).into_response()
}

async fn not_found(State(cluster): State<Shared>, headers: HeaderMap) -> ApiError {
    match authenticate(&cluster, &headers) {
        Err(e) => e,
        Ok(_) => ApiError::not_found(),
    }
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
    )
}

#[cfg(test)]
mod tests;
