//! Asks the API whether a token may do something, with a bounded, TTL'd decision cache.
//!
//! * Key: (sha256 of the token, access); the token itself is never stored.
//! * Allow and deny decisions have separate TTLs; API failures are never cached.
//! * Concurrent misses for one key are coalesced into exactly one API call (moka `try_get_with`).
//! * A review the API refuses with 403 (the caller may not even create reviews, as for anonymous
//!   users on OpenShift ≥ 4.16) falls back to a SubjectAccessReview for `system:anonymous` made
//!   with the gateway's own identity.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
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

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthorizerStats {
    /// Decisions asked for.
    pub calls: u64,
    /// Decisions that were not in the cache.
    pub misses: u64,
    /// Review calls made to the API (including fallbacks).
    pub reviews: u64,
    pub review_micros: u64,
}

#[derive(Debug, Default)]
struct Counters {
    calls: AtomicU64,
    misses: AtomicU64,
    reviews: AtomicU64,
    review_micros: AtomicU64,
}

/// The authorizer. Share it behind an `Arc`.
pub struct Authorizer {
    api: ApiClient,
    counters: Counters,
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
            counters: Counters::default(),
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
        self.counters.calls.fetch_add(1, Relaxed);
        self.decisions
            .try_get_with(key, self.review(token, access))
            .await
    }

    /// Counters since start.
    pub fn stats(&self) -> AuthorizerStats {
        let c = &self.counters;
        AuthorizerStats {
            calls: c.calls.load(Relaxed),
            misses: c.misses.load(Relaxed),
            reviews: c.reviews.load(Relaxed),
            review_micros: c.review_micros.load(Relaxed),
        }
    }

    /// A cache miss: ask the API (timed and counted).
    async fn review(&self, token: Option<&Token>, access: &Access) -> Result<bool, ApiError> {
        self.counters.misses.fetch_add(1, Relaxed);
        let started = Instant::now();
        let r = self.ask(token, access).await;
        self.counters
            .review_micros
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        r
    }

    async fn ask(&self, token: Option<&Token>, access: &Access) -> Result<bool, ApiError> {
        self.counters.reviews.fetch_add(1, Relaxed);
        match self.api.self_access_review(token, access).await {
            Ok(allowed) => Ok(allowed),
            Err(ApiError::Unauthorized) => Ok(false),
            Err(ApiError::Forbidden(_)) => {
                self.counters.reviews.fetch_add(1, Relaxed);
                match self.api.anonymous_access_review(access).await {
                    Ok(allowed) => Ok(allowed),
                    Err(ApiError::Unauthorized | ApiError::Forbidden(_)) => Ok(false),
                    Err(e) => Err(e),
                }
            }
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
