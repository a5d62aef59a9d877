//! HTTP handlers of the image API (`/apis/image.openshift.io/v1`: images,
//! imagestreams, imagestreammappings, imagestreamtags, imagestreamimages) and
//! of the core LimitRange / ResourceQuota lists.
//!
//! Every handler authenticates, authorizes through RBAC, then runs its store
//! work (one transaction per call) on the blocking pool.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{authenticate, check, created, read_object, ApiError, ApiResult, Shared};
use crate::cluster::admission::{
    check_image_size, check_image_storage_quota, check_stream_quota, check_stream_usage,
    limits_image_storage, quota_used, LimitRange, NamespaceUsage, StreamUsage,
};
use crate::cluster::identity::UserInfo;
use crate::cluster::images::{
    added_storage, decode_continue, encode_continue, image_stream_image, image_stream_layers,
    image_stream_tag, load_closure, namespace_usage, nullable, parse_label_selector,
    selector_matches, valid_digest, valid_tag, validate_stream_name, Image, ImageStream,
    NamedTagEventList, ObjectMeta, Requirement, IMAGE_API_VERSION, TAG_PATTERN,
};
use crate::cluster::rbac::{ResourceAttributes, IMAGE_GROUP};
use crate::cluster::store::{stream_key, Listed, Page, StoreError, Txn};
use crate::cluster::{Cluster, Kind};
use crate::kubernetes::{rfc3339, Quantity};

const BASE: &str = "/apis/image.openshift.io/v1";
const IMAGE_VERSIONS: &[&str] = &[IMAGE_API_VERSION, "v1"];

/// Images by digest as [`load_closure`] returns them (`None`: missing).
type ImageClosure = BTreeMap<String, Option<Image>>;

pub fn routes() -> Router<Shared> {
    let p = |suffix: &str| format!("{BASE}{suffix}");
    Router::new()
        .route(&p("/imagestreams"), get(list_all_streams))
        .route(
            &p("/namespaces/{ns}/imagestreams"),
            get(list_streams).post(create_stream),
        )
        .route(
            &p("/namespaces/{ns}/imagestreams/{name}"),
            get(get_stream).delete(delete_stream),
        )
        .route(
            &p("/namespaces/{ns}/imagestreams/{name}/status"),
            get(get_stream_status).put(update_stream_status),
        )
        .route(
            &p("/namespaces/{ns}/imagestreams/{name}/layers"),
            get(stream_layers),
        )
        .route(
            &p("/namespaces/{ns}/imagestreammappings"),
            post(create_mapping),
        )
        .route(&p("/images"), get(list_images).post(create_image))
        .route(&p("/images/{name}"), get(get_image).delete(delete_image))
        .route(
            &p("/namespaces/{ns}/imagestreamtags/{name}"),
            get(get_stream_tag).delete(delete_stream_tag),
        )
        .route(
            &p("/namespaces/{ns}/imagestreamimages/{name}"),
            get(get_stream_image),
        )
        .route(
            "/api/v1/namespaces/{ns}/limitranges",
            get(list_limit_ranges),
        )
        .route(
            "/api/v1/namespaces/{ns}/resourcequotas",
            get(list_resource_quotas),
        )
}

// ---------------------------------------------------------------------------
// Errors

/// `details` naming an object of this group.
fn details(kind: &str, name: &str, group: &str) -> Value {
    let mut d = Map::new();
    if !name.is_empty() {
        d.insert("name".into(), json!(name));
    }
    if !group.is_empty() {
        d.insert("group".into(), json!(group));
    }
    d.insert("kind".into(), json!(kind));
    Value::Object(d)
}

impl ApiError {
    fn with_details(mut self, d: Value) -> ApiError {
        self.details = Some(d);
        self
    }

    /// 404 `<resource>.image.openshift.io "<name>" not found`.
    fn object_not_found(resource: &str, name: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("{resource}.{IMAGE_GROUP} {name:?} not found"),
        )
        .with_details(details(resource, name, IMAGE_GROUP))
    }

    /// 404 `namespaces "<ns>" not found` (a namespace that cannot exist).
    fn namespace_not_found(ns: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("namespaces {ns:?} not found"),
        )
        .with_details(details("namespaces", ns, ""))
    }

    /// 409 `<resource>.image.openshift.io "<name>" already exists`.
    fn already_exists(resource: &str, name: &str) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "AlreadyExists",
            format!("{resource}.{IMAGE_GROUP} {name:?} already exists"),
        )
        .with_details(details(resource, name, IMAGE_GROUP))
    }

    /// 409 Conflict of an update against a stale resourceVersion.
    fn conflict(resource: &str, name: &str) -> ApiError {
        ApiError::new(
            StatusCode::CONFLICT,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {resource}.{IMAGE_GROUP} {name:?}: the object \
                 has been modified; please apply your changes to the latest version and try again"
            ),
        )
        .with_details(details(resource, name, IMAGE_GROUP))
    }

    /// 403 of an admission plugin: `<resource>.<group> "<name>" is forbidden: <message>`.
    fn admission(resource: &str, name: &str, message: &str) -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("{resource}.{IMAGE_GROUP} {name:?} is forbidden: {message}"),
        )
        .with_details(details(resource, name, IMAGE_GROUP))
    }

    /// 422 `<Kind>.image.openshift.io "<name>" is invalid: <field>: <detail>`.
    fn field_invalid(kind: &str, name: &str, err: FieldError) -> ApiError {
        let (field, reason, detail) = match err {
            FieldError::Required { field, detail } => (
                field,
                "FieldValueRequired",
                if detail.is_empty() {
                    "Required value".to_string()
                } else {
                    format!("Required value: {detail}")
                },
            ),
            FieldError::Invalid {
                field,
                value,
                detail,
            } => (
                field,
                "FieldValueInvalid",
                format!("Invalid value: {value}: {detail}"),
            ),
        };
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{kind}.{IMAGE_GROUP} {name:?} is invalid: {field}: {detail}"),
        )
        .with_details(json!({
            "name": name,
            "group": IMAGE_GROUP,
            "kind": kind,
            "causes": [{"reason": reason, "message": detail, "field": field}],
        }))
    }

    /// 500 InternalError (logged).
    fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "image API internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            format!("Internal error occurred: {e}"),
        )
        .with_details(json!({"causes": [{"message": e.to_string()}]}))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        ApiError::internal(e)
    }
}

enum FieldError {
    Required {
        field: String,
        detail: String,
    },
    Invalid {
        field: String,
        /// Already formatted (`"x"`, `0x0`).
        value: String,
        detail: String,
    },
}

fn required(field: &str, detail: &str) -> FieldError {
    FieldError::Required {
        field: field.to_string(),
        detail: detail.to_string(),
    }
}

fn invalid_value(field: &str, value: &str, detail: &str) -> FieldError {
    FieldError::Invalid {
        field: field.to_string(),
        value: format!("{value:?}"),
        detail: detail.to_string(),
    }
}

// ---------------------------------------------------------------------------
// Helpers

/// Authenticate and authorize an image-group request.
fn admit(
    cluster: &Cluster,
    headers: &HeaderMap,
    verb: &str,
    resource: &str,
    subresource: &str,
    namespace: &str,
    name: &str,
) -> Result<UserInfo, ApiError> {
    let user = authenticate(cluster, headers)?;
    let mut attrs = ResourceAttributes::new(verb, IMAGE_GROUP, resource, namespace, name);
    attrs.subresource = subresource.to_string();
    check(cluster, &user, attrs)?;
    Ok(user)
}

/// Count an `imagestreams` request (or of its `subresource`), then
/// authenticate and authorize it.
fn admit_stream(
    cluster: &Cluster,
    headers: &HeaderMap,
    verb: &str,
    subresource: &str,
    namespace: &str,
    name: &str,
) -> Result<UserInfo, ApiError> {
    cluster.count(Kind::ImageStreams);
    admit(
        cluster,
        headers,
        verb,
        "imagestreams",
        subresource,
        namespace,
        name,
    )
}

/// Run store work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

fn now() -> String {
    rfc3339(SystemTime::now())
}

fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Whether `ns` is a valid namespace name (DNS-1123 label); others cannot exist.
fn valid_namespace(ns: &str) -> bool {
    let b = ns.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= 63
        && b.first().is_some_and(alnum)
        && b.last().is_some_and(alnum)
        && b.iter().all(|c| alnum(c) || *c == b'-')
}

fn ok_json<T: serde::Serialize>(value: T) -> Response {
    Json(value).into_response()
}

/// `Status` Success (deletes: 200 with details).
fn success(code: StatusCode, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    });
    if let Some(o) = body.as_object_mut() {
        if let Some(d) = details {
            o.insert("details".into(), d);
        }
        if code != StatusCode::OK {
            o.insert("code".into(), json!(code.as_u16()));
        }
    }
    (code, Json(body)).into_response()
}

/// `?limit=&continue=&labelSelector=` of a list request.
#[derive(Debug, Default)]
struct ListQuery {
    limit: usize,
    after: Option<String>,
    selector: Vec<Requirement>,
}

impl ListQuery {
    /// The store page this query asks for.
    fn page(&self) -> Page<'_> {
        Page {
            after: self.after.as_deref(),
            limit: self.limit,
        }
    }

    /// Whether an object's labels match the label selector.
    fn selects(&self, meta: &ObjectMeta) -> bool {
        selector_matches(&self.selector, &meta.labels)
    }
}

fn list_query(uri: &Uri) -> Result<ListQuery, ApiError> {
    let mut q = ListQuery::default();
    let Some(raw) = uri.query() else {
        return Ok(q);
    };
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        match k.as_ref() {
            "limit" => {
                q.limit = v
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| {
                        ApiError::bad_request(format!("invalid limit {:?}: not an integer", v))
                    })?
                    .max(0) as usize;
            }
            "continue" if !v.is_empty() => {
                let key = decode_continue(&v).ok_or_else(|| {
                    ApiError::bad_request(
                        "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
                    )
                })?;
                q.after = Some(key);
            }
            "labelSelector" => {
                q.selector = parse_label_selector(&v).map_err(ApiError::bad_request)?;
            }
            _ => {}
        }
    }
    Ok(q)
}

/// A list object.
fn list_json(
    kind: &str,
    api_version: &str,
    rv: u64,
    items: Vec<Value>,
    cont: Option<String>,
) -> Value {
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), json!(rv.to_string()));
    if let Some(c) = cont {
        metadata.insert("continue".into(), json!(c));
    }
    json!({
        "kind": kind,
        "apiVersion": api_version,
        "metadata": metadata,
        "items": items,
    })
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, ApiError> {
    serde_json::to_value(v).map_err(ApiError::internal)
}

/// Read a page of a list with `list` in one snapshot; with its resourceVersion.
async fn read_page<T: Send + 'static>(
    cluster: Shared,
    list: impl FnOnce(&Txn) -> Result<Listed<T>, StoreError> + Send + 'static,
) -> Result<(u64, Listed<T>), ApiError> {
    blocking(move || {
        let tx = cluster.store().read()?;
        let listed = list(&tx)?;
        Ok((tx.resource_version()?, listed))
    })
    .await
}

/// The image-group list `kind` of a page: items shown by `show`, and if more
/// follow a continue token after the last item's `key`.
fn page_response<T, V: serde::Serialize>(
    kind: &str,
    rv: u64,
    listed: Listed<T>,
    key: impl Fn(&T) -> String,
    show: impl Fn(T) -> V,
) -> ApiResult {
    let cont = match (listed.more, listed.items.last()) {
        (true, Some(last)) => Some(encode_continue(&key(last))),
        _ => None,
    };
    let items = listed
        .items
        .into_iter()
        .map(|i| to_value(&show(i)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ok_json(list_json(kind, IMAGE_API_VERSION, rv, items, cont)))
}

/// 200 `Status` Success of a delete, naming the object and its uid.
fn deleted(resource: &str, name: &str, uid: &str) -> Response {
    let mut d = details(resource, name, IMAGE_GROUP);
    if let Some(o) = d.as_object_mut() {
        o.insert("uid".into(), json!(uid));
    }
    success(StatusCode::OK, Some(d))
}

/// `field` of `<kind> "<name>"` must be an image digest.
fn check_digest(kind: &str, name: &str, field: &str, digest: &str) -> Result<(), ApiError> {
    if valid_digest(digest) {
        return Ok(());
    }
    Err(ApiError::field_invalid(
        kind,
        name,
        invalid_value(
            field,
            digest,
            "must be an image digest (sha256:<64 lowercase hex digits>)",
        ),
    ))
}

/// Store `image` as a new Image: server fields set, cluster-scoped,
/// `dockerImageMetadata` filled in if absent.
fn put_new_image(tx: &mut Txn, image: Image, now: &str) -> Result<Image, StoreError> {
    let mut stored = image.typed();
    stored.metadata.init(new_uid(), now);
    stored.metadata.namespace.clear();
    stored.fill_metadata();
    tx.put_image(&mut stored)?;
    Ok(stored)
}

/// Image-stream limits admission of a created (`before` `None`) or updated
/// stream, then store it and commit.
fn commit_stream(
    mut tx: Txn,
    limits: &[LimitRange],
    mut stream: ImageStream,
    before: Option<StreamUsage>,
) -> Result<ImageStream, ApiError> {
    check_stream_usage(limits, stream.usage(), before)
        .map_err(|m| ApiError::admission("imagestreams", &stream.metadata.name, &m))?;
    tx.put_stream(&mut stream)?;
    tx.commit()?;
    Ok(stream)
}

/// Check a body's `metadata.namespace` against the URL.
fn same_namespace(meta: &ObjectMeta, ns: &str) -> Result<(), ApiError> {
    if !meta.namespace.is_empty() && meta.namespace != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

/// Quota usage of namespace `ns` and the [`load_closure`] of the images of its
/// streams.
fn namespace_images(tx: &Txn, ns: &str) -> Result<(NamespaceUsage, ImageClosure), StoreError> {
    let streams = tx.streams(Some(ns), &Page::default(), &|_| true)?.items;
    let roots = streams.iter().flat_map(|s| s.referenced_images());
    let images = load_closure(roots, |d| tx.image(d))?;
    Ok((namespace_usage(&streams, &images), images))
}

// ---------------------------------------------------------------------------
// imagestreams

async fn create_stream(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Body,
) -> ApiResult {
    const KIND: &str = "ImageStream";
    admit_stream(&cluster, &headers, "create", "", &ns, "")?;
    let input: ImageStream = read_object(&headers, body, KIND, IMAGE_VERSIONS).await?;
    same_namespace(&input.metadata, &ns)?;
    let name = input.metadata.name.clone();
    if name.is_empty() {
        return Err(ApiError::field_invalid(
            KIND,
            "",
            required("metadata.name", "name or generateName is required"),
        ));
    }
    if !valid_namespace(&ns) {
        return Err(ApiError::namespace_not_found(&ns));
    }
    validate_stream_name(&ns, &name).map_err(|detail| {
        ApiError::field_invalid(KIND, &name, invalid_value("metadata.name", &name, &detail))
    })?;
    let stream = blocking(move || {
        let quotas = cluster.resource_quotas(&ns);
        let limits = cluster.limit_ranges(&ns);
        let host = cluster.registry_host();
        let tx = cluster.store().write()?;
        let used = tx.count_streams(&ns)?;
        check_stream_quota(&quotas, used)
            .map_err(|m| ApiError::admission("imagestreams", &name, &m))?;
        if tx.stream(&ns, &name)?.is_some() {
            return Err(ApiError::already_exists("imagestreams", &name));
        }
        let stream = ImageStream::create(input, &ns, &host, new_uid(), &now());
        commit_stream(tx, &limits, stream, None)
    })
    .await?;
    Ok(created(stream))
}

/// Read a stream or 404 `imagestreams ... not found`.
fn read_stream(tx: &Txn, ns: &str, name: &str) -> Result<ImageStream, ApiError> {
    tx.stream(ns, name)?
        .ok_or_else(|| ApiError::object_not_found("imagestreams", name))
}

async fn get_stream(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    fetch_stream(cluster, &headers, "", ns, name).await
}

async fn get_stream_status(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    fetch_stream(cluster, &headers, "status", ns, name).await
}

/// `get` of a stream or its `subresource` (the same object).
async fn fetch_stream(
    cluster: Arc<Cluster>,
    headers: &HeaderMap,
    subresource: &str,
    ns: String,
    name: String,
) -> ApiResult {
    admit_stream(&cluster, headers, "get", subresource, &ns, &name)?;
    let host = cluster.registry_host();
    let stream = blocking(move || read_stream(&cluster.store().read()?, &ns, &name)).await?;
    Ok(ok_json(stream.decorate(&host)))
}

async fn list_streams(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(ns): Path<String>,
    uri: Uri,
) -> ApiResult {
    admit_stream(&cluster, &headers, "list", "", &ns, "")?;
    stream_list(cluster, Some(ns), &uri).await
}

async fn list_all_streams(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult {
    admit_stream(&cluster, &headers, "list", "", "", "")?;
    stream_list(cluster, None, &uri).await
}

async fn stream_list(cluster: Arc<Cluster>, ns: Option<String>, uri: &Uri) -> ApiResult {
    let q = list_query(uri)?;
    if let (Some(after), Some(ns)) = (&q.after, &ns) {
        if after.split_once('/').map(|(a, _)| a) != Some(ns.as_str()) {
            return Err(ApiError::bad_request(
                "continue key is not valid: the continue token is for another namespace",
            ));
        }
    } else if q.after.as_deref().is_some_and(|a| !a.contains('/')) {
        return Err(ApiError::bad_request(
            "continue key is not valid: not an image stream list token",
        ));
    }
    let host = cluster.registry_host();
    let (rv, listed) = read_page(cluster, move |tx| {
        tx.streams(ns.as_deref(), &q.page(), &|s: &ImageStream| {
            q.selects(&s.metadata)
        })
    })
    .await?;
    page_response(
        "ImageStreamList",
        rv,
        listed,
        |s| stream_key(&s.metadata.namespace, &s.metadata.name),
        |s| s.decorate(&host),
    )
}

async fn delete_stream(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    admit_stream(&cluster, &headers, "delete", "", &ns, &name)?;
    let (uid, name) = blocking(move || {
        let mut tx = cluster.store().write()?;
        let stream = read_stream(&tx, &ns, &name)?;
        tx.delete_stream(&ns, &name)?;
        tx.commit()?;
        Ok((stream.metadata.uid, name))
    })
    .await?;
    Ok(deleted("imagestreams", &name, &uid))
}

async fn update_stream_status(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
    body: Body,
) -> ApiResult {
    const KIND: &str = "ImageStream";
    admit_stream(&cluster, &headers, "update", "status", &ns, &name)?;
    let input: ImageStream = read_object(&headers, body, KIND, IMAGE_VERSIONS).await?;
    same_namespace(&input.metadata, &ns)?;
    if !input.metadata.name.is_empty() && input.metadata.name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            input.metadata.name
        )));
    }
    let rv = input.metadata.resource_version.clone();
    if rv.is_empty() {
        return Err(ApiError::field_invalid(
            KIND,
            &name,
            FieldError::Invalid {
                field: "metadata.resourceVersion".into(),
                value: "0x0".into(),
                detail: "must be specified for an update".into(),
            },
        ));
    }
    let tags: Vec<NamedTagEventList> = input.status.tags;
    for (i, t) in tags.iter().enumerate() {
        if !valid_tag(&t.tag) {
            return Err(ApiError::field_invalid(
                KIND,
                &name,
                invalid_value(
                    &format!("status.tags[{i}].tag"),
                    &t.tag,
                    &format!("must match {TAG_PATTERN:?}"),
                ),
            ));
        }
        if let Some(j) = t.items.iter().position(|e| e.image.is_empty()) {
            return Err(ApiError::field_invalid(
                KIND,
                &name,
                required(&format!("status.tags[{i}].items[{j}].image"), ""),
            ));
        }
    }
    let host = cluster.registry_host();
    let stream = blocking(move || {
        let limits = cluster.limit_ranges(&ns);
        let tx = cluster.store().write()?;
        let mut stream = read_stream(&tx, &ns, &name)?;
        if stream.metadata.resource_version != rv {
            return Err(ApiError::conflict("imagestreams", &name));
        }
        let before = stream.usage();
        stream.replace_status_tags(tags);
        commit_stream(tx, &limits, stream, Some(before))
    })
    .await?;
    Ok(ok_json(stream.decorate(&host)))
}

async fn stream_layers(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    admit_stream(&cluster, &headers, "get", "layers", &ns, &name)?;
    let layers = blocking(move || {
        let tx = cluster.store().read()?;
        let stream = read_stream(&tx, &ns, &name)?;
        let images = load_closure(stream.referenced_images(), |d| tx.image(d))?;
        Ok(image_stream_layers(&stream, &images))
    })
    .await?;
    Ok(ok_json(layers))
}

// ---------------------------------------------------------------------------
// imagestreammappings

#[derive(Debug, Deserialize)]
struct MappingBody {
    #[serde(default, deserialize_with = "nullable")]
    metadata: ObjectMeta,
    #[serde(default)]
    image: Option<Image>,
    #[serde(default, deserialize_with = "nullable")]
    tag: String,
}

async fn create_mapping(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Body,
) -> ApiResult {
    const KIND: &str = "ImageStreamMapping";
    const RESOURCE: &str = "imagestreammappings";
    cluster.count(Kind::ImageStreamMappings);
    admit(&cluster, &headers, "create", RESOURCE, "", &ns, "")?;
    let mapping: MappingBody = read_object(&headers, body, KIND, IMAGE_VERSIONS).await?;
    same_namespace(&mapping.metadata, &ns)?;
    let is = mapping.metadata.name.clone();
    if is.is_empty() {
        return Err(ApiError::field_invalid(
            KIND,
            "",
            required("metadata.name", ""),
        ));
    }
    if mapping.tag.is_empty() {
        return Err(ApiError::field_invalid(KIND, &is, required("tag", "")));
    }
    if !valid_tag(&mapping.tag) {
        return Err(ApiError::field_invalid(
            KIND,
            &is,
            invalid_value("tag", &mapping.tag, &format!("must match {TAG_PATTERN:?}")),
        ));
    }
    let Some(image) = mapping.image.filter(|i| !i.metadata.name.is_empty()) else {
        return Err(ApiError::field_invalid(
            KIND,
            &is,
            required("image.metadata.name", ""),
        ));
    };
    let digest = image.metadata.name.clone();
    check_digest(KIND, &is, "image.metadata.name", &digest)?;
    if !valid_namespace(&ns) {
        return Err(ApiError::namespace_not_found(&ns));
    }
    // ImageLimitRange admission runs before the stream is even looked up.
    let limits = cluster.limit_ranges(&ns);
    check_image_size(&limits, u128::from(image.size()))
        .map_err(|m| ApiError::admission(RESOURCE, &is, &m))?;
    let host = cluster.registry_host();
    let tag = mapping.tag;
    blocking(move || {
        let quotas = cluster.resource_quotas(&ns);
        let mut tx = cluster.store().write()?;
        let Some(mut stream) = tx.stream(&ns, &is)? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("imagestreams.{IMAGE_GROUP} {is:?} not found"),
            )
            .with_details(details(RESOURCE, &is, IMAGE_GROUP)));
        };
        // The namespace's images before this mapping, read in its transaction
        // (writers are serialised): concurrent mappings cannot together
        // overrun an `openshift.io/image-storage` quota.
        let before = if limits_image_storage(&quotas) {
            Some(namespace_images(&tx, &ns)?)
        } else {
            None
        };
        let now = now();
        let reference = if image.docker_image_reference.is_empty() {
            format!("{host}/{ns}/{is}@{digest}")
        } else {
            image.docker_image_reference.clone()
        };
        if tx.image(&digest)?.is_none() {
            put_new_image(&mut tx, image, &now)?;
        }
        if stream.add_tag_event(&tag, &digest, &reference, &now) {
            check_stream_usage(&limits, stream.usage(), None)
                .map_err(|m| ApiError::admission(RESOURCE, &is, &m))?;
            tx.put_stream(&mut stream)?;
        }
        if let Some((usage, images)) = before {
            let added = load_closure([digest], |d| tx.image(d))?;
            check_image_storage_quota(&quotas, usage.image_storage, added_storage(&images, &added))
                .map_err(|m| ApiError::admission(RESOURCE, &is, &m))?;
        }
        tx.commit()?;
        Ok(())
    })
    .await?;
    Ok(success(StatusCode::CREATED, None))
}

// ---------------------------------------------------------------------------
// images

async fn create_image(State(cluster): State<Shared>, headers: HeaderMap, body: Body) -> ApiResult {
    const KIND: &str = "Image";
    cluster.count(Kind::Images);
    admit(&cluster, &headers, "create", "images", "", "", "")?;
    let image: Image = read_object(&headers, body, KIND, IMAGE_VERSIONS).await?;
    let digest = image.metadata.name.clone();
    if digest.is_empty() {
        return Err(ApiError::field_invalid(
            KIND,
            "",
            required("metadata.name", "name or generateName is required"),
        ));
    }
    check_digest(KIND, &digest, "metadata.name", &digest)?;
    let stored = blocking(move || {
        let mut tx = cluster.store().write()?;
        if tx.image(&digest)?.is_some() {
            return Err(ApiError::already_exists("images", &digest));
        }
        let stored = put_new_image(&mut tx, image, &now())?;
        tx.commit()?;
        Ok(stored)
    })
    .await?;
    Ok(created(stored))
}

async fn get_image(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    cluster.count(Kind::Images);
    admit(&cluster, &headers, "get", "images", "", "", &name)?;
    let image = blocking(move || {
        cluster
            .store()
            .read()?
            .image(&name)?
            .ok_or_else(|| ApiError::object_not_found("images", &name))
    })
    .await?;
    Ok(ok_json(image.typed()))
}

async fn list_images(State(cluster): State<Shared>, headers: HeaderMap, uri: Uri) -> ApiResult {
    cluster.count(Kind::Images);
    admit(&cluster, &headers, "list", "images", "", "", "")?;
    let q = list_query(&uri)?;
    let (rv, listed) = read_page(cluster, move |tx| {
        tx.images(&q.page(), &|i: &Image| q.selects(&i.metadata))
    })
    .await?;
    page_response(
        "ImageList",
        rv,
        listed,
        |i| i.metadata.name.clone(),
        Image::typed,
    )
}

async fn delete_image(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> ApiResult {
    cluster.count(Kind::Images);
    admit(&cluster, &headers, "delete", "images", "", "", &name)?;
    let (uid, name) = blocking(move || {
        let mut tx = cluster.store().write()?;
        let image = tx
            .image(&name)?
            .ok_or_else(|| ApiError::object_not_found("images", &name))?;
        tx.delete_image(&name)?;
        tx.commit()?;
        Ok((image.metadata.uid, name))
    })
    .await?;
    Ok(deleted("images", &name, &uid))
}

// ---------------------------------------------------------------------------
// imagestreamtags, imagestreamimages

/// `<stream>:<tag>`.
fn split_stream_tag(name: &str) -> Result<(String, String), ApiError> {
    match name.split_once(':') {
        Some((is, tag)) if !is.is_empty() && !tag.is_empty() && !tag.contains(':') => {
            Ok((is.to_string(), tag.to_string()))
        }
        _ => Err(ApiError::bad_request(format!(
            "invalid ImageStreamTag name {name:?}: name must be of the form <stream_name>:<tag>"
        ))),
    }
}

/// Count, authenticate and authorize an `imagestreamtags` request; the stream
/// and tag of its `<stream>:<tag>` name.
fn admit_stream_tag(
    cluster: &Cluster,
    headers: &HeaderMap,
    verb: &str,
    ns: &str,
    name: &str,
) -> Result<(String, String), ApiError> {
    cluster.count(Kind::ImageStreamTags);
    admit(cluster, headers, verb, "imagestreamtags", "", ns, name)?;
    split_stream_tag(name)
}

async fn get_stream_tag(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    const RESOURCE: &str = "imagestreamtags";
    let (is, tag) = admit_stream_tag(&cluster, &headers, "get", &ns, &name)?;
    let value = blocking(move || {
        let not_found = || ApiError::object_not_found(RESOURCE, &name);
        let tx = cluster.store().read()?;
        let stream = tx.stream(&ns, &is)?.ok_or_else(not_found)?;
        let digest = stream
            .tag_history(&tag)
            .and_then(|h| h.items.first())
            .map(|e| e.image.clone())
            .ok_or_else(not_found)?;
        let image = tx.image(&digest)?.ok_or_else(not_found)?;
        Ok(image_stream_tag(&stream, &tag, &image))
    })
    .await?;
    Ok(ok_json(value))
}

async fn delete_stream_tag(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    const RESOURCE: &str = "imagestreamtags";
    let (is, tag) = admit_stream_tag(&cluster, &headers, "delete", &ns, &name)?;
    let name = blocking(move || {
        let not_found = || ApiError::object_not_found(RESOURCE, &name);
        let mut tx = cluster.store().write()?;
        let mut stream = tx.stream(&ns, &is)?.ok_or_else(not_found)?;
        if !stream.remove_tag(&tag) {
            return Err(not_found());
        }
        tx.put_stream(&mut stream)?;
        tx.commit()?;
        Ok(name)
    })
    .await?;
    Ok(success(
        StatusCode::OK,
        Some(details(RESOURCE, &name, IMAGE_GROUP)),
    ))
}

async fn get_stream_image(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path((ns, name)): Path<(String, String)>,
) -> ApiResult {
    const RESOURCE: &str = "imagestreamimages";
    cluster.count(Kind::ImageStreamImages);
    admit(&cluster, &headers, "get", RESOURCE, "", &ns, &name)?;
    let Some((is, digest)) = name
        .split_once('@')
        .filter(|(is, d)| !is.is_empty() && !d.is_empty())
        .map(|(is, d)| (is.to_string(), d.to_string()))
    else {
        return Err(ApiError::bad_request(format!(
            "invalid ImageStreamImage name {name:?}: name must be of the form <stream_name>@<id>"
        )));
    };
    let value = blocking(move || {
        let not_found = || ApiError::object_not_found(RESOURCE, &name);
        let tx = cluster.store().read()?;
        let stream = tx.stream(&ns, &is)?.ok_or_else(not_found)?;
        if !stream.referenced_images().contains(&digest) {
            return Err(not_found());
        }
        let image = tx.image(&digest)?.ok_or_else(not_found)?;
        Ok(image_stream_image(&stream, &image))
    })
    .await?;
    Ok(ok_json(value))
}

// ---------------------------------------------------------------------------
// core/v1 limitranges, resourcequotas

/// Count, authenticate and authorize a `list` of `resource`, core/v1 objects
/// of the policy file, in `ns`.
fn admit_policy_list(
    cluster: &Cluster,
    headers: &HeaderMap,
    kind: Kind,
    resource: &str,
    ns: &str,
) -> Result<(), ApiError> {
    cluster.count(kind);
    let user = authenticate(cluster, headers)?;
    check(
        cluster,
        &user,
        ResourceAttributes::new("list", "", resource, ns, ""),
    )
}

/// Quantities by resource, as the apiserver prints them.
fn quantities_json(quantities: &BTreeMap<String, Quantity>) -> Map<String, Value> {
    quantities
        .iter()
        .map(|(k, q)| (k.clone(), json!(q.canonical())))
        .collect()
}

async fn list_limit_ranges(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> ApiResult {
    admit_policy_list(&cluster, &headers, Kind::LimitRanges, "limitranges", &ns)?;
    let ranges = cluster.limit_ranges(&ns);
    let rv = blocking(move || Ok(cluster.store().read()?.resource_version()?)).await?;
    let items = ranges
        .iter()
        .map(|lr| {
            let limits: Vec<Value> = lr
                .limits
                .iter()
                .map(|item| json!({"type": item.kind, "max": quantities_json(&item.max)}))
                .collect();
            json!({
                "kind": "LimitRange",
                "apiVersion": "v1",
                "metadata": {"name": lr.name, "namespace": lr.namespace},
                "spec": {"limits": limits},
            })
        })
        .collect();
    Ok(ok_json(list_json("LimitRangeList", "v1", rv, items, None)))
}

async fn list_resource_quotas(
    State(cluster): State<Shared>,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> ApiResult {
    admit_policy_list(
        &cluster,
        &headers,
        Kind::ResourceQuotas,
        "resourcequotas",
        &ns,
    )?;
    let quotas = cluster.resource_quotas(&ns);
    let want_usage = !quotas.is_empty();
    let (rv, usage) = blocking(move || {
        let tx = cluster.store().read()?;
        let usage = if want_usage {
            namespace_images(&tx, &ns)?.0
        } else {
            Default::default()
        };
        Ok((tx.resource_version()?, usage))
    })
    .await?;
    let items = quotas
        .iter()
        .map(|q| {
            let hard = quantities_json(&q.hard);
            json!({
                "kind": "ResourceQuota",
                "apiVersion": "v1",
                "metadata": {"name": q.name, "namespace": q.namespace},
                "spec": {"hard": hard},
                "status": {"hard": hard, "used": quota_used(q, &usage)},
            })
        })
        .collect();
    Ok(ok_json(list_json(
        "ResourceQuotaList",
        "v1",
        rv,
        items,
        None,
    )))
}

#[cfg(test)]
mod tests;
