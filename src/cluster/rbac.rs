//! Role-based access control: policy rules, the built-in cluster roles and the
//! evaluation of a request (verb × API group × resource × namespace) against a
//! set of bindings.
//!
//! Pure logic, no I/O.

use std::collections::BTreeMap;

use super::identity::UserInfo;

/// API group of the image resources.
pub const IMAGE_GROUP: &str = "image.openshift.io";
/// API group of the Kubernetes access reviews.
pub const K8S_AUTHZ_GROUP: &str = "authorization.k8s.io";
/// API group of the OpenShift access reviews.
pub const OPENSHIFT_AUTHZ_GROUP: &str = "authorization.openshift.io";
/// API group of SelfSubjectReviews.
pub const AUTHN_GROUP: &str = "authentication.k8s.io";
/// API group of OpenShift users.
pub const USER_GROUP: &str = "user.openshift.io";

/// Name of the implicit role every authenticated identity holds.
pub const BASIC_USER_ROLE: &str = "system:basic-user";
/// Group every authenticated identity belongs to.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// Group of the anonymous identity.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";

const IMAGE_RESOURCES: &[&str] = &[
    "images",
    "imagesignatures",
    "imagestreams",
    "imagestreamimages",
    "imagestreamimports",
    "imagestreammappings",
    "imagestreamtags",
    "imagetags",
];

const AUTHZ_RESOURCES: &[&str] = &[
    "subjectaccessreviews",
    "localsubjectaccessreviews",
    "selfsubjectaccessreviews",
    "selfsubjectrulesreviews",
    "subjectrulesreviews",
    "resourceaccessreviews",
    "localresourceaccessreviews",
];

const USER_RESOURCES: &[&str] = &["users", "groups", "identities", "useridentitymappings"];

/// Groups that the legacy (`/oapi/v1`, group `""`) form of `resource` is equivalent to.
fn modern_groups_of(resource_base: &str) -> &'static [&'static str] {
    if IMAGE_RESOURCES.contains(&resource_base) {
        &[IMAGE_GROUP]
    } else if AUTHZ_RESOURCES.contains(&resource_base) {
        &[K8S_AUTHZ_GROUP, OPENSHIFT_AUTHZ_GROUP]
    } else if USER_RESOURCES.contains(&resource_base) {
        &[USER_GROUP]
    } else {
        &[]
    }
}

/// One RBAC policy rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub verbs: Vec<String>,
    /// API groups; `""` is the core/legacy group, `"*"` all groups.
    pub groups: Vec<String>,
    /// Resources, optionally with a subresource (`imagestreams/layers`); `"*"` all,
    /// `"imagestreams/*"` all subresources of imagestreams, `"*/layers"` that subresource of anything.
    pub resources: Vec<String>,
    /// Resource names; empty means all.
    pub names: Vec<String>,
    /// Non-resource URLs (`"*"` or exact paths, `"/prefix/*"`).
    pub non_resource_urls: Vec<String>,
}

impl Rule {
    fn new(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Rule {
        Rule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            names: Vec::new(),
            non_resource_urls: Vec::new(),
        }
    }

    fn with_names(mut self, names: &[&str]) -> Rule {
        self.names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }

    fn group_matches(&self, group: &str, resource_base: &str) -> bool {
        self.groups.iter().any(|g| {
            if g == "*" || g == group {
                return true;
            }
            // Legacy group "" and the modern group of the same resource are equivalent
            // (old clusters served image/authorization/user resources in the legacy group).
            let modern = modern_groups_of(resource_base);
            (group.is_empty() && modern.contains(&g.as_str()))
                || (g.is_empty() && modern.contains(&group))
        })
    }

    fn resource_matches(&self, base: &str, full: &str, sub: &str) -> bool {
        self.resources.iter().any(|r| {
            if r == "*" || r == full {
                return true;
            }
            if sub.is_empty() {
                return false;
            }
            match r.split_once('/') {
                Some((rb, "*")) => rb == base,
                Some(("*", rs)) => rs == sub,
                _ => false,
            }
        })
    }

    fn name_matches(&self, name: &str) -> bool {
        self.names.is_empty() || self.names.iter().any(|n| n == name)
    }

    fn non_resource_matches(&self, verb: &str, path: &str) -> bool {
        self.verb_matches(verb)
            && self.non_resource_urls.iter().any(|u| {
                u == "*"
                    || u == path
                    || u.strip_suffix('*')
                        .is_some_and(|prefix| path.starts_with(prefix))
            })
    }

    /// Whether this rule allows the request.
    pub fn allows(&self, req: &Request) -> bool {
        match req {
            Request::Resource(a) => {
                let (base, sub) = a.split_resource();
                let full = a.full_resource();
                self.verb_matches(&a.verb)
                    && self.group_matches(&a.group, base)
                    && self.resource_matches(base, &full, sub)
                    && self.name_matches(&a.name)
            }
            Request::NonResource { verb, path } => self.non_resource_matches(verb, path),
        }
    }
}

/// A (cluster) role: a named list of rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub rules: Vec<Rule>,
}

/// Attributes of a resource request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    pub verb: String,
    pub group: String,
    /// Resource, possibly `resource/subresource`.
    pub resource: String,
    /// Subresource if given separately.
    pub subresource: String,
    pub name: String,
    /// Empty: cluster scope (or "all namespaces").
    pub namespace: String,
}

impl ResourceAttributes {
    pub fn new(verb: &str, group: &str, resource: &str, namespace: &str, name: &str) -> Self {
        ResourceAttributes {
            verb: verb.to_string(),
            group: group.to_string(),
            resource: resource.to_string(),
            subresource: String::new(),
            name: name.to_string(),
            namespace: namespace.to_string(),
        }
    }

    /// `(resource, subresource)` with the subresource taken from `resource` if it contains a `/`.
    pub fn split_resource(&self) -> (&str, &str) {
        match self.resource.split_once('/') {
            Some((base, _)) if !self.subresource.is_empty() => {
                // "a/b" + "c": the base is still "a"; the subresource part is only used for
                // wildcard matching, where the full string is compared anyway.
                (base, &self.subresource)
            }
            Some((base, sub)) => (base, sub),
            None => (&self.resource, &self.subresource),
        }
    }

    /// `resource/subresource` (or just `resource`).
    pub fn full_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// A request to authorize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Resource(ResourceAttributes),
    NonResource { verb: String, path: String },
}

impl Request {
    fn namespace(&self) -> &str {
        match self {
            Request::Resource(a) => &a.namespace,
            Request::NonResource { .. } => "",
        }
    }
}

/// Who a binding is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Subject {
    User(String),
    Group(String),
    ServiceAccount { namespace: String, name: String },
}

impl Subject {
    /// Parse `user:<name>`, `group:<name>` or `serviceaccount:<namespace>:<name>`.
    pub fn parse(s: &str) -> Option<Subject> {
        let (kind, rest) = s.split_once(':')?;
        match kind {
            "user" if valid_name(rest) => Some(Subject::User(rest.to_string())),
            "group" if valid_name(rest) => Some(Subject::Group(rest.to_string())),
            "serviceaccount" => {
                let (ns, name) = rest.split_once(':')?;
                if valid_segment(ns) && valid_segment(name) {
                    Some(Subject::ServiceAccount {
                        namespace: ns.to_string(),
                        name: name.to_string(),
                    })
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn matches(&self, user: &UserInfo) -> bool {
        match self {
            Subject::User(n) => *n == user.username,
            Subject::Group(g) => user.groups.iter().any(|ug| ug == g),
            Subject::ServiceAccount { namespace, name } => {
                user.username == super::identity::service_account_username(namespace, name)
            }
        }
    }

    /// Kind and name as in an RBAC subject (for reasons).
    fn describe(&self) -> (&'static str, String) {
        match self {
            Subject::User(n) => ("User", n.clone()),
            Subject::Group(g) => ("Group", g.clone()),
            Subject::ServiceAccount { namespace, name } => {
                ("ServiceAccount", format!("{namespace}/{name}"))
            }
        }
    }
}

/// Whether `s` is acceptable as a user or group name.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Whether `s` is acceptable as a namespace or service-account name (no `:`/`/`).
pub fn valid_segment(s: &str) -> bool {
    valid_name(s) && !s.contains(':') && !s.contains('/')
}

/// A role binding (namespaced) or cluster role binding (`namespace == None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// Name used in decision reasons.
    pub name: String,
    pub namespace: Option<String>,
    pub role: String,
    pub subjects: Vec<Subject>,
}

/// Result of an authorization check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// k8s RBAC style reason.
    pub reason: String,
    /// Namespace of the binding that allowed the request (`None` for a cluster binding
    /// or when denied); used for legacy OpenShift reasons.
    pub allowed_in_namespace: Option<String>,
}

/// Built-in and custom roles plus the bindings to evaluate.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    pub roles: BTreeMap<String, Role>,
    pub bindings: Vec<Binding>,
}

impl Authorizer {
    /// An authorizer with the built-in roles and the implicit binding of
    /// `system:basic-user` to `system:authenticated`.
    pub fn with_builtins() -> Authorizer {
        let roles = builtin_roles()
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        Authorizer {
            roles,
            bindings: vec![Binding {
                name: "system:basic-users".to_string(),
                namespace: None,
                role: BASIC_USER_ROLE.to_string(),
                subjects: vec![Subject::Group(AUTHENTICATED_GROUP.to_string())],
            }],
        }
    }

    /// Evaluate `req` for `user` (whose groups are taken as given).
    pub fn authorize(&self, user: &UserInfo, req: &Request) -> Decision {
        let ns = req.namespace();
        for b in &self.bindings {
            let applies = match &b.namespace {
                None => true,
                Some(bns) => !ns.is_empty() && bns == ns,
            };
            if !applies {
                continue;
            }
            let Some(subject) = b.subjects.iter().find(|s| s.matches(user)) else {
                continue;
            };
            let Some(role) = self.roles.get(&b.role) else {
                continue;
            };
            if role.rules.iter().any(|r| r.allows(req)) {
                let (kind, sname) = subject.describe();
                let reason = match &b.namespace {
                    None => format!(
                        "RBAC: allowed by ClusterRoleBinding {:?} of ClusterRole {:?} to {} {:?}",
                        b.name, b.role, kind, sname
                    ),
                    Some(bns) => format!(
                        "RBAC: allowed by RoleBinding \"{}/{}\" of ClusterRole {:?} to {} {:?}",
                        b.name, bns, b.role, kind, sname
                    ),
                };
                return Decision {
                    allowed: true,
                    reason,
                    allowed_in_namespace: b.namespace.clone(),
                };
            }
        }
        let what = match req {
            Request::Resource(a) => {
                let scope = if a.namespace.is_empty() {
                    "at the cluster scope".to_string()
                } else {
                    format!("in the namespace {:?}", a.namespace)
                };
                format!(
                    "cannot {} resource {:?} in API group {:?} {}",
                    a.verb,
                    a.full_resource(),
                    a.group,
                    scope
                )
            }
            Request::NonResource { verb, path } => format!("cannot {verb} path {path:?}"),
        };
        Decision {
            allowed: false,
            reason: format!(
                "RBAC: no binding allows User {:?} (groups {:?}); it {}",
                user.username, user.groups, what
            ),
            allowed_in_namespace: None,
        }
    }

    /// Shorthand for a resource check.
    pub fn allows(&self, user: &UserInfo, attrs: ResourceAttributes) -> bool {
        self.authorize(user, &Request::Resource(attrs)).allowed
    }
}

/// What `registry-viewer` reads and `registry-editor` reads too.
const REGISTRY_READABLE: &[&str] = &[
    "imagestreams",
    "imagestreamimages",
    "imagestreamtags",
    "imagestreammappings",
    "images",
    "imagetags",
    "imagestreams/layers",
];
const READ: &[&str] = &["get", "list", "watch"];
const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const AUTHZ_GROUPS: &[&str] = &[K8S_AUTHZ_GROUP, OPENSHIFT_AUTHZ_GROUP, ""];

/// Names of the built-in roles.
pub fn builtin_role_names() -> Vec<String> {
    builtin_roles().into_iter().map(|r| r.name).collect()
}

/// The built-in cluster roles.
pub fn builtin_roles() -> Vec<Role> {
    let img = &[IMAGE_GROUP];
    let role = |name: &str, rules: Vec<Rule>| Role {
        name: name.to_string(),
        rules,
    };
    let cluster_admin = Rule::new(&["*"], &["*"], &["*"]);
    let mut cluster_admin_nr = Rule::new(&["*"], &[], &[]);
    cluster_admin_nr.non_resource_urls = vec!["*".to_string()];
    vec![
        role(
            "system:image-puller",
            vec![Rule::new(&["get"], img, &["imagestreams/layers"])],
        ),
        role(
            "system:image-pusher",
            vec![Rule::new(&["get", "update"], img, &["imagestreams/layers"])],
        ),
        role(
            "system:image-builder",
            vec![
                Rule::new(&["get", "update"], img, &["imagestreams/layers"]),
                Rule::new(&["create"], img, &["imagestreams"]),
            ],
        ),
        role(
            "registry-viewer",
            vec![Rule::new(READ, img, REGISTRY_READABLE)],
        ),
        role(
            "registry-editor",
            vec![
                Rule::new(READ, img, REGISTRY_READABLE),
                Rule::new(
                    &["create", "update", "patch", "delete"],
                    img,
                    &[
                        "imagestreams",
                        "imagestreamtags",
                        "imagestreammappings",
                        "images",
                        "imagetags",
                    ],
                ),
                Rule::new(&["get", "update"], img, &["imagestreams/layers"]),
            ],
        ),
        role(
            "view",
            vec![
                Rule::new(
                    READ,
                    img,
                    &[
                        "imagestreams",
                        "imagestreamtags",
                        "imagestreamimages",
                        "imagestreammappings",
                        "imagetags",
                    ],
                ),
                Rule::new(&["get"], img, &["imagestreams/layers"]),
            ],
        ),
        role("edit", edit_rules(false)),
        role("admin", edit_rules(true)),
        role(
            "system:registry",
            vec![
                Rule::new(&["list"], &[""], &["limitranges", "resourcequotas"]),
                Rule::new(&["get", "delete"], img, &["images", "imagestreamtags"]),
                // the gateway lists images by label (referrers) and edits stream history
                Rule::new(&["list"], img, &["images"]),
                Rule::new(&["update"], img, &["imagestreams/status"]),
                Rule::new(&["create"], img, &["images", "imagestreammappings"]),
                Rule::new(
                    &["get"],
                    img,
                    &[
                        "imagestreamimages",
                        "imagestreams/secrets",
                        "imagestreams/layers",
                    ],
                ),
                Rule::new(&["get", "list", "update"], img, &["imagestreams"]),
                Rule::new(&["create"], &[K8S_AUTHZ_GROUP], &["subjectaccessreviews"]),
            ],
        ),
        role(
            "system:image-pruner",
            vec![
                Rule::new(&["get", "list", "watch", "delete"], img, &["images"]),
                Rule::new(&["get", "list"], img, &["imagestreams"]),
                Rule::new(&["update"], img, &["imagestreams/status"]),
            ],
        ),
        role(
            "self-access-reviewer",
            vec![Rule::new(
                &["create"],
                AUTHZ_GROUPS,
                &[
                    "selfsubjectaccessreviews",
                    "localsubjectaccessreviews",
                    "selfsubjectrulesreviews",
                ],
            )],
        ),
        role(
            BASIC_USER_ROLE,
            vec![
                Rule::new(
                    &["create"],
                    AUTHZ_GROUPS,
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                Rule::new(&["create"], &[AUTHN_GROUP], &["selfsubjectreviews"]),
                Rule::new(&["get"], &[USER_GROUP], &["users"]).with_names(&["~"]),
            ],
        ),
        role("cluster-admin", vec![cluster_admin, cluster_admin_nr]),
    ]
}

fn edit_rules(admin: bool) -> Vec<Rule> {
    let img = &[IMAGE_GROUP];
    let mut rules = vec![
        Rule::new(
            ALL_VERBS,
            img,
            &[
                "imagestreams",
                "imagestreamtags",
                "imagestreamimages",
                "imagestreammappings",
                "imagestreams/secrets",
                "imagetags",
            ],
        ),
        Rule::new(&["create"], img, &["imagestreamimports"]),
        Rule::new(&["get", "update"], img, &["imagestreams/layers"]),
    ];
    if admin {
        rules.push(Rule::new(
            &["create"],
            AUTHZ_GROUPS,
            &["localsubjectaccessreviews"],
        ));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            username: name.to_string(),
            uid: String::new(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn binding(ns: Option<&str>, role: &str, subjects: &[&str]) -> Binding {
        Binding {
            name: "b".to_string(),
            namespace: ns.map(str::to_string),
            role: role.to_string(),
            subjects: subjects
                .iter()
                .map(|s| Subject::parse(s).unwrap())
                .collect(),
        }
    }

    fn authz(bindings: Vec<Binding>) -> Authorizer {
        let mut a = Authorizer::with_builtins();
        a.bindings.extend(bindings);
        a
    }

    fn layers(verb: &str, ns: &str) -> ResourceAttributes {
        ResourceAttributes::new(verb, IMAGE_GROUP, "imagestreams/layers", ns, "is")
    }

    #[test]
    fn namespaced_binding_only_applies_in_its_namespace() {
        let a = authz(vec![binding(
            Some("team-a"),
            "system:image-puller",
            &["user:alice"],
        )]);
        let alice = user("alice", &["system:authenticated"]);
        assert!(a.allows(&alice, layers("get", "team-a")));
        assert!(!a.allows(&alice, layers("get", "team-b")));
        assert!(!a.allows(&alice, layers("get", "")));
        assert!(!a.allows(&alice, layers("update", "team-a")));
        let d = a.authorize(&alice, &Request::Resource(layers("get", "team-a")));
        assert_eq!(
            d.reason,
            "RBAC: allowed by RoleBinding \"b/team-a\" of ClusterRole \"system:image-puller\" to User \"alice\""
        );
        assert_eq!(d.allowed_in_namespace.as_deref(), Some("team-a"));
    }

    #[test]
    fn cluster_binding_applies_everywhere() {
        let a = authz(vec![binding(
            None,
            "system:image-pruner",
            &["group:pruners"],
        )]);
        let bob = user("bob", &["pruners"]);
        assert!(a.allows(
            &bob,
            ResourceAttributes::new("delete", IMAGE_GROUP, "images", "", "")
        ));
        assert!(a.allows(
            &bob,
            ResourceAttributes::new("list", IMAGE_GROUP, "imagestreams", "any", "")
        ));
        let d = a.authorize(
            &bob,
            &Request::Resource(ResourceAttributes::new(
                "delete",
                IMAGE_GROUP,
                "images",
                "",
                "",
            )),
        );
        assert!(d.reason.contains("ClusterRoleBinding"), "{}", d.reason);
        assert!(d.reason.ends_with("to Group \"pruners\""), "{}", d.reason);
        let carol = user("carol", &["other"]);
        assert!(!a.allows(
            &carol,
            ResourceAttributes::new("delete", IMAGE_GROUP, "images", "", "")
        ));
    }

    #[test]
    fn subresource_given_separately_or_inline() {
        let a = authz(vec![binding(None, "system:image-pusher", &["user:u"])]);
        let u = user("u", &[]);
        let mut attrs = ResourceAttributes::new("update", IMAGE_GROUP, "imagestreams", "ns", "x");
        assert!(!a.allows(&u, attrs.clone()));
        attrs.subresource = "layers".to_string();
        assert!(a.allows(&u, attrs));
        assert!(a.allows(&u, layers("update", "ns")));
    }

    #[test]
    fn legacy_group_is_equivalent_for_image_resources() {
        let a = authz(vec![binding(
            Some("ns"),
            "system:image-puller",
            &["serviceaccount:ci:builder"],
        )]);
        let sa = user("system:serviceaccount:ci:builder", &[]);
        assert!(a.allows(
            &sa,
            ResourceAttributes::new("get", "", "imagestreams/layers", "ns", "is")
        ));
        // Not for unrelated groups.
        assert!(!a.allows(
            &sa,
            ResourceAttributes::new("get", "apps", "imagestreams/layers", "ns", "is")
        ));
        // A custom legacy-group rule matches modern requests too.
        let rule = Rule::new(&["get"], &[""], &["imagestreams"]);
        assert!(rule.allows(&Request::Resource(ResourceAttributes::new(
            "get",
            IMAGE_GROUP,
            "imagestreams",
            "ns",
            ""
        ))));
        // But core resources are not confused with image ones.
        let rule = Rule::new(&["list"], &[""], &["limitranges"]);
        assert!(!rule.allows(&Request::Resource(ResourceAttributes::new(
            "list",
            IMAGE_GROUP,
            "limitranges",
            "ns",
            ""
        ))));
    }

    #[test]
    fn wildcards() {
        let a = authz(vec![binding(None, "cluster-admin", &["user:root"])]);
        let root = user("root", &[]);
        assert!(a.allows(
            &root,
            ResourceAttributes::new("frobnicate", "x.io", "things/sub", "", "")
        ));
        assert!(
            a.authorize(
                &root,
                &Request::NonResource {
                    verb: "get".into(),
                    path: "/metrics".into()
                }
            )
            .allowed
        );
        let sub_wild = Rule::new(&["get"], &[IMAGE_GROUP], &["imagestreams/*"]);
        assert!(sub_wild.allows(&Request::Resource(layers("get", "ns"))));
        let any_layers = Rule::new(&["get"], &["*"], &["*/layers"]);
        assert!(any_layers.allows(&Request::Resource(layers("get", "ns"))));
        assert!(
            !any_layers.allows(&Request::Resource(ResourceAttributes::new(
                "get",
                IMAGE_GROUP,
                "imagestreams",
                "ns",
                ""
            )))
        );
    }

    #[test]
    fn resource_names_restrict() {
        let a = Authorizer::with_builtins();
        let alice = user("alice", &[AUTHENTICATED_GROUP]);
        assert!(a.allows(
            &alice,
            ResourceAttributes::new("get", USER_GROUP, "users", "", "~")
        ));
        assert!(!a.allows(
            &alice,
            ResourceAttributes::new("get", USER_GROUP, "users", "", "bob")
        ));
        assert!(a.allows(&alice, ResourceAttributes::new("get", "", "users", "", "~")));
    }

    #[test]
    fn implicit_self_review_only_for_authenticated() {
        let a = Authorizer::with_builtins();
        let ssar = || {
            ResourceAttributes::new(
                "create",
                K8S_AUTHZ_GROUP,
                "selfsubjectaccessreviews",
                "",
                "",
            )
        };
        assert!(a.allows(&user("alice", &[AUTHENTICATED_GROUP]), ssar()));
        let anon = user("system:anonymous", &[UNAUTHENTICATED_GROUP]);
        assert!(!a.allows(&anon, ssar()));
        let a = authz(vec![binding(
            None,
            "self-access-reviewer",
            &["group:system:unauthenticated"],
        )]);
        assert!(a.allows(&anon, ssar()));
    }

    #[test]
    fn builtin_role_semantics() {
        let roles: BTreeMap<_, _> = builtin_roles()
            .into_iter()
            .map(|r| (r.name.clone(), r))
            .collect();
        let allows = |role: &str, verb: &str, group: &str, res: &str, ns: &str| {
            roles[role].rules.iter().any(|r| {
                r.allows(&Request::Resource(ResourceAttributes::new(
                    verb, group, res, ns, "",
                )))
            })
        };
        assert!(allows(
            "system:image-builder",
            "create",
            IMAGE_GROUP,
            "imagestreams",
            "n"
        ));
        assert!(!allows(
            "system:image-pusher",
            "create",
            IMAGE_GROUP,
            "imagestreams",
            "n"
        ));
        assert!(allows(
            "system:registry",
            "create",
            K8S_AUTHZ_GROUP,
            "subjectaccessreviews",
            ""
        ));
        assert!(allows("system:registry", "list", "", "limitranges", "n"));
        assert!(allows(
            "system:registry",
            "list",
            IMAGE_GROUP,
            "imagestreams",
            ""
        ));
        assert!(allows(
            "system:registry",
            "get",
            IMAGE_GROUP,
            "imagestreams/layers",
            "n"
        ));
        assert!(!allows(
            "system:registry",
            "delete",
            IMAGE_GROUP,
            "imagestreams",
            "n"
        ));
        assert!(allows(
            "edit",
            "delete",
            IMAGE_GROUP,
            "imagestreamtags",
            "n"
        ));
        assert!(allows(
            "edit",
            "update",
            IMAGE_GROUP,
            "imagestreams/layers",
            "n"
        ));
        assert!(!allows("edit", "delete", IMAGE_GROUP, "images", ""));
        assert!(allows(
            "view",
            "get",
            IMAGE_GROUP,
            "imagestreams/layers",
            "n"
        ));
        assert!(!allows(
            "view",
            "update",
            IMAGE_GROUP,
            "imagestreams/layers",
            "n"
        ));
        assert!(allows(
            "registry-editor",
            "delete",
            IMAGE_GROUP,
            "images",
            ""
        ));
        assert!(!allows(
            "registry-viewer",
            "delete",
            IMAGE_GROUP,
            "images",
            ""
        ));
        assert!(allows(
            "self-access-reviewer",
            "create",
            "",
            "localsubjectaccessreviews",
            "n"
        ));
        assert!(!allows(
            "system:image-puller",
            "get",
            IMAGE_GROUP,
            "imagestreams",
            "n"
        ));
    }

    #[test]
    fn subject_parsing() {
        assert_eq!(
            Subject::parse("user:alice"),
            Some(Subject::User("alice".into()))
        );
        assert_eq!(
            Subject::parse("group:system:authenticated"),
            Some(Subject::Group("system:authenticated".into()))
        );
        assert_eq!(
            Subject::parse("serviceaccount:ci:builder"),
            Some(Subject::ServiceAccount {
                namespace: "ci".into(),
                name: "builder".into()
            })
        );
        for bad in [
            "alice",
            "user:",
            "usr:alice",
            "serviceaccount:ci",
            "serviceaccount:ci:",
            "serviceaccount:ci:a:b",
            "group:has space",
        ] {
            assert_eq!(Subject::parse(bad), None, "{bad}");
        }
    }
}
