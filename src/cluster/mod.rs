//! An embedded subset of the OpenShift / Kubernetes API: identity
//! (SelfSubjectReview, `users/~`), authorization (SelfSubjectAccessReview,
//! SubjectAccessReview, LocalSubjectAccessReview, and the legacy `/oapi/v1`
//! OpenShift reviews), driven by a TOML policy file (see [`policy`]), and the
//! image API (`image.openshift.io/v1` images, image streams, mappings, tags,
//! layers; core LimitRanges and ResourceQuotas from the policy) persisted in
//! an embedded database file (see [`Cluster::open`]) with LimitRange /
//! ResourceQuota admission (see [`admission`]).
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

pub mod admission;
mod api;
pub mod identity;
pub mod images;
pub mod policy;
pub mod rbac;
mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant, SystemTime};

pub use policy::PolicyError;
pub use store::StoreError;

use admission::{LimitRange, ResourceQuota};
use identity::{hash_token, Authn, TokenHash, UserInfo};
use policy::Policy;
use rbac::{Binding, Decision, Request, Subject};
use store::Store;

/// Error opening or reloading a cluster. `Display` is one line.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

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
    /// `imagestreams` (incl. `/status`, `/layers`, all-namespace lists).
    ImageStreams,
    ImageStreamMappings,
    Images,
    ImageStreamTags,
    ImageStreamImages,
    LimitRanges,
    ResourceQuotas,
}

const KINDS: [(Kind, &str); 16] = [
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
    (Kind::ImageStreams, "imagestreams"),
    (Kind::ImageStreamMappings, "imagestreammappings"),
    (Kind::Images, "images"),
    (Kind::ImageStreamTags, "imagestreamtags"),
    (Kind::ImageStreamImages, "imagestreamimages"),
    (Kind::LimitRanges, "limitranges"),
    (Kind::ResourceQuotas, "resourcequotas"),
];

#[derive(Debug, Default)]
struct Stats {
    counters: [AtomicU64; KINDS.len()],
}

struct State {
    policy: Policy,
    registry_host: String,
    /// Service accounts added with [`Cluster::add_service_account`], re-applied on reload.
    added_accounts: Vec<AddedAccount>,
}

#[derive(Clone, Debug)]
struct AddedAccount {
    namespace: String,
    name: String,
    token: TokenHash,
    cluster_role: String,
}

/// Modification stamp of the policy file (mtime and length).
type FileStamp = (SystemTime, u64);

fn file_stamp(path: &Path) -> Option<FileStamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// The policy file a cluster was loaded from, watched for changes.
#[derive(Debug)]
struct PolicySource {
    path: PathBuf,
    watch: Mutex<Watch>,
}

#[derive(Debug)]
struct Watch {
    last_check: Instant,
    stamp: Option<FileStamp>,
    /// Minimum time between two checks of the file.
    interval: Duration,
}

/// How often (at most) a request checks whether the policy file changed.
const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The embedded cluster: identities, roles, bindings, limits and quotas, the
/// object store, and request counters. `Send + Sync`; share it with `Arc`.
pub struct Cluster {
    state: RwLock<State>,
    stats: Stats,
    store: Store,
    source: Option<PolicySource>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").finish_non_exhaustive()
    }
}

impl Cluster {
    /// Load the policy file (TOML); objects are kept in memory. Errors are one line
    /// and name the offending key/entry.
    pub fn from_policy_file(path: &Path) -> Result<Cluster, PolicyError> {
        Cluster::open(path, None).map_err(|e| match e {
            ClusterError::Policy(p) => p,
            ClusterError::Store(s) => in_memory_store_error(s),
        })
    }

    /// Parse a policy from TOML text; objects are kept in memory.
    pub fn from_policy_str(toml: &str) -> Result<Cluster, PolicyError> {
        let store = Store::open(None).map_err(in_memory_store_error)?;
        Ok(Cluster::new(Policy::from_str(toml)?, store, None))
    }

    /// Policy from `policy`; objects persisted in the store file `data` (created if
    /// missing). `None` = in-memory (unit tests). The policy file is re-read when
    /// it changes (see [`Cluster::reload_policy`]).
    pub fn open(policy: &Path, data: Option<&Path>) -> Result<Cluster, ClusterError> {
        let stamp = file_stamp(policy);
        let parsed = Policy::from_file(policy)?;
        let store = Store::open(data)?;
        let source = PolicySource {
            path: policy.to_path_buf(),
            watch: Mutex::new(Watch {
                last_check: Instant::now(),
                stamp,
                interval: RELOAD_CHECK_INTERVAL,
            }),
        };
        Ok(Cluster::new(parsed, store, Some(source)))
    }

    fn new(policy: Policy, store: Store, source: Option<PolicySource>) -> Cluster {
        Cluster {
            state: RwLock::new(State {
                policy,
                registry_host: images::DEFAULT_REGISTRY_HOST.to_string(),
                added_accounts: Vec::new(),
            }),
            stats: Stats::default(),
            store,
            source,
        }
    }

    /// Host (and port) of the registry, used in `status.dockerImageRepository`
    /// (`<host>/<namespace>/<stream>`). Default `image-registry.local:5000`.
    pub fn set_registry_host(&self, host: &str) {
        self.write().registry_host = host.to_string();
    }

    pub(crate) fn registry_host(&self) -> String {
        self.read().registry_host.clone()
    }

    /// Re-read the policy file: identities, bindings, roles, limit ranges and quotas
    /// (service accounts added with [`Cluster::add_service_account`] are kept). On
    /// error the current policy stays in force. A no-op for a cluster built from a
    /// string.
    pub fn reload_policy(&self) -> Result<(), ClusterError> {
        let Some(src) = &self.source else {
            return Ok(());
        };
        let mut watch = src.watch.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = file_stamp(&src.path);
        self.reload_from(&src.path)?;
        watch.stamp = stamp;
        watch.last_check = Instant::now();
        Ok(())
    }

    fn reload_from(&self, path: &Path) -> Result<(), ClusterError> {
        let mut policy = Policy::from_file(path)?;
        let mut st = self.write();
        for acct in &st.added_accounts {
            apply_account(&mut policy, acct, false);
        }
        st.policy = policy;
        drop(st);
        tracing::info!(policy = %path.display(), "policy reloaded");
        Ok(())
    }

    /// Reload the policy if its file changed; checks at most once per interval,
    /// skipped while another request is checking.
    pub(crate) fn maybe_reload(&self) {
        let Some(src) = &self.source else {
            return;
        };
        let Ok(mut watch) = src.watch.try_lock() else {
            return;
        };
        if watch.last_check.elapsed() < watch.interval {
            return;
        }
        watch.last_check = Instant::now();
        let stamp = file_stamp(&src.path);
        if stamp == watch.stamp {
            return;
        }
        // Remember the stamp even on failure: a broken file is reported once, not
        // on every request, and the current policy stays in force.
        watch.stamp = stamp;
        if let Err(e) = self.reload_from(&src.path) {
            tracing::warn!(error = %e, "policy file changed but cannot be loaded; keeping the current policy");
        }
    }

    #[cfg(test)]
    pub(crate) fn set_reload_interval(&self, interval: Duration) {
        if let Some(src) = &self.source {
            src.watch.lock().unwrap_or_else(|e| e.into_inner()).interval = interval;
        }
    }

    /// LimitRanges of `namespace`.
    pub(crate) fn limit_ranges(&self, namespace: &str) -> Vec<LimitRange> {
        self.read()
            .policy
            .limit_ranges
            .iter()
            .filter(|l| l.namespace == namespace)
            .cloned()
            .collect()
    }

    /// ResourceQuotas of `namespace`.
    pub(crate) fn resource_quotas(&self, namespace: &str) -> Vec<ResourceQuota> {
        self.read()
            .policy
            .resource_quotas
            .iter()
            .filter(|q| q.namespace == namespace)
            .cloned()
            .collect()
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
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
        let acct = AddedAccount {
            namespace: namespace.to_string(),
            name: name.to_string(),
            token: hash_token(token),
            cluster_role: cluster_role.to_string(),
        };
        let mut st = self.write();
        apply_account(&mut st.policy, &acct, true);
        st.added_accounts.push(acct);
    }

    /// Counters of requests by endpoint kind: `selfsubjectaccessreviews`,
    /// `subjectaccessreviews`, `localsubjectaccessreviews`, `selfsubjectreviews`, `users`
    /// (legacy `/oapi/v1` requests count there too and additionally under
    /// `oapi.localsubjectaccessreviews`, `oapi.subjectaccessreviews`, `oapi.users`), and
    /// `unauthorized` (401 answers), and the image API: `imagestreams` (including
    /// `/status`, `/layers` and all-namespace lists), `imagestreammappings`, `images`,
    /// `imagestreamtags`, `imagestreamimages`, `limitranges`, `resourcequotas`.
    /// Every request routed to an endpoint counts, whatever its outcome. All keys
    /// are always present.
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

    /// Authenticate the `Authorization` header value of a request (reloading the
    /// policy first if its file changed).
    pub(crate) fn authenticate(&self, header: Option<&http::HeaderValue>) -> Authn {
        self.maybe_reload();
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

fn in_memory_store_error(e: StoreError) -> PolicyError {
    PolicyError::Read {
        path: "(in-memory object store)".to_string(),
        message: e.to_string(),
    }
}

/// Add a service account's identity and cluster binding to `policy`.
fn apply_account(policy: &mut Policy, acct: &AddedAccount, log: bool) {
    let user = UserInfo::service_account(&acct.namespace, &acct.name);
    let username = user.username.clone();
    if log && !policy.authorizer.roles.contains_key(&acct.cluster_role) {
        tracing::warn!(
            user = %username,
            role = %acct.cluster_role,
            "binding a service account to an unknown cluster role; it grants nothing"
        );
    }
    if let Some(prev) = policy.tokens.insert(acct.token, user) {
        if log {
            tracing::warn!(
                user = %username,
                previous = %prev.username,
                "service-account token was already assigned to another identity; reassigned"
            );
        }
    }
    policy.authorizer.bindings.push(Binding {
        name: format!(
            "portcullis:{}:{}:{}",
            acct.namespace, acct.name, acct.cluster_role
        ),
        namespace: None,
        role: acct.cluster_role.clone(),
        subjects: vec![Subject::ServiceAccount {
            namespace: acct.namespace.clone(),
            name: acct.name.clone(),
        }],
    });
    if log {
        tracing::info!(user = %username, role = %acct.cluster_role, "registered service account");
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
    fn reload_keeps_added_service_accounts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("policy.toml");
        std::fs::write(&p, "").unwrap();
        let c = Cluster::open(&p, None).unwrap();
        c.add_service_account("openshift-registry", "registry", "tok", "system:registry");
        std::fs::write(
            &p,
            "[[limit_ranges]]\nnamespace = \"demo\"\nname = \"l\"\nlimits = [ { type = \"openshift.io/Image\", max = { storage = \"1Gi\" } } ]\n",
        )
        .unwrap();
        assert!(c.limit_ranges("demo").is_empty());
        c.reload_policy().unwrap();
        assert_eq!(c.limit_ranges("demo").len(), 1);
        assert!(c.limit_ranges("other").is_empty());
        let hv = http::HeaderValue::from_static("Bearer tok");
        assert!(matches!(c.authenticate(Some(&hv)), Authn::Authenticated(_)));
        // A broken file is an error and the policy in force stays.
        std::fs::write(&p, "nope = 1\n").unwrap();
        let e = c.reload_policy().unwrap_err();
        assert!(e.to_string().starts_with("policy: line 1:"), "{e}");
        assert_eq!(c.limit_ranges("demo").len(), 1);
        // Clusters built from a string have nothing to reload.
        assert!(Cluster::from_policy_str("")
            .unwrap()
            .reload_policy()
            .is_ok());
    }

    #[test]
    fn open_reports_store_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("policy.toml");
        std::fs::write(&p, "").unwrap();
        let e = Cluster::open(&p, Some(Path::new("/nonexistent/x/api.db"))).unwrap_err();
        assert!(matches!(e, ClusterError::Store(_)));
        assert!(
            e.to_string()
                .starts_with("cannot open object store /nonexistent/x/api.db:"),
            "{e}"
        );
        let stats = Cluster::from_policy_str("").unwrap().stats();
        for k in [
            "imagestreams",
            "imagestreammappings",
            "images",
            "limitranges",
            "resourcequotas",
        ] {
            assert_eq!(stats[k], 0, "{k}");
        }
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
