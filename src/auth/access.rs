//! Which OpenShift permissions a request needs (pure).
//!
//! The mapping follows the OpenShift registry (reference §3.1): pull → `get`, push → `update`
//! on `imagestreams/layers` (group `image.openshift.io`) in the namespace, named after the
//! stream; deleting manifests and blobs → cluster-wide `delete images` (the pruner check);
//! cancelling an upload → `update`; the catalog → cluster-wide `list imagestreams`.

use http::Method;

use crate::error::{Code, RegistryError};
use crate::route::{Reference, Repo, Route};

const IMAGE_GROUP: &str = "image.openshift.io";

/// One permission to check with a (Self)SubjectAccessReview.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Access {
    /// Empty for cluster-scoped checks.
    pub namespace: String,
    /// Empty for checks that are not about one object.
    pub name: String,
    pub verb: &'static str,
    pub group: &'static str,
    /// May carry a subresource the way OpenShift sends it: `imagestreams/layers`.
    pub resource: &'static str,
    pub subresource: &'static str,
}

impl Access {
    /// `get imagestreams/layers` on a repository.
    pub fn pull(repo: &Repo) -> Access {
        Access::layers(repo, "get")
    }
    /// `update imagestreams/layers` on a repository.
    pub fn push(repo: &Repo) -> Access {
        Access::layers(repo, "update")
    }
    fn layers(repo: &Repo, verb: &'static str) -> Access {
        Access {
            namespace: repo.namespace.clone(),
            name: repo.name.clone(),
            verb,
            group: IMAGE_GROUP,
            resource: "imagestreams/layers",
            subresource: "",
        }
    }
    fn cluster(verb: &'static str, resource: &'static str, subresource: &'static str) -> Access {
        Access {
            namespace: String::new(),
            name: String::new(),
            verb,
            group: IMAGE_GROUP,
            resource,
            subresource,
        }
    }
    /// The pruner check: cluster-wide `delete images`.
    pub fn prune() -> Access {
        Access::cluster("delete", "images", "")
    }
    /// The catalog check: cluster-wide `list imagestreams`.
    pub fn catalog() -> Access {
        Access::cluster("list", "imagestreams", "")
    }
    /// The metrics check: `get registry/metrics`.
    pub fn metrics() -> Access {
        Access::cluster("get", "registry", "metrics")
    }
    fn sign(repo: &Repo) -> Access {
        Access {
            verb: "create",
            resource: "imagesignatures",
            ..Access::layers(repo, "create")
        }
    }

    /// The record the way distribution reports it in error details (`{"Type","Name","Action"}`).
    pub fn record(&self) -> serde_json::Value {
        if self.namespace.is_empty() {
            let (typ, name, action) = match self.resource {
                "imagestreams" => ("registry", "catalog", "*"),
                "registry" => ("metrics", "", "get"),
                _ => ("admin", "", "prune"),
            };
            return serde_json::json!({"Type": typ, "Name": name, "Action": action});
        }
        let action = match self.verb {
            "get" => "pull",
            "update" => "push",
            other => other,
        };
        serde_json::json!({"Type": "repository", "Name": format!("{}/{}", self.namespace, self.name), "Action": action})
    }
}

/// What the gateway must establish before it may answer a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// No credentials needed (`/healthz`, the token endpoint, which checks credentials itself).
    Public,
    /// `/v2/`: the token must be valid; no permission is checked.
    Identify,
    /// Every access in `required` must be allowed. `mount_source`, when present, is checked
    /// too, but a denial only disables the cross-repository mount (reference §3.5).
    Check {
        required: Vec<Access>,
        mount_source: Option<Access>,
    },
}

fn unsupported(method: &Method, route: &Route) -> RegistryError {
    RegistryError::new(
        Code::Unsupported,
        format!(
            "method {method} is not supported on the {} endpoint",
            route.class()
        ),
    )
}

fn check(required: Vec<Access>) -> Plan {
    Plan::Check {
        required,
        mount_source: None,
    }
}

/// Map a classified request to its plan; methods an endpoint does not accept → 405 `UNSUPPORTED`.
pub fn plan(method: &Method, route: &Route) -> Result<Plan, RegistryError> {
    let read = method == Method::GET || method == Method::HEAD;
    let write = method == Method::POST || method == Method::PUT || method == Method::PATCH;
    let delete = method == Method::DELETE;
    let plan = match route {
        Route::Health | Route::Ready => Plan::Public,
        Route::Token if method == Method::GET => Plan::Public,
        Route::Base if read => Plan::Identify,
        // The catalog lists what the caller may pull: filtered per repository afterwards.
        Route::Catalog if read => check(vec![]),
        Route::Tags { repo } | Route::Referrers { repo, .. } if read => {
            check(vec![Access::pull(repo)])
        }
        Route::Manifest { repo, .. } | Route::Blob { repo, .. } if read => {
            check(vec![Access::pull(repo)])
        }
        Route::Manifest { repo, .. } if method == Method::PUT => {
            check(vec![Access::pull(repo), Access::push(repo)])
        }
        // Untagging is a push-level change to the stream; deleting content needs the pruner.
        Route::Manifest {
            repo,
            reference: Reference::Tag(_),
        } if delete => check(vec![Access::push(repo)]),
        Route::Manifest { .. } | Route::Blob { .. } | Route::AdminBlob { .. } if delete => {
            check(vec![Access::prune()])
        }
        Route::UploadStart { repo, mount, .. } if method == Method::POST => Plan::Check {
            required: vec![Access::pull(repo), Access::push(repo)],
            mount_source: mount
                .as_ref()
                .filter(|m| &m.from != repo)
                .map(|m| Access::pull(&m.from)),
        },
        Route::Upload { repo, .. } if read => check(vec![Access::pull(repo)]),
        Route::Upload { repo, .. } if write => check(vec![Access::pull(repo), Access::push(repo)]),
        Route::Upload { repo, .. } if delete => check(vec![Access::push(repo)]),
        Route::Signatures { repo, .. } if read => check(vec![Access::pull(repo)]),
        Route::Signatures { repo, .. } if method == Method::PUT => check(vec![
            Access::pull(repo),
            Access::push(repo),
            Access::sign(repo),
        ]),
        Route::Metrics if read => check(vec![Access::metrics()]),
        _ => return Err(unsupported(method, route)),
    };
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::classify;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn plan_for(method: Method, path: &str, query: Option<&str>) -> Result<Plan, RegistryError> {
        plan(&method, &classify(path, query).unwrap())
    }
    fn repo() -> Repo {
        Repo::parse("ns/is").unwrap()
    }

    #[test]
    fn pull_and_push() {
        let pull = check(vec![Access::pull(&repo())]);
        let push = check(vec![Access::pull(&repo()), Access::push(&repo())]);
        assert_eq!(
            plan_for(Method::GET, "/v2/ns/is/manifests/latest", None).unwrap(),
            pull
        );
        assert_eq!(
            plan_for(Method::HEAD, &format!("/v2/ns/is/blobs/{D}"), None).unwrap(),
            pull
        );
        assert_eq!(
            plan_for(Method::GET, "/v2/ns/is/tags/list", None).unwrap(),
            pull
        );
        assert_eq!(
            plan_for(Method::GET, &format!("/v2/ns/is/referrers/{D}"), None).unwrap(),
            pull
        );
        assert_eq!(
            plan_for(Method::GET, "/v2/ns/is/blobs/uploads/u", None).unwrap(),
            pull
        );
        assert_eq!(
            plan_for(Method::PUT, "/v2/ns/is/manifests/latest", None).unwrap(),
            push
        );
        assert_eq!(
            plan_for(Method::POST, "/v2/ns/is/blobs/uploads/", None).unwrap(),
            push
        );
        assert_eq!(
            plan_for(Method::PATCH, "/v2/ns/is/blobs/uploads/u", None).unwrap(),
            push
        );
        assert_eq!(
            plan_for(
                Method::PUT,
                "/v2/ns/is/blobs/uploads/u",
                Some(&format!("digest={D}"))
            )
            .unwrap(),
            push
        );
    }

    #[test]
    fn access_shape() {
        let a = Access::push(&repo());
        assert_eq!(
            (a.namespace.as_str(), a.name.as_str(), a.verb),
            ("ns", "is", "update")
        );
        assert_eq!(
            (a.group, a.resource),
            ("image.openshift.io", "imagestreams/layers")
        );
    }

    #[test]
    fn deletes() {
        let prune = check(vec![Access::prune()]);
        assert_eq!(
            plan_for(Method::DELETE, &format!("/v2/ns/is/manifests/{D}"), None).unwrap(),
            prune
        );
        assert_eq!(
            plan_for(Method::DELETE, "/v2/ns/is/manifests/latest", None).unwrap(),
            check(vec![Access::push(&repo())])
        );
        assert_eq!(
            plan_for(Method::DELETE, &format!("/v2/ns/is/blobs/{D}"), None).unwrap(),
            prune
        );
        assert_eq!(
            plan_for(Method::DELETE, &format!("/admin/blobs/{D}"), None).unwrap(),
            prune
        );
        assert_eq!(
            plan_for(Method::DELETE, "/v2/ns/is/blobs/uploads/u", None).unwrap(),
            check(vec![Access::push(&repo())])
        );
        assert_eq!(Access::prune().namespace, "");
    }

    #[test]
    fn mount_source_is_deferred() {
        let p = plan_for(
            Method::POST,
            "/v2/ns/is/blobs/uploads/",
            Some(&format!("mount={D}&from=other/src")),
        )
        .unwrap();
        let Plan::Check {
            required,
            mount_source,
        } = p
        else {
            panic!()
        };
        assert_eq!(required.len(), 2);
        assert_eq!(
            mount_source,
            Some(Access::pull(&Repo::parse("other/src").unwrap()))
        );
        // mounting from the same repository needs nothing extra
        let p = plan_for(
            Method::POST,
            "/v2/ns/is/blobs/uploads/",
            Some(&format!("mount={D}&from=ns/is")),
        )
        .unwrap();
        assert!(matches!(
            p,
            Plan::Check {
                mount_source: None,
                ..
            }
        ));
    }

    #[test]
    fn public_identify_catalog() {
        assert_eq!(
            plan_for(Method::GET, "/healthz", None).unwrap(),
            Plan::Public
        );
        assert_eq!(
            plan_for(Method::GET, "/openshift/token", None).unwrap(),
            Plan::Public
        );
        assert_eq!(plan_for(Method::GET, "/v2/", None).unwrap(), Plan::Identify);
        assert_eq!(
            plan_for(Method::GET, "/v2/_catalog", None).unwrap(),
            check(vec![])
        );
        assert_eq!(
            plan_for(Method::GET, "/extensions/v2/metrics", None).unwrap(),
            check(vec![Access::metrics()])
        );
    }

    #[test]
    fn unsupported_methods() {
        for (m, p) in [
            (Method::POST, "/v2/"),
            (Method::POST, "/openshift/token"),
            (Method::DELETE, "/v2/_catalog"),
            (Method::PUT, "/v2/ns/is/tags/list"),
            (Method::PATCH, "/v2/ns/is/manifests/latest"),
            (Method::POST, "/v2/ns/is/manifests/latest"),
            (Method::GET, &format!("/admin/blobs/{D}")),
            (Method::PUT, &format!("/v2/ns/is/blobs/{D}")),
            (Method::GET, "/v2/ns/is/blobs/uploads/"),
            (Method::OPTIONS, "/v2/ns/is/blobs/uploads/u"),
        ] {
            let e = plan_for(m.clone(), p, None).unwrap_err();
            assert_eq!((e.code, e.status), (Code::Unsupported, 405), "{m} {p}");
        }
    }

    #[test]
    fn records() {
        assert_eq!(
            Access::pull(&repo()).record(),
            serde_json::json!({"Type":"repository","Name":"ns/is","Action":"pull"})
        );
        assert_eq!(Access::catalog().record()["Type"], "registry");
    }
}
