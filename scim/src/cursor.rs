//! RFC 9865 cursors: opaque to the client, signed by the server and bound to the query they page.
//!
//! A cursor holds the offset of the next page, the count the first request asked for, when it
//! was issued and a digest of the query, under an HMAC-SHA256 tag with a key made when the
//! provider starts. Nothing is kept per cursor, so opening many costs no memory (RFC 9865 §5.3);
//! a cursor does not outlive the process that issued it. Like index paging, an offset shifts when
//! a resource of the result set is created or deleted between two pages.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Result, ScimError, ScimType};

/// How long a cursor stays valid by default (advertised as `pagination.cursorTimeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Where a cursor points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Resources of the result set before the page.
    pub offset: usize,
    /// The `count` of the query's first request, which every later page must repeat.
    pub count: Option<usize>,
}

#[derive(Serialize, Deserialize)]
struct Payload {
    /// Offset.
    o: usize,
    /// Count asked for.
    n: Option<usize>,
    /// Issued, Unix milliseconds.
    t: u64,
    /// Digest of the query.
    q: String,
}

/// Issues and opens the cursors of one provider.
pub struct Cursors {
    key: hmac::Key,
    timeout: Duration,
}

impl std::fmt::Debug for Cursors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cursors")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// A digest of everything in a query but its paging: a cursor only pages the query it came from.
pub fn query_digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(&h.finalize()[..12])
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn invalid(detail: &str) -> ScimError {
    ScimError::bad_request(ScimType::InvalidCursor, detail)
}

impl Cursors {
    /// Cursors signed with a fresh random key.
    pub fn new(timeout: Duration) -> Cursors {
        let secret: [u8; 32] = rand::random();
        Cursors {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            timeout,
        }
    }

    /// A cursor to `position` of the query whose digest is `query`: URL-safe (RFC 3986
    /// unreserved characters only).
    pub fn issue(&self, query: &str, position: Position) -> String {
        let payload = Payload {
            o: position.offset,
            n: position.count,
            t: now_millis(),
            q: query.to_owned(),
        };
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
        let tag = hmac::sign(&self.key, body.as_bytes());
        format!("{body}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// Where `cursor` points, for a request of the query `query` that asks for `count`.
    pub fn open(&self, cursor: &str, query: &str, count: Option<usize>) -> Result<Position> {
        self.open_at(cursor, query, count, now_millis())
    }

    fn open_at(
        &self,
        cursor: &str,
        query: &str,
        count: Option<usize>,
        now: u64,
    ) -> Result<Position> {
        const FORGED: &str = "the cursor was not issued by this server, or was altered: start again with an empty cursor";
        let (body, tag) = cursor.split_once('.').ok_or_else(|| invalid(FORGED))?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid(FORGED))?;
        // ring compares the tags in constant time.
        hmac::verify(&self.key, body.as_bytes(), &tag).map_err(|_| invalid(FORGED))?;
        let payload: Payload = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| invalid(FORGED))?;
        if payload.q != query {
            return Err(invalid(
                "the cursor pages another query: filter, sortBy, sortOrder, attributes and excludedAttributes must be those of the first request (RFC 9865 §2)",
            ));
        }
        let age = Duration::from_millis(now.saturating_sub(payload.t));
        if age > self.timeout {
            return Err(ScimError::bad_request(
                ScimType::ExpiredCursor,
                format!(
                    "the cursor expired: a page must be asked for within {} s of the previous one",
                    self.timeout.as_secs()
                ),
            ));
        }
        if let Some(asked) = count {
            if payload.n != Some(asked) {
                return Err(ScimError::bad_request(
                    ScimType::InvalidCount,
                    format!(
                        "count {asked} differs from the first request's ({}): every page of a cursor query repeats it (RFC 9865 §2)",
                        payload.n.map_or("none".to_owned(), |n| n.to_string())
                    ),
                ));
            }
        }
        Ok(Position {
            offset: payload.o,
            count: payload.n,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scim_type(e: ScimError) -> Option<&'static str> {
        e.scim_type.map(ScimType::as_str)
    }

    #[test]
    fn a_cursor_opens_to_where_it_points_for_its_own_query_only() {
        let c = Cursors::new(DEFAULT_TIMEOUT);
        let q = query_digest(&["Users", "userName sw \"a\""]);
        let at = Position {
            offset: 20,
            count: Some(10),
        };
        let cursor = c.issue(&q, at);
        assert_eq!(c.open(&cursor, &q, Some(10)), Ok(at));
        assert_eq!(c.open(&cursor, &q, None), Ok(at));
        let other = query_digest(&["Users", "userName sw \"b\""]);
        assert_eq!(
            scim_type(c.open(&cursor, &other, None).unwrap_err()),
            Some("invalidCursor")
        );
        assert_eq!(
            scim_type(c.open(&cursor, &q, Some(11)).unwrap_err()),
            Some("invalidCount")
        );
    }

    #[test]
    fn another_servers_cursor_is_refused() {
        let q = query_digest(&["Users"]);
        let cursor = Cursors::new(DEFAULT_TIMEOUT).issue(
            &q,
            Position {
                offset: 1,
                count: None,
            },
        );
        let err = Cursors::new(DEFAULT_TIMEOUT)
            .open(&cursor, &q, None)
            .unwrap_err();
        assert_eq!(scim_type(err), Some("invalidCursor"));
    }

    #[test]
    fn a_cursor_expires_after_the_timeout() {
        let c = Cursors::new(Duration::from_secs(60));
        let q = query_digest(&["Users"]);
        let cursor = c.issue(
            &q,
            Position {
                offset: 1,
                count: None,
            },
        );
        let later = now_millis() + 61_000;
        let err = c.open_at(&cursor, &q, None, later).unwrap_err();
        assert_eq!(scim_type(err), Some("expiredCursor"));
        assert!(c.open_at(&cursor, &q, None, later - 2_000).is_ok());
    }

    proptest! {
        /// Whatever a client makes of a cursor, the server refuses it with invalidCursor and
        /// never panics; the cursor itself is made of unreserved characters only.
        #[test]
        fn altered_cursors_are_refused(offset in 0usize..1_000_000, at in 0usize..200, byte in 0u8..128) {
            let c = Cursors::new(DEFAULT_TIMEOUT);
            let q = query_digest(&["Users"]);
            let cursor = c.issue(&q, Position { offset, count: Some(5) });
            prop_assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
            let mut bytes = cursor.clone().into_bytes();
            let i = at % bytes.len();
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            let altered = String::from_utf8_lossy(&bytes).into_owned();
            let err = c.open(&altered, &q, None).unwrap_err();
            prop_assert_eq!(scim_type(err), Some("invalidCursor"));
        }
    }
}
