//! Tag lists, referrers, the permission-filtered catalog, and global blob deletion.

use serde_json::json;

use crate::auth::access::Access;
use crate::auth::credentials::Token;
use crate::error::{Code, RegistryError};
use crate::gateway::respond::Local;
use crate::images::{api_error, Images};
use crate::manifest::image::{subject_label_value, SUBJECT_LABEL};
use crate::manifest::parse::OCI_INDEX;
use crate::route::{query_param, Digest, Repo};

/// `n` and `last` of a paginated request.
pub fn page_params(query: Option<&str>) -> Result<(Option<usize>, Option<String>), RegistryError> {
    let n = match query_param(query, "n") {
        None => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            RegistryError::new(
                Code::PaginationNumberInvalid,
                format!("invalid page size n={n:?}: use a non-negative integer"),
            )
        })?),
    };
    Ok((n, query_param(query, "last")))
}

/// Apply `last` (exclusive start) and `n` (page size) to a sorted list; also returns whether
/// more entries follow. Pure.
pub fn page(sorted: &[String], n: Option<usize>, last: Option<&str>) -> (Vec<String>, bool) {
    let start = match last {
        Some(l) => sorted.partition_point(|x| x.as_str() <= l),
        None => 0,
    };
    let rest = &sorted[start..];
    match n {
        Some(n) if n < rest.len() => (rest[..n].to_vec(), true),
        _ => (rest.to_vec(), false),
    }
}

/// The `Link` header for the next page.
fn link(path: &str, n: usize, last: &str) -> String {
    let last: String = url::form_urlencoded::byte_serialize(last.as_bytes()).collect();
    format!("<{path}?n={n}&last={last}>; rel=\"next\"")
}

fn paged_answer(
    path: &str,
    key: &str,
    name: Option<&str>,
    all: &[String],
    n: Option<usize>,
    last: Option<&str>,
) -> Local {
    let (items, more) = page(all, n, last);
    let mut body = json!({ key: items });
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    let mut local = Local::json(200, body.to_string());
    if let (true, Some(n), Some(l)) = (more, n, items.last()) {
        local = local.header("Link", link(path, n, l));
    }
    local
}

impl Images {
    pub(super) async fn tags(
        &self,
        repo: &Repo,
        query: Option<&str>,
    ) -> Result<Local, RegistryError> {
        let (n, last) = page_params(query)?;
        let Some((stream, _)) = self.stream(repo).await? else {
            return Err(RegistryError::new(
                Code::NameUnknown,
                format!("repository name not known to registry: {repo}"),
            ));
        };
        let mut tags: Vec<String> = stream.tag_names().into_iter().map(str::to_string).collect();
        tags.sort();
        let path = format!("/v2/{repo}/tags/list");
        Ok(paged_answer(
            &path,
            "tags",
            Some(&repo.to_string()),
            &tags,
            n,
            last.as_deref(),
        ))
    }

    pub(super) async fn referrers(
        &self,
        repo: &Repo,
        subject: &Digest,
        query: Option<&str>,
    ) -> Result<Local, RegistryError> {
        let filter = query_param(query, "artifactType");
        let selector = format!("{SUBJECT_LABEL}={}", subject_label_value(subject));
        let candidates = self
            .api
            .images_labelled(&selector)
            .await
            .map_err(|e| api_error(&e))?;
        let stream = self.stream(repo).await?;
        let mut manifests = Vec::new();
        for image in candidates {
            let digest = image.metadata.name;
            let Some(stored) = self
                .member(repo, stream.as_ref().map(|(s, _)| s), &digest)
                .await?
            else {
                continue;
            };
            let Some(m) = &stored.parsed else { continue };
            if m.subject.as_ref().map(|s| &s.digest) != Some(subject) {
                continue;
            }
            let artifact_type = m.referrer_artifact_type();
            if filter.is_some() && artifact_type != filter {
                continue;
            }
            let mut d = json!({"mediaType": stored.media_type, "digest": digest, "size": stored.bytes.len()});
            if let Some(a) = artifact_type {
                d["artifactType"] = json!(a);
            }
            if let Some(a) = &m.annotations {
                d["annotations"] = a.clone();
            }
            manifests.push(d);
        }
        manifests.sort_by(|a, b| a["digest"].as_str().cmp(&b["digest"].as_str()));
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        let mut local = Local {
            status: 200,
            headers: vec![("Content-Type", OCI_INDEX.into())],
            body: index.to_string().into(),
        };
        if filter.is_some() {
            local = local.header("OCI-Filters-Applied", "artifactType");
        }
        Ok(local)
    }

    /// The repositories (image streams) the caller may pull, sorted, paginated.
    pub(super) async fn catalog(
        &self,
        query: Option<&str>,
        token: Option<&Token>,
    ) -> Result<Local, RegistryError> {
        let (n, last) = page_params(query)?;
        let mut all = Vec::new();
        let mut cont = String::new();
        loop {
            let page = self
                .api
                .image_streams_page(500, &cont)
                .await
                .map_err(|e| api_error(&e))?;
            all.extend(
                page.items
                    .into_iter()
                    .map(|s| format!("{}/{}", s.metadata.namespace, s.metadata.name)),
            );
            if page.metadata.continue_.is_empty() {
                break;
            }
            cont = page.metadata.continue_;
        }
        all.sort();
        let unavailable = |e: std::sync::Arc<crate::openshift::ApiError>| api_error(&e);
        let everything = self
            .authorizer
            .allowed(token, &Access::catalog())
            .await
            .map_err(unavailable)?;
        let start = last
            .as_deref()
            .map(|l| all.partition_point(|x| x.as_str() <= l))
            .unwrap_or(0);
        let want = n.unwrap_or(usize::MAX);
        let mut visible = Vec::new();
        let mut more = false;
        for name in &all[start..] {
            let Ok(repo) = Repo::parse(name) else {
                continue;
            };
            if everything
                || self
                    .authorizer
                    .allowed(token, &Access::pull(&repo))
                    .await
                    .map_err(unavailable)?
            {
                if visible.len() == want {
                    more = true;
                    break;
                }
                visible.push(name.clone());
            }
        }
        let mut local = Local::json(200, json!({ "repositories": visible }).to_string());
        if let (true, Some(n), Some(l)) = (more, n, visible.last()) {
            local = local.header("Link", link("/v2/_catalog", n, l));
        }
        Ok(local)
    }

    /// `DELETE /admin/blobs/<digest>`: unlink the blob from every upstream repository; the
    /// upstream's garbage collection then frees the bytes.
    pub(super) async fn delete_blob_everywhere(
        &self,
        digest: &Digest,
    ) -> Result<Local, RegistryError> {
        let unavailable = |e: String| RegistryError::new(Code::Unavailable, e);
        let mut last = String::new();
        loop {
            let path = format!("v2/_catalog?n=1000&last={last}");
            let a = self
                .upstream
                .send(reqwest::Method::GET, &path, None, None, 16 << 20)
                .await
                .map_err(unavailable)?;
            let repos: Vec<String> = serde_json::from_slice::<serde_json::Value>(&a.body)
                .ok()
                .and_then(|v| serde_json::from_value(v["repositories"].clone()).ok())
                .unwrap_or_default();
            for repo in &repos {
                let p = format!("v2/{repo}/blobs/{digest}");
                let a = self
                    .upstream
                    .send(reqwest::Method::DELETE, &p, None, None, 1 << 20)
                    .await
                    .map_err(unavailable)?;
                if !matches!(a.status, 202 | 404) {
                    return Err(RegistryError::new(
                        Code::Unknown,
                        format!("the upstream registry answered {} deleting {p}", a.status),
                    ));
                }
            }
            match repos.last() {
                Some(l) if repos.len() == 1000 => last = l.clone(),
                _ => break,
            }
        }
        self.forget(&digest.to_string()).await;
        Ok(Local::empty(204))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pagination() {
        let all = v(&["a", "b", "c", "d"]);
        assert_eq!(page(&all, None, None), (all.clone(), false));
        assert_eq!(page(&all, Some(2), None), (v(&["a", "b"]), true));
        assert_eq!(page(&all, Some(2), Some("b")), (v(&["c", "d"]), false));
        assert_eq!(page(&all, Some(10), Some("bb")), (v(&["c", "d"]), false));
        assert_eq!(page(&all, Some(0), None), (v(&[]), true));
        assert_eq!(page(&all, None, Some("z")), (v(&[]), false));
        assert_eq!(
            link("/v2/a/b/tags/list", 2, "b"),
            "</v2/a/b/tags/list?n=2&last=b>; rel=\"next\""
        );
        assert!(page_params(Some("n=x")).is_err());
        assert_eq!(
            page_params(Some("n=3&last=q")).unwrap(),
            (Some(3), Some("q".into()))
        );
    }
}
