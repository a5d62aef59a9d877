//! The 401 answers and their `WWW-Authenticate` challenges, exactly as OpenShift writes them
//! (reference §2.2–2.4). Pure.

use serde_json::Value;

use crate::auth::access::Access;
use crate::auth::credentials::CredentialError;
use crate::error::{Code, RegistryError};

/// OpenShift's `ErrOpenShiftAccessDenied` text.
pub const ACCESS_DENIED: &str = "access denied";

/// `Basic realm=<realm>,error="<message>"` (realm unquoted, no space after the comma).
pub fn basic(realm: &str, message: &str) -> String {
    format!("Basic realm={realm},error={message:?}")
}

/// `Bearer realm="<scheme>://<host>/openshift/token"`.
pub fn bearer(token_realm: &str) -> String {
    format!("Bearer realm={token_realm:?}")
}

/// The token endpoint URL for a request reaching the gateway as `scheme://host`.
pub fn token_realm(scheme: &str, host: &str) -> String {
    let host = match (scheme, host.rsplit_once(':')) {
        ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h,
        _ => host,
    };
    format!("{scheme}://{host}/openshift/token")
}

fn records(accesses: &[Access]) -> Value {
    if accesses.is_empty() {
        return Value::Null;
    }
    Value::Array(accesses.iter().map(Access::record).collect())
}

fn unauthorized(message: &str, accesses: &[Access], challenge: String) -> RegistryError {
    RegistryError::new(
        Code::Unauthorized,
        format!("authentication required: {message}"),
    )
    .with_detail(records(accesses))
    .with_challenge(challenge)
}

/// Credentials missing or unreadable: `ErrTokenRequired` challenges with Bearer, `ErrTokenInvalid`
/// with Basic.
pub fn credentials(
    err: &CredentialError,
    realm: &str,
    token_realm: &str,
    accesses: &[Access],
) -> RegistryError {
    let challenge = match err {
        CredentialError::Required => bearer(token_realm),
        CredentialError::Invalid => basic(realm, &err.to_string()),
    };
    unauthorized(&err.to_string(), accesses, challenge)
}

/// The API said no (or refused the token): a 401 with a Basic challenge, as OpenShift does.
pub fn denied(realm: &str, accesses: &[Access]) -> RegistryError {
    unauthorized(ACCESS_DENIED, accesses, basic(realm, ACCESS_DENIED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::Repo;

    #[test]
    fn formats() {
        assert_eq!(
            basic("myrealm", "access denied"),
            r#"Basic realm=myrealm,error="access denied""#
        );
        assert_eq!(
            bearer("https://openshift-example.com/openshift/token"),
            r#"Bearer realm="https://openshift-example.com/openshift/token""#
        );
        assert_eq!(
            token_realm("https", "r.example:443"),
            "https://r.example/openshift/token"
        );
        assert_eq!(
            token_realm("http", "127.0.0.1:5000"),
            "http://127.0.0.1:5000/openshift/token"
        );
        assert_eq!(
            token_realm("http", "[::1]:80"),
            "http://[::1]/openshift/token"
        );
    }

    #[test]
    fn credential_errors_pick_the_scheme() {
        let a = [Access::pull(&Repo::parse("a/b").unwrap())];
        let e = credentials(
            &CredentialError::Required,
            "openshift",
            "http://h/openshift/token",
            &a,
        );
        assert_eq!(e.status, 401);
        assert!(e.challenge.unwrap().starts_with("Bearer "));
        assert_eq!(e.detail[0]["Action"], "pull");
        let e = credentials(
            &CredentialError::Invalid,
            "openshift",
            "http://h/openshift/token",
            &a,
        );
        assert_eq!(
            e.challenge.unwrap(),
            r#"Basic realm=openshift,error="failed to decode credentials""#
        );
        let e = denied("openshift", &[]);
        assert!(e.message.contains("access denied"));
        assert!(e.detail.is_null());
    }
}
