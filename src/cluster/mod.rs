//! An embedded subset of the OpenShift / Kubernetes API: identity
//! (SelfSubjectReview, `users/~`) and authorization (SelfSubjectAccessReview,
//! SubjectAccessReview, LocalSubjectAccessReview, and the legacy `/oapi/v1`
//! OpenShift reviews), driven by a TOML policy file (see [`policy`]).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use portcullis::cluster::{serve, Cluster};
//! let cluster = Arc::new(Cluster::from_policy_str("").expect("policy"));
//! cluster.add_service_account("openshift-registry", "registry", "random-token", "system:registry");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! tokio::spawn(serve(listener, cluster));
//! # Ok(()) }
//! ```

mod api;
pub mod identity;
pub mod policy;
pub mod rbac;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use policy::PolicyError;

use identity::{hash_token, Authn, UserInfo};
use policy::Policy;
use rbac::{Binding, Decision, Request, Subject};

/// Request kinds counted by [`Cluster::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    SelfSubjectAccessReviews,
    SubjectAccessReviews,
    LocalSubjectAccessReviews,
    SelfSubjectReviews,
    Users,
    /// `/oapi/v1/...localsubjectaccessreviews` (also counted as `LocalSubjectAccessReviews`).
    LegacyLocalSubjectAccessReviews,
    /// `/oapi/v1/...subjectaccessreviews` (also counted as `SubjectAccessReviews`).
    LegacySubjectAccessReviews,
    /// `/oapi/v1/users/..` (also counted as `Users`).
    LegacyUsers,
    /// Requests answered 401 (any endpoint).
    Unauthorized,
}

const KINDS: [(Kind, &str); 9] = [
    (Kind::SelfSubjectAccessReviews, "selfsubjectaccessreviews"),
    (Kind::SubjectAccessReviews, "subjectaccessreviews"),
    (Kind::LocalSubjectAccessReviews, "localsubjectaccessreviews"),
    (Kind::SelfSubjectReviews, "selfsubjectreviews"),
    (Kind::Users, "users"),
    (
        Kind::LegacyLocalSubjectAccessReviews,
        "oapi.localsubjectaccessreviews",
    ),
    (
        Kind::LegacySubjectAccessReviews,
        "oapi.subjectaccessreviews",
    ),
    (Kind::LegacyUsers, "oapi.users"),
    (Kind::Unauthorized, "unauthorized"),
];

#[derive(Debug, Default)]
struct Stats {
    counters: [AtomicU64; KINDS.len()],
}

struct State {
    policy: Policy,
}

/// The embedded cluster: identities, roles, bindings and request counters.
/// `Send + Sync`; share it with `Arc`.
pub struct Cluster {
    state: RwLock<State>,
    stats: Stats,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Load the policy file (TOML). Errors are one line and name the offending key/entry.
    pub fn from_policy_file(path: &Path) -> Result<Cluster, PolicyError> {
        Ok(Cluster::new(Policy::from_file(path)?))
    }

    /// Parse a policy from TOML text.
    pub fn from_policy_str(toml: &str) -> Result<Cluster, PolicyError> {
        Ok(Cluster::new(Policy::from_str(toml)?))
    }

    fn new(policy: Policy) -> Cluster {
        Cluster {
            state: RwLock::new(State { policy }),
            stats: Stats::default(),
        }
    }

    /// Register a service-account identity `system:serviceaccount:<namespace>:<name>`
    /// authenticated by `token` (only its SHA-256 is stored), with a cluster-wide
    /// binding to `cluster_role`. A token already in use is reassigned to this identity.
    pub fn add_service_account(
        &self,
        namespace: &str,
        name: &str,
        token: &str,
        cluster_role: &str,
    ) {
        let user = UserInfo::service_account(namespace, name);
        let username = user.username.clone();
        let mut st = self.write();
        if !st.policy.authorizer.roles.contains_key(cluster_role) {
            tracing::warn!(
                user = %username,
                role = cluster_role,
                "binding a service account to an unknown cluster role; it grants nothing"
            );
        }
        if let Some(prev) = st.policy.tokens.insert(hash_token(token), user) {
            tracing::warn!(
                user = %username,
                previous = %prev.username,
                "service-account token was already assigned to another identity; reassigned"
            );
        }
        st.policy.authorizer.bindings.push(Binding {
            name: format!("portcullis:{namespace}:{name}:{cluster_role}"),
            namespace: None,
            role: cluster_role.to_string(),
            subjects: vec![Subject::ServiceAccount {
                namespace: namespace.to_string(),
                name: name.to_string(),
            }],
        });
        tracing::info!(user = %username, role = cluster_role, "registered service account");
    }

    /// Counters of requests by endpoint kind: `selfsubjectaccessreviews`,
    /// `subjectaccessreviews`, `localsubjectaccessreviews`, `selfsubjectreviews`, `users`
    /// (legacy `/oapi/v1` requests count there too and additionally under
    /// `oapi.localsubjectaccessreviews`, `oapi.subjectaccessreviews`, `oapi.users`), and
    /// `unauthorized` (401 answers). Every request routed to an endpoint counts,
    /// whatever its outcome. All keys are always present.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        KINDS
            .iter()
            .zip(self.stats.counters.iter())
            .map(|((_, name), c)| (name.to_string(), c.load(Ordering::Relaxed)))
            .collect()
    }

    pub(crate) fn count(&self, kind: Kind) {
        if let Some(i) = KINDS.iter().position(|(k, _)| *k == kind) {
            self.stats.counters[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Authenticate the `Authorization` header value of a request.
    pub(crate) fn authenticate(&self, header: Option<&http::HeaderValue>) -> Authn {
        let authn = self
            .read()
            .policy
            .tokens
            .authenticate(identity::credential(header));
        if authn == Authn::Rejected {
            self.count(Kind::Unauthorized);
        }
        authn
    }

    /// Evaluate `req` for `user`.
    pub(crate) fn authorize(&self, user: &UserInfo, req: &Request) -> Decision {
        self.read().policy.authorizer.authorize(user, req)
    }

    /// A policy user by name.
    pub(crate) fn find_user(&self, name: &str) -> Option<UserInfo> {
        self.read().policy.tokens.find_user(name).cloned()
    }
}

/// The API as an axum router (state applied). Unknown paths answer a 404 `Status`.
pub fn router(cluster: Arc<Cluster>) -> axum::Router {
    api::router(cluster)
}

/// Serve the API on `listener` until the future is dropped or aborted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    cluster: Arc<Cluster>,
) -> std::io::Result<()> {
    axum::serve(listener, router(cluster)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_is_send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Cluster>();
        check::<Arc<Cluster>>();
    }

    #[test]
    fn add_service_account_authenticates_and_binds() {
        let c = Cluster::from_policy_str("").unwrap();
        c.add_service_account("openshift-registry", "registry", "tok", "system:registry");
        let hv = http::HeaderValue::from_static("Bearer tok");
        let Authn::Authenticated(u) = c.authenticate(Some(&hv)) else {
            panic!("not authenticated")
        };
        assert_eq!(
            u.username,
            "system:serviceaccount:openshift-registry:registry"
        );
        let sar = rbac::ResourceAttributes::new(
            "create",
            rbac::K8S_AUTHZ_GROUP,
            "subjectaccessreviews",
            "",
            "",
        );
        assert!(c.authorize(&u, &Request::Resource(sar)).allowed);
        let bad = http::HeaderValue::from_static("Bearer nope");
        assert_eq!(c.authenticate(Some(&bad)), Authn::Rejected);
        assert_eq!(c.stats()["unauthorized"], 1);
        assert_eq!(c.stats()["selfsubjectaccessreviews"], 0);
    }

    #[test]
    fn policy_file_errors() {
        let dir = std::env::temp_dir().join(format!("portcullis-cluster-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("policy.toml");
        std::fs::write(
            &p,
            "[[bindings]]\nrole = \"nope\"\nsubjects = [\"user:a\"]\n",
        )
        .unwrap();
        let e = Cluster::from_policy_file(&p).unwrap_err();
        assert_eq!(e.to_string(), "policy: bindings[0]: unknown role \"nope\"");
        std::fs::write(&p, "").unwrap();
        assert!(Cluster::from_policy_file(&p).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
