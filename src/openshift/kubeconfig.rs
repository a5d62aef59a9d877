//! Turning a configured API source (URL + files, kubeconfig, in-cluster service account) into
//! [`ApiSettings`]. The embedded API is set up by `main`.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use url::Url;

use crate::auth::credentials::Token;
use crate::config::ApiSource;
use crate::openshift::ApiSettings;

const SA_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

#[derive(Deserialize)]
struct Kubeconfig {
    #[serde(rename = "current-context", default)]
    current_context: String,
    #[serde(default)]
    contexts: Vec<Named<Context>>,
    #[serde(default)]
    clusters: Vec<Named<Cluster>>,
    #[serde(default)]
    users: Vec<Named<User>>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "context", alias = "cluster", alias = "user")]
    item: T,
}

#[derive(Deserialize)]
struct Context {
    cluster: String,
    user: String,
}

#[derive(Deserialize)]
struct Cluster {
    server: String,
    #[serde(rename = "certificate-authority")]
    ca_file: Option<String>,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify", default)]
    insecure: bool,
}

#[derive(Deserialize, Default)]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<String>,
}

fn read_token(path: &Path) -> Result<Token, String> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(format!("token file {} is empty", path.display()));
    }
    Ok(Token::new(t))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Settings for a non-embedded source.
pub fn settings(
    source: &ApiSource,
    timeout: Duration,
    legacy_reviews: bool,
) -> Result<ApiSettings, String> {
    let mk = |base_url: Url, ca_pem, insecure, token| ApiSettings {
        base_url,
        ca_pem,
        insecure,
        token,
        timeout,
        legacy_reviews,
    };
    match source {
        ApiSource::Embedded { .. } => {
            Err("the embedded API is started by the gateway itself".into())
        }
        ApiSource::Remote {
            url,
            ca_file,
            insecure,
            token_file,
        } => {
            let ca = ca_file.as_deref().map(read).transpose()?;
            let token = token_file.as_deref().map(read_token).transpose()?;
            Ok(mk(url.clone(), ca, *insecure, token))
        }
        ApiSource::InCluster => {
            let host = std::env::var("KUBERNETES_SERVICE_HOST").map_err(|_| {
                "openshift.api = \"in-cluster\" but KUBERNETES_SERVICE_HOST is not set".to_string()
            })?;
            let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            let url = Url::parse(&format!("https://{host}:{port}/")).map_err(|e| e.to_string())?;
            let dir = Path::new(SA_DIR);
            Ok(mk(
                url,
                Some(read(&dir.join("ca.crt"))?),
                false,
                Some(read_token(&dir.join("token"))?),
            ))
        }
        ApiSource::Kubeconfig(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read kubeconfig {}: {e}", path.display()))?;
            let k: Kubeconfig = serde_norway::from_str(&text)
                .map_err(|e| format!("kubeconfig {}: {e}", path.display()))?;
            let ctx = k
                .contexts
                .iter()
                .find(|c| c.name == k.current_context)
                .ok_or_else(|| {
                    format!(
                        "kubeconfig {}: current-context {:?} not found",
                        path.display(),
                        k.current_context
                    )
                })?;
            let cluster = k
                .clusters
                .iter()
                .find(|c| c.name == ctx.item.cluster)
                .ok_or_else(|| format!("kubeconfig: cluster {:?} not found", ctx.item.cluster))?;
            let user = k
                .users
                .iter()
                .find(|u| u.name == ctx.item.user)
                .map(|u| &u.item);
            let base = path.parent().unwrap_or(Path::new("."));
            let ca = match (&cluster.item.ca_data, &cluster.item.ca_file) {
                (Some(d), _) => Some(
                    base64::engine::general_purpose::STANDARD
                        .decode(d.trim())
                        .map_err(|e| format!("kubeconfig: certificate-authority-data: {e}"))?,
                ),
                (None, Some(f)) => Some(read(&base.join(f))?),
                _ => None,
            };
            let token = match user {
                Some(User { token: Some(t), .. }) => Some(Token::new(t.trim())),
                Some(User {
                    token_file: Some(f),
                    ..
                }) => Some(read_token(&base.join(f))?),
                _ => None,
            };
            let url =
                Url::parse(&cluster.item.server).map_err(|e| format!("kubeconfig: server: {e}"))?;
            Ok(mk(url, ca, cluster.item.insecure, token))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_current_context() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: Config\ncurrent-context: b\ncontexts:\n- name: a\n  context: {cluster: c1, user: u1}\n- name: b\n  context: {cluster: c2, user: u2}\nclusters:\n- name: c1\n  cluster: {server: 'https://one:6443'}\n- name: c2\n  cluster: {server: 'https://two:6443', insecure-skip-tls-verify: true}\nusers:\n- name: u2\n  user: {token: sha256~abc}\n",
        )
        .unwrap();
        let s = settings(&ApiSource::Kubeconfig(p), Duration::from_secs(1), false).unwrap();
        assert_eq!(s.base_url.as_str(), "https://two:6443/");
        assert!(s.insecure);
        assert_eq!(s.token.unwrap().expose(), "sha256~abc");
    }
}
