//! The image API calls (`image.openshift.io/v1`): streams, mappings, images, tags.
//! Reads and mappings use the gateway's own identity; stream auto-creation uses the user's.

use serde_json::{json, Value};

use crate::auth::credentials::Token;
use crate::openshift::types::{Image, ImageStream, List};
use crate::openshift::{ApiClient, ApiError};

const BASE: &str = "apis/image.openshift.io/v1";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl ApiClient {
    /// `GET imagestreams/<name>` as raw JSON (for status updates) and typed.
    pub async fn image_stream(
        &self,
        ns: &str,
        name: &str,
    ) -> Result<(ImageStream, Value), ApiError> {
        let raw: Value = self
            .call(
                reqwest::Method::GET,
                &format!("{BASE}/namespaces/{ns}/imagestreams/{name}"),
                self.own_token(),
                None,
            )
            .await?;
        let typed =
            serde_json::from_value(raw.clone()).map_err(|e| ApiError::Malformed(e.to_string()))?;
        Ok((typed, raw))
    }

    /// Create an empty stream with the **user's** token (auto-provisioning on push).
    pub async fn create_image_stream(
        &self,
        user: Option<&Token>,
        ns: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        let body = json!({"kind": "ImageStream", "apiVersion": "image.openshift.io/v1", "metadata": {"name": name}});
        self.post::<Value>(&format!("{BASE}/namespaces/{ns}/imagestreams"), user, body)
            .await
            .map(|_| ())
    }

    /// `POST imagestreammappings`: create the image (if new) and tag it in the stream.
    pub async fn create_mapping(
        &self,
        ns: &str,
        name: &str,
        tag: &str,
        image: &Value,
    ) -> Result<(), ApiError> {
        let body = json!({
            "kind": "ImageStreamMapping", "apiVersion": "image.openshift.io/v1",
            "metadata": {"namespace": ns, "name": name}, "image": image, "tag": tag,
        });
        self.post::<Value>(
            &format!("{BASE}/namespaces/{ns}/imagestreammappings"),
            self.own_token(),
            body,
        )
        .await
        .map(|_| ())
    }

    /// `POST images` (push by digest); an existing image is success.
    pub async fn create_image(&self, image: &Value) -> Result<(), ApiError> {
        match self
            .post::<Value>(&format!("{BASE}/images"), self.own_token(), image.clone())
            .await
        {
            Ok(_) | Err(ApiError::Conflict(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn image(&self, digest: &str) -> Result<Image, ApiError> {
        self.call(
            reqwest::Method::GET,
            &format!("{BASE}/images/{digest}"),
            self.own_token(),
            None,
        )
        .await
    }

    /// Images matching an equality label selector `k=v`.
    pub async fn images_labelled(&self, selector: &str) -> Result<Vec<Image>, ApiError> {
        let mut out = Vec::new();
        let mut cont = String::new();
        loop {
            let path = format!(
                "{BASE}/images?limit=500&labelSelector={}&continue={}",
                enc(selector),
                enc(&cont)
            );
            let page: List<Image> = self
                .call(reqwest::Method::GET, &path, self.own_token(), None)
                .await?;
            out.extend(page.items);
            if page.metadata.continue_.is_empty() {
                return Ok(out);
            }
            cont = page.metadata.continue_;
        }
    }

    /// Replace a stream's status (optimistic concurrency through `metadata.resourceVersion`).
    pub async fn update_stream_status(
        &self,
        ns: &str,
        name: &str,
        stream: &Value,
    ) -> Result<(), ApiError> {
        self.call::<Value>(
            reqwest::Method::PUT,
            &format!("{BASE}/namespaces/{ns}/imagestreams/{name}/status"),
            self.own_token(),
            Some(stream),
        )
        .await
        .map(|_| ())
    }

    /// `DELETE imagestreamtags/<is>:<tag>`.
    pub async fn delete_stream_tag(&self, ns: &str, name: &str, tag: &str) -> Result<(), ApiError> {
        self.call::<Value>(
            reqwest::Method::DELETE,
            &format!("{BASE}/namespaces/{ns}/imagestreamtags/{name}:{tag}"),
            self.own_token(),
            None,
        )
        .await
        .map(|_| ())
    }

    /// One page of all streams in all namespaces, sorted by namespace/name.
    pub async fn image_streams_page(
        &self,
        limit: usize,
        cont: &str,
    ) -> Result<List<ImageStream>, ApiError> {
        let path = format!("{BASE}/imagestreams?limit={limit}&continue={}", enc(cont));
        self.call(reqwest::Method::GET, &path, self.own_token(), None)
            .await
    }
}

impl ApiClient {
    /// `GET /api/v1/namespaces/<ns>/limitranges` (raw list).
    pub async fn limit_ranges(&self, ns: &str) -> Result<Value, ApiError> {
        self.call(
            reqwest::Method::GET,
            &format!("api/v1/namespaces/{ns}/limitranges"),
            self.own_token(),
            None,
        )
        .await
    }

    /// `GET /api/v1/namespaces/<ns>/resourcequotas` (raw list).
    pub async fn resource_quotas(&self, ns: &str) -> Result<Value, ApiError> {
        self.call(
            reqwest::Method::GET,
            &format!("api/v1/namespaces/{ns}/resourcequotas"),
            self.own_token(),
            None,
        )
        .await
    }
}

impl ApiClient {
    /// `GET /healthz` of the API server (readiness).
    pub async fn health(&self) -> Result<(), ApiError> {
        match self
            .call::<Value>(reqwest::Method::GET, "healthz", None, None)
            .await
        {
            // the body is plain text ("ok"), not JSON: a 2xx is all that matters
            Ok(_) | Err(ApiError::Malformed(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
