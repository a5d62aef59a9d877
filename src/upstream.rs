//! Side calls to the upstream registry that the gateway makes itself (not the streamed proxy
//! path): blob checks for manifest verification, the config blob, writing manifests by digest,
//! unlinking blobs. Plain HTTP with reqwest; the optional upstream credentials are added.

use std::time::Duration;

use bytes::Bytes;
use url::Url;

use crate::config;

/// What a side call returned.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Bytes,
}

/// Client for side calls.
#[derive(Clone)]
pub struct Upstream {
    http: reqwest::Client,
    base: Url,
    authorization: Option<String>,
}

impl Upstream {
    pub fn new(cfg: &config::Upstream) -> Result<Upstream, String> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(cfg.connect_timeout)
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &cfg.ca_file {
            // the same trust as the proxy path: only this bundle
            b = b.tls_built_in_root_certs(false);
            let pem = std::fs::read(ca).map_err(|e| format!("upstream.ca_file: {e}"))?;
            let certs = crate::openshift::client::pem_certificates(&pem)
                .map_err(|e| format!("upstream.ca_file: {}: {e}", ca.display()))?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b
            .build()
            .map_err(|e| format!("cannot build the upstream client: {e}"))?;
        Ok(Upstream {
            http,
            base: cfg.url.clone(),
            authorization: cfg.authorization.clone(),
        })
    }

    /// Send a request; `Err` is a transport failure (message for the client).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        content_type: Option<&str>,
        body: Option<Bytes>,
        max_body: usize,
    ) -> Result<Answer, String> {
        let url = self.base.join(path).map_err(|e| e.to_string())?;
        let mut req = self.http.request(method, url);
        if let Some(a) = &self.authorization {
            req = req.header("Authorization", a);
        }
        if let Some(ct) = content_type {
            req = req.header("Content-Type", ct);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let mut resp = req
            .send()
            .await
            .map_err(|e| format!("upstream registry unreachable: {}", e.without_url()))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("upstream registry: {}", e.without_url()))?
        {
            if body.len() + chunk.len() > max_body {
                return Err(format!("upstream answer larger than {max_body} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body: body.into(),
        })
    }

    /// Size of a blob in a repository, `None` when it is not there.
    pub async fn blob_size(&self, repo: &str, digest: &str) -> Result<Option<u64>, String> {
        let a = self
            .send(
                reqwest::Method::HEAD,
                &format!("v2/{repo}/blobs/{digest}"),
                None,
                None,
                0,
            )
            .await?;
        match a.status {
            200 => Ok(a
                .headers
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())),
            404 => Ok(None),
            s => Err(format!("upstream registry answered {s} to a blob check")),
        }
    }
}
