//! Decoding the `Authorization` header, with OpenShift's semantics (pure).
//!
//! * `Basic base64(user:token)` — the password is the OpenShift token, the user name is ignored;
//!   an empty password is invalid.
//! * `Bearer <token>` — the token as is; the literal `anonymous` means no token.
//! * no header — credentials are required (answered with the Bearer challenge).

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// Longest `Authorization` header value accepted (OpenShift tokens are well under 2 KiB).
pub const MAX_HEADER_LEN: usize = 8 * 1024;

/// An OpenShift API token. `Debug` never shows it; use [`Token::hash`] for keys and logs.
/// The hash is computed once, when the token is read (every request uses it for cache keys).
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    secret: String,
    hash: [u8; 32],
}

impl Token {
    pub fn new(s: impl Into<String>) -> Token {
        let secret = s.into();
        let hash = Sha256::digest(secret.as_bytes()).into();
        Token { secret, hash }
    }
    /// The secret itself, for the `Authorization` header of API calls only.
    pub fn expose(&self) -> &str {
        &self.secret
    }
    /// sha256 of the token: what cache keys and logs may hold.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }
    /// A short, non-reversible fingerprint for logs.
    pub fn fingerprint(&self) -> String {
        hex::encode(&self.hash[..6])
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token(sha256:{}…)", self.fingerprint())
    }
}

/// What the client presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No `Authorization` header at all.
    Missing,
    /// `Bearer anonymous`: explicitly unauthenticated.
    Anonymous,
    /// A token, from Basic or Bearer.
    Token(Token),
}

/// Why the header was refused. The messages are OpenShift's (`ErrTokenRequired`, `ErrTokenInvalid`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// Not a `<scheme> <value>` pair, or an unknown scheme.
    #[error("authorization header required")]
    Required,
    /// Basic payload not decodable, no colon, empty password, or an unusable token.
    #[error("failed to decode credentials")]
    Invalid,
}

/// Parse the raw header value (`None` when absent).
pub fn parse(header: Option<&[u8]>) -> Result<Credentials, CredentialError> {
    let Some(raw) = header else {
        return Ok(Credentials::Missing);
    };
    if raw.len() > MAX_HEADER_LEN {
        return Err(CredentialError::Invalid);
    }
    let value = std::str::from_utf8(raw)
        .map_err(|_| CredentialError::Invalid)?
        .trim();
    let mut parts = value.split(' ').filter(|p| !p.is_empty());
    let (Some(scheme), Some(param), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(CredentialError::Required);
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        if param == "anonymous" {
            return Ok(Credentials::Anonymous);
        }
        return token(param);
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(param)
            .map_err(|_| CredentialError::Invalid)?;
        let decoded = String::from_utf8(decoded).map_err(|_| CredentialError::Invalid)?;
        let (_user, password) = decoded.split_once(':').ok_or(CredentialError::Invalid)?;
        return token(password);
    }
    Err(CredentialError::Required)
}

/// A token must be non-empty visible ASCII so it can be sent on to the API unchanged.
fn token(s: &str) -> Result<Credentials, CredentialError> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(CredentialError::Invalid);
    }
    Ok(Credentials::Token(Token::new(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(s: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
        .into_bytes()
    }
    fn tok(s: &str) -> Result<Credentials, CredentialError> {
        Ok(Credentials::Token(Token::new(s)))
    }

    #[test]
    fn basic_password_is_the_token() {
        assert_eq!(parse(Some(&basic("anyone:sha256~abc"))), tok("sha256~abc"));
        assert_eq!(parse(Some(&basic(":t"))), tok("t"));
        assert_eq!(parse(Some(&basic("u:a:b"))), tok("a:b"));
        assert_eq!(parse(Some(b"basic dTp0")), tok("t"));
    }

    #[test]
    fn basic_errors() {
        assert_eq!(parse(Some(&basic("user:"))), Err(CredentialError::Invalid));
        assert_eq!(
            parse(Some(&basic("nocolon"))),
            Err(CredentialError::Invalid)
        );
        assert_eq!(
            parse(Some(b"Basic !!!notbase64")),
            Err(CredentialError::Invalid)
        );
        assert_eq!(
            parse(Some(&basic("u:has space"))),
            Err(CredentialError::Invalid)
        );
        assert_eq!(
            parse(Some(&basic("u:\u{7f}"))),
            Err(CredentialError::Invalid)
        );
    }

    #[test]
    fn bearer() {
        assert_eq!(parse(Some(b"Bearer abc")), tok("abc"));
        assert_eq!(parse(Some(b"bearer abc")), tok("abc"));
        assert_eq!(parse(Some(b"Bearer anonymous")), Ok(Credentials::Anonymous));
    }

    #[test]
    fn shapes() {
        assert_eq!(parse(None), Ok(Credentials::Missing));
        assert_eq!(parse(Some(b"")), Err(CredentialError::Required));
        assert_eq!(parse(Some(b"Bearer")), Err(CredentialError::Required));
        assert_eq!(parse(Some(b"Bearer a b")), Err(CredentialError::Required));
        assert_eq!(parse(Some(b"Digest abc")), Err(CredentialError::Required));
        assert_eq!(parse(Some(b"Bearer \xff")), Err(CredentialError::Invalid));
        let huge = format!("Bearer {}", "a".repeat(MAX_HEADER_LEN));
        assert_eq!(parse(Some(huge.as_bytes())), Err(CredentialError::Invalid));
    }

    #[test]
    fn token_debug_never_shows_secret() {
        let t = Token::new("super-secret");
        assert!(!format!("{t:?}").contains("super-secret"));
        assert_eq!(t.fingerprint().len(), 12);
    }
}
