//! Rate limiting per credential: a token bucket for each `Authorization` value (one more for
//! requests without one). The IPSIE AL1 SCIM profile asks every endpoint to "enforce rate
//! limiting and ... respond with "429 Too Many Requests" when limits are exceeded".

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Requests a credential may send: `burst` at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// Buckets kept at most. At the cap the full (idle) ones are dropped, at most once a second so a
/// flood of made-up credentials costs no scan per request; credentials still without room share
/// one overflow bucket.
const MAX_BUCKETS: usize = 10_000;
const OVERFLOW: [u8; 32] = [0; 32];

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_credential: HashMap<[u8; 32], Bucket>,
    swept: Option<Instant>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Limiter {
        Limiter {
            limit,
            buckets: Mutex::new(Buckets::default()),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes a token for the credential `key`; `Err(wait)` when none is left, `wait` being
    /// how long until one is.
    pub fn take(&self, key: &[u8], now: Instant) -> Result<(), Duration> {
        let rate = f64::from(self.limit.per_second.max(1));
        let burst = f64::from(self.limit.burst.max(1));
        let mut id: [u8; 32] = Sha256::digest(key).into();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let Buckets {
            by_credential,
            swept,
        } = &mut *buckets;
        if by_credential.len() >= MAX_BUCKETS && !by_credential.contains_key(&id) {
            if swept.is_none_or(|at| now.saturating_duration_since(at) >= Duration::from_secs(1)) {
                *swept = Some(now);
                by_credential.retain(|_, b| {
                    b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
                });
            }
            if by_credential.len() >= MAX_BUCKETS {
                id = OVERFLOW;
            }
        }
        let bucket = by_credential.entry(id).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refilled).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_burst_then_the_rate_and_credentials_apart() {
        let l = Limiter::new(RateLimit {
            per_second: 10,
            burst: 3,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(l.take(b"Bearer a", t0).is_ok());
        }
        let wait = l.take(b"Bearer a", t0).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(
            l.take(b"Bearer b", t0).is_ok(),
            "another credential has its own bucket"
        );
        assert!(l.take(b"Bearer a", t0 + Duration::from_millis(100)).is_ok());
    }

    #[test]
    fn past_the_cap_new_credentials_share_one_bucket() {
        let l = Limiter::new(RateLimit {
            per_second: 1,
            burst: 1,
        });
        let t0 = Instant::now();
        for i in 0..MAX_BUCKETS {
            assert!(l.take(format!("Bearer {i}").as_bytes(), t0).is_ok());
        }
        // Every bucket is in use: the next two unknown credentials share the overflow one.
        assert!(l.take(b"Bearer new-1", t0).is_ok());
        assert!(l.take(b"Bearer new-2", t0).is_err());
        let held = l.buckets.lock().unwrap().by_credential.len();
        assert_eq!(held, MAX_BUCKETS + 1, "the map stays bounded");
    }

    proptest! {
        /// Over any sequence of requests, a credential gets at most `burst` plus what the rate
        /// refilled since the first.
        #[test]
        fn never_more_than_burst_plus_rate(gaps in proptest::collection::vec(0u64..50, 1..300)) {
            let limit = RateLimit { per_second: 20, burst: 5 };
            let l = Limiter::new(limit);
            let t0 = Instant::now();
            let mut at = t0;
            let mut admitted = 0u32;
            for gap in gaps {
                at += Duration::from_millis(gap);
                if l.take(b"k", at).is_ok() {
                    admitted += 1;
                }
            }
            let allowed = f64::from(limit.burst) + at.duration_since(t0).as_secs_f64() * f64::from(limit.per_second);
            prop_assert!(f64::from(admitted) <= allowed + 1e-9, "{} > {}", admitted, allowed);
        }
    }
}
