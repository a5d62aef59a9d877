//! Wire types of the API objects the gateway sends and reads (shapes from openshift/api and
//! k8s.io/api; see `reference/openshift-api-subset.json`).

use serde::{Deserialize, Serialize};

use crate::auth::access::Access;

/// `authorization.k8s.io/v1` `ResourceAttributes`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAttributes {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub verb: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subresource: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
}

impl From<&Access> for ResourceAttributes {
    fn from(a: &Access) -> Self {
        ResourceAttributes {
            namespace: a.namespace.clone(),
            verb: a.verb.to_string(),
            group: a.group.to_string(),
            resource: a.resource.to_string(),
            subresource: a.subresource.to_string(),
            name: a.name.clone(),
        }
    }
}

/// `status` of a (Self)SubjectAccessReview.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReviewStatus {
    #[serde(default)]
    pub allowed: bool,
    #[serde(default)]
    pub denied: bool,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub evaluation_error: String,
}

/// A review answer: only the status matters.
#[derive(Debug, Clone, Deserialize)]
pub struct ReviewResponse {
    #[serde(default)]
    pub status: ReviewStatus,
}

/// Legacy `/oapi/v1` `SubjectAccessReviewResponse` (fields at top level).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegacyReviewResponse {
    #[serde(default)]
    pub allowed: bool,
    #[serde(default)]
    pub reason: String,
}

/// Who a token belongs to.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct UserInfo {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `SelfSubjectReview` answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfSubjectReview {
    #[serde(default)]
    pub status: SelfSubjectReviewStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelfSubjectReviewStatus {
    #[serde(default)]
    pub user_info: UserInfo,
}

/// Legacy `User` (`users/~`): only metadata matters.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// A `Status` error object (only the fields used).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub code: u16,
    #[serde(default)]
    pub details: StatusDetails,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusDetails {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub kind: String,
}

/// `ImageStream` (the fields the gateway reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageStream {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub status: ImageStreamStatus,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageStreamStatus {
    #[serde(default)]
    pub docker_image_repository: String,
    #[serde(default)]
    pub tags: Vec<NamedTagEventList>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct NamedTagEventList {
    pub tag: String,
    #[serde(default)]
    pub items: Vec<TagEvent>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TagEvent {
    #[serde(default)]
    pub docker_image_reference: String,
    #[serde(default)]
    pub image: String,
}

impl ImageStream {
    /// The digest a tag points at now (newest history item).
    pub fn tag(&self, tag: &str) -> Option<&str> {
        self.status
            .tags
            .iter()
            .find(|t| t.tag == tag)?
            .items
            .first()
            .map(|e| e.image.as_str())
    }

    /// Tags with at least one item.
    pub fn tag_names(&self) -> Vec<&str> {
        self.status
            .tags
            .iter()
            .filter(|t| !t.items.is_empty())
            .map(|t| t.tag.as_str())
            .collect()
    }

    /// Every image digest in the tag history.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.status
            .tags
            .iter()
            .flat_map(|t| t.items.iter().map(|e| e.image.as_str()))
    }
}

/// `Image` (the fields the gateway reads).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub docker_image_reference: String,
    #[serde(default)]
    pub docker_image_manifest: String,
    #[serde(default)]
    pub docker_image_manifest_media_type: String,
    #[serde(default)]
    pub docker_image_manifests: Vec<ImageManifest>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    #[serde(default)]
    pub digest: String,
}

/// A list answer (`items` + `metadata.continue`).
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub metadata: ListMeta,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ListMeta {
    #[serde(default, rename = "continue")]
    pub continue_: String,
}
