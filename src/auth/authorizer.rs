//! Asks the API whether a token may do something, with a bounded, TTL'd decision cache.
//!
//! * Key: (sha256 of the token, access); the token itself is never stored.
//! * Allow and deny decisions have separate TTLs; API failures are never cached.
//! * Concurrent misses for one key are coalesced into exactly one API call (moka `try_get_with`).
//! * A review the API refuses with 403 (the caller may not even create reviews, as for anonymous
//!   users on OpenShift ≥ 4.16) falls back to a SubjectAccessReview for `system:anonymous` made
//!   with the gateway's own identity.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;

use crate::auth::access::Access;
use crate::auth::credentials::Token;
use crate::openshift::types::UserInfo;
use crate::openshift::{ApiClient, ApiError};

/// Cache sizing and lifetimes.
#[derive(Debug, Clone, Copy)]
pub struct CacheSettings {
    pub allow_ttl: Duration,
    pub deny_ttl: Duration,
    pub max_entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// sha256 of the token; `None` for anonymous.
    token: Option<[u8; 32]>,
    access: Access,
}

struct ByDecision(CacheSettings);

impl Expiry<Key, bool> for ByDecision {
    fn expire_after_create(&self, _k: &Key, allowed: &bool, _now: Instant) -> Option<Duration> {
        Some(if *allowed {
            self.0.allow_ttl
        } else {
            self.0.deny_ttl
        })
    }
}

impl Expiry<Option<[u8; 32]>, Option<UserInfo>> for ByDecision {
    fn expire_after_create(
        &self,
        _k: &Option<[u8; 32]>,
        v: &Option<UserInfo>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(if v.is_some() {
            self.0.allow_ttl
        } else {
            self.0.deny_ttl
        })
    }
}

/// The authorizer. Share it behind an `Arc`.
pub struct Authorizer {
    api: ApiClient,
    decisions: Cache<Key, bool>,
    identities: Cache<Option<[u8; 32]>, Option<UserInfo>>,
}

impl Authorizer {
    pub fn new(api: ApiClient, s: CacheSettings) -> Authorizer {
        let decisions = Cache::builder()
            .max_capacity(s.max_entries)
            .expire_after(ByDecision(s))
            .build();
        let identities = Cache::builder()
            .max_capacity(s.max_entries)
            .expire_after(ByDecision(s))
            .build();
        Authorizer {
            api,
            decisions,
            identities,
        }
    }

    /// Is `access` allowed for `token` (`None` = anonymous)? `Err` when the API cannot answer:
    /// the caller must fail closed.
    pub async fn allowed(
        &self,
        token: Option<&Token>,
        access: &Access,
    ) -> Result<bool, Arc<ApiError>> {
        let key = Key {
            token: token.map(Token::hash),
            access: access.clone(),
        };
        self.decisions
            .try_get_with(key, self.review(token, access))
            .await
    }

    async fn review(&self, token: Option<&Token>, access: &Access) -> Result<bool, ApiError> {
        match self.api.self_access_review(token, access).await {
            Ok(allowed) => Ok(allowed),
            Err(ApiError::Unauthorized) => Ok(false),
            Err(ApiError::Forbidden(_)) => match self.api.anonymous_access_review(access).await {
                Ok(allowed) => Ok(allowed),
                Err(ApiError::Unauthorized | ApiError::Forbidden(_)) => Ok(false),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    /// Who is `token`? `Ok(None)` when the API rejects it (401/403).
    pub async fn identify(&self, token: Option<&Token>) -> Result<Option<UserInfo>, Arc<ApiError>> {
        let key = token.map(Token::hash);
        self.identities
            .try_get_with(key, async {
                match self.api.who_am_i(token).await {
                    Ok(u) => Ok(Some(u)),
                    Err(ApiError::Unauthorized | ApiError::Forbidden(_)) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await
    }
}
