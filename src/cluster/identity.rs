//! Identities: who a bearer token belongs to.
//!
//! Tokens are never stored or logged; only their SHA-256 digests are kept.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::rbac::{AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP};

/// Name of the anonymous user.
pub const ANONYMOUS_USER: &str = "system:anonymous";

/// SHA-256 digest of a token.
pub type TokenHash = [u8; 32];

/// The authenticated (or anonymous) user of a request, as in a k8s `UserInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub username: String,
    /// Empty for the anonymous user.
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> UserInfo {
        UserInfo {
            username: ANONYMOUS_USER.to_string(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
        }
    }

    /// A user defined in the policy: its groups plus `system:authenticated` and
    /// `system:authenticated:oauth`.
    pub fn user(name: &str, groups: &[String]) -> UserInfo {
        let mut all: Vec<String> = Vec::with_capacity(groups.len() + 2);
        for g in groups {
            if !all.contains(g) {
                all.push(g.clone());
            }
        }
        for g in [AUTHENTICATED_GROUP, "system:authenticated:oauth"] {
            if !all.iter().any(|x| x == g) {
                all.push(g.to_string());
            }
        }
        UserInfo {
            username: name.to_string(),
            uid: uid_for(name),
            groups: all,
        }
    }

    /// A service account `system:serviceaccount:<ns>:<name>`.
    pub fn service_account(namespace: &str, name: &str) -> UserInfo {
        let username = service_account_username(namespace, name);
        UserInfo {
            uid: uid_for(&username),
            username,
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED_GROUP.to_string(),
            ],
        }
    }

    /// Whether the identity is authenticated (not anonymous).
    pub fn is_authenticated(&self) -> bool {
        self.groups.iter().any(|g| g == AUTHENTICATED_GROUP)
    }

    /// Whether this is a service account.
    pub fn is_service_account(&self) -> bool {
        self.username.starts_with("system:serviceaccount:")
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A stable, UUID-shaped uid derived from the user name.
pub fn uid_for(username: &str) -> String {
    let d = Sha256::digest(format!("portcullis-uid:{username}").as_bytes());
    let h = hex::encode(&d[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// SHA-256 of a plaintext token.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// Parse a lowercase or uppercase 64-digit hex SHA-256.
pub fn parse_token_hash(hex_str: &str) -> Option<TokenHash> {
    if hex_str.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str, &mut out).ok()?;
    Some(out)
}

/// What the `Authorization` header carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// No header, an empty bearer token, or a scheme other than Bearer: anonymous.
    None,
    Bearer(&'a str),
}

/// Extract the credential from an `Authorization` header value (k8s semantics:
/// anything that is not a non-empty bearer token is an anonymous request).
pub fn credential(header: Option<&http::HeaderValue>) -> Credential<'_> {
    let Some(v) = header.and_then(|v| v.to_str().ok()) else {
        return Credential::None;
    };
    let v = v.trim();
    let Some((scheme, rest)) = v.split_once(' ') else {
        return Credential::None;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Credential::None;
    }
    let token = rest.trim();
    if token.is_empty() {
        Credential::None
    } else {
        Credential::Bearer(token)
    }
}

/// Token digests → identities.
#[derive(Clone, Debug, Default)]
pub struct TokenStore {
    by_hash: HashMap<TokenHash, UserInfo>,
}

/// The result of authenticating a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authn {
    Anonymous(UserInfo),
    Authenticated(UserInfo),
    /// A token was presented but is unknown: 401.
    Rejected,
}

impl TokenStore {
    /// Insert; returns the identity previously registered for the same token, if any.
    pub fn insert(&mut self, hash: TokenHash, user: UserInfo) -> Option<UserInfo> {
        self.by_hash.insert(hash, user)
    }

    pub fn contains(&self, hash: &TokenHash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Authenticate a credential.
    pub fn authenticate(&self, cred: Credential<'_>) -> Authn {
        match cred {
            Credential::None => Authn::Anonymous(UserInfo::anonymous()),
            Credential::Bearer(token) => match self.by_hash.get(&hash_token(token)) {
                Some(u) => Authn::Authenticated(u.clone()),
                None => Authn::Rejected,
            },
        }
    }

    /// All known non-service-account users by name.
    pub fn find_user(&self, name: &str) -> Option<&UserInfo> {
        self.by_hash
            .values()
            .find(|u| u.username == name && !u.is_service_account())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn credential_parsing() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(credential(None), Credential::None);
        assert_eq!(
            credential(Some(&h("Bearer abc"))),
            Credential::Bearer("abc")
        );
        assert_eq!(
            credential(Some(&h("bearer  abc "))),
            Credential::Bearer("abc")
        );
        assert_eq!(credential(Some(&h("Bearer "))), Credential::None);
        assert_eq!(credential(Some(&h("Bearer"))), Credential::None);
        assert_eq!(credential(Some(&h("Basic dTpw"))), Credential::None);
    }

    #[test]
    fn identities() {
        let u = UserInfo::user("alice", &["developers".to_string()]);
        assert_eq!(
            u.groups,
            vec![
                "developers",
                "system:authenticated",
                "system:authenticated:oauth"
            ]
        );
        assert!(u.is_authenticated());
        assert!(!u.is_service_account());
        assert_eq!(u.uid.len(), 36);
        assert_eq!(u.uid, uid_for("alice"));

        let sa = UserInfo::service_account("ci", "builder");
        assert_eq!(sa.username, "system:serviceaccount:ci:builder");
        assert_eq!(
            sa.groups,
            vec![
                "system:serviceaccounts",
                "system:serviceaccounts:ci",
                "system:authenticated"
            ]
        );
        assert!(sa.is_service_account());

        let anon = UserInfo::anonymous();
        assert_eq!(anon.username, "system:anonymous");
        assert_eq!(anon.groups, vec!["system:unauthenticated"]);
        assert!(!anon.is_authenticated());
    }

    #[test]
    fn token_store() {
        let mut s = TokenStore::default();
        s.insert(hash_token("s3cret"), UserInfo::user("alice", &[]));
        assert_eq!(
            s.authenticate(Credential::Bearer("s3cret")),
            Authn::Authenticated(UserInfo::user("alice", &[]))
        );
        assert_eq!(s.authenticate(Credential::Bearer("nope")), Authn::Rejected);
        assert_eq!(
            s.authenticate(Credential::None),
            Authn::Anonymous(UserInfo::anonymous())
        );
        assert!(s.find_user("alice").is_some());
        assert!(s.find_user("bob").is_none());
    }

    #[test]
    fn token_hash_parsing() {
        let h = hex::encode(hash_token("x"));
        assert_eq!(parse_token_hash(&h), Some(hash_token("x")));
        assert_eq!(parse_token_hash(&h.to_uppercase()), Some(hash_token("x")));
        assert_eq!(parse_token_hash(&h[..63]), None);
        assert_eq!(parse_token_hash(&format!("{}g", &h[..63])), None);
    }
}
