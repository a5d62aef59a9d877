//! Policy file of the embedded cluster (TOML).
//!
//! ```toml
//! # Token hashes are the lowercase hex SHA-256 of the token string, e.g.
//! #   printf %s "$TOKEN" | sha256sum
//!
//! [[users]]                        # OpenShift users (token → user name + groups)
//! name = "alice"
//! token_sha256 = "<64 hex digits>"
//! groups = ["developers"]          # optional; system:authenticated and
//!                                  # system:authenticated:oauth are always added
//!
//! [[service_accounts]]             # identity system:serviceaccount:<namespace>:<name>
//! namespace = "ci"                 # groups: system:serviceaccounts,
//! name = "builder"                 # system:serviceaccounts:<namespace>, system:authenticated
//! token_sha256 = "<64 hex digits>"
//!
//! [[bindings]]
//! namespace = "team-a"             # omit => cluster-wide (ClusterRoleBinding)
//! role = "system:image-builder"    # a built-in role or one of [[roles]]
//! subjects = ["user:alice", "group:developers", "serviceaccount:ci:builder",
//!             "group:system:unauthenticated", "group:system:authenticated"]
//!
//! [[roles]]                        # optional custom cluster roles
//! name = "my-role"
//! rules = [
//!   { verbs = ["get"], groups = ["image.openshift.io"], resources = ["imagestreams/layers"] },
//!   # optional: names = ["only-this-stream"]
//! ]
//!
//! [[limit_ranges]]                 # LimitRanges (served, and enforced on image admission)
//! namespace = "demo"
//! name = "image-limits"
//! limits = [
//!   { type = "openshift.io/Image", max = { storage = "1Gi" } },
//!   { type = "openshift.io/ImageStream", max = { "openshift.io/images" = "10", "openshift.io/image-tags" = "5" } },
//! ]
//!
//! [[resource_quotas]]              # ResourceQuotas (openshift.io/imagestreams is enforced
//! namespace = "demo"               # on ImageStream create, openshift.io/image-storage on
//!                                  # ImageStreamMapping create; usage is served in status.used)
//! name = "image-quota"
//! hard = { "openshift.io/imagestreams" = "3", "openshift.io/image-storage" = "10Gi" }
//! ```
//!
//! Quantities are Kubernetes quantity strings (`"10"`, `"500M"`, `"1Gi"`) or integers.
//!
//! All sections are optional. Unknown keys, unknown role names, malformed
//! subjects, malformed hashes and tokens used twice are rejected.
//!
//! Built-in roles: `system:image-puller`, `system:image-pusher`,
//! `system:image-builder`, `registry-viewer`, `registry-editor`, `view`, `edit`,
//! `admin`, `system:registry`, `system:image-pruner`, `self-access-reviewer`,
//! `system:basic-user` (implicitly bound to `system:authenticated`), `cluster-admin`.
//! Rule verbs, groups and resources accept `*`; `""` is the core/legacy group,
//! which also matches image/authorization/user resources of the modern groups.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::admission::{known_limit_resources, LimitItem, LimitRange, ResourceQuota};
use super::identity::{
    parse_token_hash, service_account_username, TokenHash, TokenStore, UserInfo,
};
use super::rbac::{
    builtin_role_names, valid_name, valid_segment, Authorizer, Binding, Role, Rule, Subject,
};
use crate::kubernetes::Quantity;

/// Error loading a policy. `Display` is a single line naming the offending key or entry.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {message}")]
    Read { path: String, message: String },
    #[error("policy: line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("policy: {entry}: {message}")]
    Invalid { entry: String, message: String },
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn invalid(entry: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        entry: one_line(&entry.into()),
        message: one_line(&message.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    users: Vec<UserEntry>,
    #[serde(default)]
    service_accounts: Vec<ServiceAccountEntry>,
    #[serde(default)]
    bindings: Vec<BindingEntry>,
    #[serde(default)]
    roles: Vec<RoleEntry>,
    #[serde(default)]
    limit_ranges: Vec<LimitRangeEntry>,
    #[serde(default)]
    resource_quotas: Vec<ResourceQuotaEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    token_sha256: String,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceAccountEntry {
    namespace: String,
    name: String,
    token_sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BindingEntry {
    #[serde(default)]
    namespace: Option<String>,
    role: String,
    subjects: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleEntry {
    name: String,
    rules: Vec<RuleEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleEntry {
    verbs: Vec<String>,
    groups: Vec<String>,
    resources: Vec<String>,
    #[serde(default)]
    names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitRangeEntry {
    namespace: String,
    name: String,
    limits: Vec<LimitItemEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitItemEntry {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    max: BTreeMap<String, QuantityEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceQuotaEntry {
    namespace: String,
    name: String,
    hard: BTreeMap<String, QuantityEntry>,
}

/// A quantity as written in TOML: a string (`"1Gi"`) or an integer.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum QuantityEntry {
    Text(String),
    Int(i64),
}

impl QuantityEntry {
    fn parse(&self) -> Option<Quantity> {
        match self {
            QuantityEntry::Text(s) => Quantity::parse(s),
            QuantityEntry::Int(i) => Quantity::parse(&i.to_string()),
        }
    }

    fn describe(&self) -> String {
        match self {
            QuantityEntry::Text(s) => format!("{s:?}"),
            QuantityEntry::Int(i) => i.to_string(),
        }
    }
}

/// A validated policy: identities, the authorizer (built-in roles, custom roles,
/// implicit and configured bindings), and the LimitRanges and ResourceQuotas.
#[derive(Clone, Debug)]
pub struct Policy {
    pub tokens: TokenStore,
    pub authorizer: Authorizer,
    pub limit_ranges: Vec<LimitRange>,
    pub resource_quotas: Vec<ResourceQuota>,
}

impl Policy {
    /// Read and parse a policy file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError::Read {
            path: path.display().to_string(),
            message: one_line(&e.to_string()),
        })?;
        Policy::from_str(&text)
    }

    /// Parse policy text.
    #[allow(clippy::should_implement_trait)]
    pub fn from_str(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .and_then(|s| text.get(..s.start))
                .map(|before| before.matches('\n').count() + 1)
                .unwrap_or(0);
            PolicyError::Syntax {
                line,
                message: one_line(e.message()),
            }
        })?;
        compile(file)
    }
}

fn compile(file: PolicyFile) -> Result<Policy, PolicyError> {
    let mut authorizer = Authorizer::with_builtins();
    let builtin: HashSet<String> = builtin_role_names().into_iter().collect();

    // Custom roles.
    for (i, r) in file.roles.iter().enumerate() {
        let entry = format!("roles[{i}]");
        if !valid_name(&r.name) {
            return Err(invalid(entry, format!("invalid role name {:?}", r.name)));
        }
        let entry = format!("roles[{i}] ({:?})", r.name);
        if builtin.contains(&r.name) {
            return Err(invalid(entry, "redefines a built-in role"));
        }
        if authorizer.roles.contains_key(&r.name) {
            return Err(invalid(entry, "duplicate role name"));
        }
        if r.rules.is_empty() {
            return Err(invalid(entry, "has no rules"));
        }
        let mut rules = Vec::with_capacity(r.rules.len());
        for (j, rule) in r.rules.iter().enumerate() {
            let rentry = format!("{entry}.rules[{j}]");
            for (key, list, allow_empty_string) in [
                ("verbs", &rule.verbs, false),
                ("groups", &rule.groups, true),
                ("resources", &rule.resources, false),
            ] {
                if list.is_empty() {
                    return Err(invalid(rentry, format!("{key} must not be empty")));
                }
                if let Some(bad) = list
                    .iter()
                    .find(|s| !(valid_name(s) || allow_empty_string && s.is_empty()))
                {
                    return Err(invalid(rentry, format!("invalid entry {bad:?} in {key}")));
                }
            }
            if let Some(bad) = rule.names.iter().find(|s| !valid_name(s)) {
                return Err(invalid(rentry, format!("invalid entry {bad:?} in names")));
            }
            rules.push(Rule {
                verbs: rule.verbs.clone(),
                groups: rule.groups.clone(),
                resources: rule.resources.clone(),
                names: rule.names.clone(),
                non_resource_urls: Vec::new(),
            });
        }
        authorizer.roles.insert(
            r.name.clone(),
            Role {
                name: r.name.clone(),
                rules,
            },
        );
    }

    // Identities.
    let mut tokens = TokenStore::default();
    let mut token_owner: HashMap<TokenHash, String> = HashMap::new();
    let mut user_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut check_token = |entry: &str, hex_str: &str| -> Result<TokenHash, PolicyError> {
        let hash = parse_token_hash(hex_str).ok_or_else(|| {
            invalid(
                entry,
                "token_sha256 must be 64 hexadecimal digits (the SHA-256 of the token)",
            )
        })?;
        if let Some(prev) = token_owner.get(&hash) {
            return Err(invalid(
                entry,
                format!("token_sha256 is the same token as {prev}"),
            ));
        }
        token_owner.insert(hash, entry.to_string());
        Ok(hash)
    };
    for (i, u) in file.users.iter().enumerate() {
        if !valid_name(&u.name) {
            return Err(invalid(
                format!("users[{i}]"),
                format!("invalid name {:?}", u.name),
            ));
        }
        let entry = format!("users[{i}] ({:?})", u.name);
        if u.name.starts_with("system:") {
            return Err(invalid(
                entry,
                "user names starting with \"system:\" are reserved",
            ));
        }
        if let Some(prev) = user_names.insert(u.name.clone(), i) {
            return Err(invalid(
                entry,
                format!("duplicate user name (also users[{prev}])"),
            ));
        }
        if let Some(bad) = u.groups.iter().find(|g| !valid_name(g)) {
            return Err(invalid(entry, format!("invalid group {bad:?}")));
        }
        let hash = check_token(&entry, &u.token_sha256)?;
        tokens.insert(hash, UserInfo::user(&u.name, &u.groups));
    }
    let mut sa_names: HashSet<String> = HashSet::new();
    for (i, sa) in file.service_accounts.iter().enumerate() {
        if !valid_segment(&sa.namespace) {
            return Err(invalid(
                format!("service_accounts[{i}]"),
                format!("invalid namespace {:?}", sa.namespace),
            ));
        }
        if !valid_segment(&sa.name) {
            return Err(invalid(
                format!("service_accounts[{i}]"),
                format!("invalid name {:?}", sa.name),
            ));
        }
        let entry = format!("service_accounts[{i}] ({}/{})", sa.namespace, sa.name);
        if !sa_names.insert(service_account_username(&sa.namespace, &sa.name)) {
            return Err(invalid(entry, "duplicate service account"));
        }
        let hash = check_token(&entry, &sa.token_sha256)?;
        tokens.insert(hash, UserInfo::service_account(&sa.namespace, &sa.name));
    }

    // Bindings.
    for (i, b) in file.bindings.iter().enumerate() {
        let entry = format!("bindings[{i}]");
        if let Some(ns) = &b.namespace {
            if !valid_segment(ns) {
                return Err(invalid(entry, format!("invalid namespace {ns:?}")));
            }
        }
        if !authorizer.roles.contains_key(&b.role) {
            return Err(invalid(entry, format!("unknown role {:?}", b.role)));
        }
        if b.subjects.is_empty() {
            return Err(invalid(entry, "subjects must not be empty"));
        }
        let mut subjects = Vec::with_capacity(b.subjects.len());
        for s in &b.subjects {
            let parsed = Subject::parse(s).ok_or_else(|| {
                invalid(
                    &entry,
                    format!(
                        "malformed subject {s:?} (expected user:<name>, group:<name> or \
                         serviceaccount:<namespace>:<name>)"
                    ),
                )
            })?;
            subjects.push(parsed);
        }
        authorizer.bindings.push(Binding {
            name: entry,
            namespace: b.namespace.clone(),
            role: b.role.clone(),
            subjects,
        });
    }

    let limit_ranges = compile_limit_ranges(&file.limit_ranges)?;
    let resource_quotas = compile_resource_quotas(&file.resource_quotas)?;

    Ok(Policy {
        tokens,
        authorizer,
        limit_ranges,
        resource_quotas,
    })
}

/// Validate `namespace` and `name` of a namespaced object entry, and that the pair is new.
fn check_object_name(
    entry: &str,
    namespace: &str,
    name: &str,
    seen: &mut HashSet<(String, String)>,
) -> Result<(), PolicyError> {
    if !valid_segment(namespace) {
        return Err(invalid(entry, format!("invalid namespace {namespace:?}")));
    }
    if !valid_segment(name) {
        return Err(invalid(entry, format!("invalid name {name:?}")));
    }
    if !seen.insert((namespace.to_string(), name.to_string())) {
        return Err(invalid(entry, format!("duplicate name {namespace}/{name}")));
    }
    Ok(())
}

fn compile_quantities(
    entry: &str,
    key: &str,
    map: &BTreeMap<String, QuantityEntry>,
) -> Result<BTreeMap<String, Quantity>, PolicyError> {
    let mut out = BTreeMap::new();
    for (resource, q) in map {
        if !valid_name(resource) {
            return Err(invalid(
                entry,
                format!("invalid resource name {resource:?} in {key}"),
            ));
        }
        let parsed = q.parse().ok_or_else(|| {
            invalid(
                entry,
                format!(
                    "{key}.{resource:?}: invalid quantity {} (expected e.g. \"10\", \"500M\", \"1Gi\")",
                    q.describe()
                ),
            )
        })?;
        out.insert(resource.clone(), parsed);
    }
    Ok(out)
}

/// Compile the entries of the section `section` of namespaced objects: each
/// (`key`: namespace and name) named validly and once per namespace, then
/// compiled by `compile` with its label `<section>[<i>] (<namespace>/<name>)`.
fn compile_namespaced<E, T>(
    section: &str,
    entries: &[E],
    key: impl Fn(&E) -> (&str, &str),
    compile: impl Fn(String, &E) -> Result<T, PolicyError>,
) -> Result<Vec<T>, PolicyError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let (namespace, name) = key(e);
        check_object_name(&format!("{section}[{i}]"), namespace, name, &mut seen)?;
        out.push(compile(format!("{section}[{i}] ({namespace}/{name})"), e)?);
    }
    Ok(out)
}

fn compile_limit_ranges(entries: &[LimitRangeEntry]) -> Result<Vec<LimitRange>, PolicyError> {
    compile_namespaced(
        "limit_ranges",
        entries,
        |lr| (&lr.namespace, &lr.name),
        compile_limit_range,
    )
}

fn compile_limit_range(entry: String, lr: &LimitRangeEntry) -> Result<LimitRange, PolicyError> {
    if lr.limits.is_empty() {
        return Err(invalid(entry, "limits must not be empty"));
    }
    let mut limits = Vec::with_capacity(lr.limits.len());
    for (j, item) in lr.limits.iter().enumerate() {
        let ientry = format!("{entry}.limits[{j}]");
        if !valid_name(&item.kind) {
            return Err(invalid(ientry, format!("invalid type {:?}", item.kind)));
        }
        let max = compile_quantities(&ientry, "max", &item.max)?;
        if let Some(known) = known_limit_resources(&item.kind) {
            if let Some(bad) = max.keys().find(|r| !known.contains(&r.as_str())) {
                return Err(invalid(
                    ientry,
                    format!(
                        "unknown resource {bad:?} for type {:?} (expected one of {})",
                        item.kind,
                        known
                            .iter()
                            .map(|k| format!("{k:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        limits.push(LimitItem {
            kind: item.kind.clone(),
            max,
        });
    }
    Ok(LimitRange {
        namespace: lr.namespace.clone(),
        name: lr.name.clone(),
        limits,
    })
}

fn compile_resource_quotas(
    entries: &[ResourceQuotaEntry],
) -> Result<Vec<ResourceQuota>, PolicyError> {
    compile_namespaced(
        "resource_quotas",
        entries,
        |rq| (&rq.namespace, &rq.name),
        |entry, rq| {
            if rq.hard.is_empty() {
                return Err(invalid(entry, "hard must not be empty"));
            }
            let hard = compile_quantities(&entry, "hard", &rq.hard)?;
            Ok(ResourceQuota {
                namespace: rq.namespace.clone(),
                name: rq.name.clone(),
                hard,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::identity::{hash_token, Authn, Credential};
    use crate::cluster::rbac::{ResourceAttributes, IMAGE_GROUP};

    fn h(token: &str) -> String {
        hex::encode(hash_token(token))
    }

    fn err(text: &str) -> String {
        let e = Policy::from_str(text).expect_err("policy should be rejected");
        let s = e.to_string();
        assert!(!s.contains('\n'), "multi-line error: {s}");
        s
    }

    #[test]
    fn full_example_parses() {
        let text = format!(
            r#"
[[users]]
name = "alice"
token_sha256 = "{}"
groups = ["developers"]

[[service_accounts]]
namespace = "ci"
name = "builder"
token_sha256 = "{}"

[[bindings]]
namespace = "team-a"
role = "system:image-builder"
subjects = ["user:alice", "group:developers", "serviceaccount:ci:builder", "group:system:unauthenticated", "group:system:authenticated"]

[[bindings]]
role = "my-role"
subjects = ["group:developers"]

[[roles]]
name = "my-role"
rules = [ {{ verbs = ["get"], groups = ["image.openshift.io"], resources = ["imagestreams/layers"] }} ]
"#,
            h("alice-token"),
            h("sa-token")
        );
        let p = Policy::from_str(&text).unwrap();
        let Authn::Authenticated(alice) = p.tokens.authenticate(Credential::Bearer("alice-token"))
        else {
            panic!("alice not authenticated")
        };
        assert_eq!(alice.username, "alice");
        assert!(alice.groups.contains(&"developers".to_string()));
        let Authn::Authenticated(sa) = p.tokens.authenticate(Credential::Bearer("sa-token")) else {
            panic!("sa not authenticated")
        };
        assert_eq!(sa.username, "system:serviceaccount:ci:builder");
        assert_eq!(
            p.tokens.authenticate(Credential::Bearer("x")),
            Authn::Rejected
        );

        let a = &p.authorizer;
        let layers = |verb: &str, ns: &str| {
            ResourceAttributes::new(verb, IMAGE_GROUP, "imagestreams/layers", ns, "is")
        };
        assert!(a.allows(&alice, layers("update", "team-a")));
        assert!(!a.allows(&alice, layers("update", "team-b")));
        // my-role is bound cluster-wide to developers.
        assert!(a.allows(&alice, layers("get", "team-b")));
        assert!(a.allows(&sa, layers("update", "team-a")));
        assert!(!a.allows(&sa, layers("get", "team-b")));
        assert!(a.allows(&UserInfo::anonymous(), layers("get", "team-a")));
    }

    #[test]
    fn empty_policy_is_valid() {
        let p = Policy::from_str("").unwrap();
        assert_eq!(
            p.tokens.authenticate(Credential::None),
            Authn::Anonymous(UserInfo::anonymous())
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = err(&format!(
            "[[users]]\nname = \"a\"\ntoken_sha256 = \"{}\"\ngrups = []\n",
            h("t")
        ));
        assert!(e.contains("grups"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        let e = err("[[userz]]\nname = \"a\"\n");
        assert!(e.contains("userz"), "{e}");
        let e = err(
            "[[roles]]\nname = \"r\"\nrules = [ { verbs = [\"get\"], groups = [\"\"], resources = [\"x\"], extra = 1 } ]\n",
        );
        assert!(e.contains("extra"), "{e}");
    }

    #[test]
    fn unknown_role_is_rejected() {
        let e = err("[[bindings]]\nrole = \"nope\"\nsubjects = [\"user:a\"]\n");
        assert_eq!(e, "policy: bindings[0]: unknown role \"nope\"");
    }

    #[test]
    fn malformed_subject_is_rejected() {
        let e = err("[[bindings]]\nrole = \"view\"\nsubjects = [\"user:a\", \"alice\"]\n");
        assert!(
            e.starts_with("policy: bindings[0]: malformed subject \"alice\""),
            "{e}"
        );
        let e = err("[[bindings]]\nrole = \"view\"\nsubjects = [\"serviceaccount:ns\"]\n");
        assert!(e.contains("malformed subject"), "{e}");
        let e = err("[[bindings]]\nrole = \"view\"\nsubjects = []\n");
        assert!(e.contains("subjects must not be empty"), "{e}");
    }

    #[test]
    fn bad_hex_is_rejected() {
        let e = err("[[users]]\nname = \"a\"\ntoken_sha256 = \"abc\"\n");
        assert_eq!(
            e,
            "policy: users[0] (\"a\"): token_sha256 must be 64 hexadecimal digits (the SHA-256 of the token)"
        );
        let bad = format!("{}zz", &h("t")[..62]);
        let e = err(&format!(
            "[[service_accounts]]\nnamespace = \"n\"\nname = \"s\"\ntoken_sha256 = \"{bad}\"\n"
        ));
        assert!(
            e.starts_with("policy: service_accounts[0] (n/s): token_sha256"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_tokens_are_rejected() {
        let e = err(&format!(
            "[[users]]\nname = \"a\"\ntoken_sha256 = \"{t}\"\n\
             [[service_accounts]]\nnamespace = \"n\"\nname = \"s\"\ntoken_sha256 = \"{t}\"\n",
            t = h("same")
        ));
        assert_eq!(
            e,
            "policy: service_accounts[0] (n/s): token_sha256 is the same token as users[0] (\"a\")"
        );
        // Case differences do not make a different token.
        let e = err(&format!(
            "[[users]]\nname = \"a\"\ntoken_sha256 = \"{}\"\n\
             [[users]]\nname = \"b\"\ntoken_sha256 = \"{}\"\n",
            h("same"),
            h("same").to_uppercase()
        ));
        assert!(e.contains("same token as users[0]"), "{e}");
    }

    #[test]
    fn other_validation() {
        let e = err(&format!(
            "[[users]]\nname = \"a\"\ntoken_sha256 = \"{}\"\n[[users]]\nname = \"a\"\ntoken_sha256 = \"{}\"\n",
            h("1"),
            h("2")
        ));
        assert!(e.contains("duplicate user name"), "{e}");
        let e = err(&format!(
            "[[users]]\nname = \"system:x\"\ntoken_sha256 = \"{}\"\n",
            h("1")
        ));
        assert!(e.contains("reserved"), "{e}");
        let e = err("[[roles]]\nname = \"view\"\nrules = [ { verbs = [\"get\"], groups = [\"\"], resources = [\"x\"] } ]\n");
        assert_eq!(e, "policy: roles[0] (\"view\"): redefines a built-in role");
        let e = err("[[roles]]\nname = \"r\"\nrules = [ { verbs = [], groups = [\"\"], resources = [\"x\"] } ]\n");
        assert_eq!(
            e,
            "policy: roles[0] (\"r\").rules[0]: verbs must not be empty"
        );
        let e =
            err("[[bindings]]\nnamespace = \"a/b\"\nrole = \"view\"\nsubjects = [\"user:a\"]\n");
        assert!(e.contains("invalid namespace"), "{e}");
        let e = err("users = 5\n");
        assert!(e.starts_with("policy: line 1:"), "{e}");
    }

    #[test]
    fn limit_ranges_and_quotas() {
        let p = Policy::from_str(
            r#"
[[limit_ranges]]
namespace = "demo"
name = "image-limits"
limits = [
  { type = "openshift.io/Image", max = { storage = "1Gi" } },
  { type = "openshift.io/ImageStream", max = { "openshift.io/images" = "10", "openshift.io/image-tags" = 5 } },
  { type = "Container", max = { cpu = "500m" } },
]
[[resource_quotas]]
namespace = "demo"
name = "image-quota"
hard = { "openshift.io/imagestreams" = "3", "openshift.io/image-storage" = "10Gi" }
"#,
        )
        .unwrap();
        assert_eq!(p.limit_ranges.len(), 1);
        let lr = &p.limit_ranges[0];
        assert_eq!(
            (lr.namespace.as_str(), lr.name.as_str()),
            ("demo", "image-limits")
        );
        assert_eq!(lr.limits[0].kind, "openshift.io/Image");
        assert_eq!(lr.limits[0].max["storage"].value, 1 << 30);
        assert_eq!(lr.limits[1].max["openshift.io/image-tags"].value, 5);
        assert_eq!(lr.limits[2].max["cpu"].value, 1);
        let q = &p.resource_quotas[0];
        assert_eq!(q.hard["openshift.io/imagestreams"].value, 3);
        assert_eq!(q.hard["openshift.io/image-storage"].canonical(), "10Gi");
    }

    #[test]
    fn bad_limit_ranges_and_quotas_are_rejected() {
        let e = err("[[limit_ranges]]\nnamespace = \"d\"\nname = \"l\"\nlimits = [ { type = \"openshift.io/Image\", max = { storage = \"1 Gi\" } } ]\n");
        assert_eq!(
            e,
            "policy: limit_ranges[0] (d/l).limits[0]: max.\"storage\": invalid quantity \"1 Gi\" (expected e.g. \"10\", \"500M\", \"1Gi\")"
        );
        let e = err("[[limit_ranges]]\nnamespace = \"d\"\nname = \"l\"\nlimits = [ { type = \"openshift.io/Image\", max = { storag = \"1Gi\" } } ]\n");
        assert!(
            e.contains("unknown resource \"storag\" for type \"openshift.io/Image\""),
            "{e}"
        );
        let e = err("[[limit_ranges]]\nnamespace = \"d\"\nname = \"l\"\nlimits = [ { type = \"openshift.io/Image\", min = { storage = \"1Gi\" } } ]\n");
        assert!(e.contains("min"), "{e}");
        let e = err("[[limit_ranges]]\nnamespace = \"d\"\nname = \"l\"\nlimits = []\n");
        assert_eq!(e, "policy: limit_ranges[0] (d/l): limits must not be empty");
        let e = err("[[limit_ranges]]\nnamespace = \"a/b\"\nname = \"l\"\nlimits = []\n");
        assert!(e.contains("invalid namespace"), "{e}");
        let e = err("[[resource_quotas]]\nnamespace = \"d\"\nname = \"q\"\nhard = { \"openshift.io/imagestreams\" = -1 }\n");
        assert!(e.contains("invalid quantity -1"), "{e}");
        let e = err("[[resource_quotas]]\nnamespace = \"d\"\nname = \"q\"\nhard = {}\n");
        assert_eq!(
            e,
            "policy: resource_quotas[0] (d/q): hard must not be empty"
        );
        let e = err("[[resource_quotas]]\nnamespace = \"d\"\nname = \"q\"\nhard = { a = \"1\" }\n[[resource_quotas]]\nnamespace = \"d\"\nname = \"q\"\nhard = { a = \"1\" }\n");
        assert_eq!(e, "policy: resource_quotas[1]: duplicate name d/q");
        let e = err("[[resource_quotas]]\nnamespace = \"d\"\nname = \"q\"\nhrd = { a = \"1\" }\n");
        assert!(e.contains("hrd"), "{e}");
    }

    #[test]
    fn read_error_is_one_line() {
        let e = Policy::from_file(Path::new("/nonexistent/policy.toml")).unwrap_err();
        let s = e.to_string();
        assert!(
            s.starts_with("cannot read policy file /nonexistent/policy.toml:"),
            "{s}"
        );
        assert!(!s.contains('\n'));
    }
}
