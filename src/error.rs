//! The registry error envelope (`{"errors":[{"code","message","detail"}]}`) and its status codes.
//!
//! Every error a registry client sees is built here, so that codes, statuses and headers stay
//! consistent across the gateway.

use serde_json::{json, Value};

/// Error codes of the OCI distribution-spec (plus the ones Distribution and OpenShift add).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unauthorized,
    Denied,
    Unsupported,
    NameInvalid,
    NameUnknown,
    DigestInvalid,
    TagInvalid,
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    ManifestInvalid,
    ManifestUnknown,
    ManifestBlobUnknown,
    SizeInvalid,
    RangeInvalid,
    PaginationNumberInvalid,
    TooManyRequests,
    Unavailable,
    Unknown,
}

impl Code {
    /// The wire name of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::TagInvalid => "TAG_INVALID",
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::Unavailable => "UNAVAILABLE",
            Code::Unknown => "UNKNOWN",
        }
    }

    /// The HTTP status Distribution registers for the code.
    pub fn status(self) -> u16 {
        match self {
            Code::Unauthorized => 401,
            Code::Denied => 403,
            Code::Unsupported => 405,
            Code::NameInvalid
            | Code::DigestInvalid
            | Code::TagInvalid
            | Code::ManifestInvalid
            | Code::ManifestBlobUnknown
            | Code::SizeInvalid
            | Code::PaginationNumberInvalid => 400,
            Code::NameUnknown
            | Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown => 404,
            Code::BlobUploadInvalid => 404,
            Code::RangeInvalid => 416,
            Code::TooManyRequests => 429,
            Code::Unavailable => 503,
            Code::Unknown => 500,
        }
    }
}

/// One error as a client sees it: status, code, message, optional detail and challenge.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryError {
    pub status: u16,
    pub code: Code,
    pub message: String,
    pub detail: Value,
    /// Value of the `WWW-Authenticate` header, for 401 answers.
    pub challenge: Option<String>,
}

impl RegistryError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RegistryError {
            status: code.status(),
            code,
            message: message.into(),
            detail: Value::Null,
            challenge: None,
        }
    }

    /// Override the HTTP status (e.g. 404 for an unknown path with code `UNSUPPORTED`).
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn with_detail(mut self, detail: Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn with_challenge(mut self, challenge: impl Into<String>) -> Self {
        self.challenge = Some(challenge.into());
        self
    }

    /// The JSON envelope.
    pub fn body(&self) -> Vec<u8> {
        let mut entry = json!({"code": self.code.as_str(), "message": self.message});
        if !self.detail.is_null() {
            entry["detail"] = self.detail.clone();
        }
        serde_json::to_vec(&json!({ "errors": [entry] })).unwrap_or_default()
    }
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status,
            self.code.as_str(),
            self.message
        )
    }
}

impl std::error::Error for RegistryError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape() {
        let e = RegistryError::new(Code::Denied, "no").with_detail(json!({"a": 1}));
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(
            v,
            json!({"errors":[{"code":"DENIED","message":"no","detail":{"a":1}}]})
        );
        assert_eq!(e.status, 403);
    }

    #[test]
    fn detail_omitted_when_null() {
        let v: Value =
            serde_json::from_slice(&RegistryError::new(Code::NameInvalid, "x").body()).unwrap();
        assert!(v["errors"][0].get("detail").is_none());
    }
}
