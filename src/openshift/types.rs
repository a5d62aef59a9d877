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
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
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
}
