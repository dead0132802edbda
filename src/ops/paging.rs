//! NextToken: an opaque, versioned, HMAC-signed cursor bound to the operation, account,
//! region and query, so a token is useless anywhere else and cannot be edited.
//!
//! Layout: `base64url(v1 | issued_s:u64 | created_ms:i64 | build_id | mac[16])`, where
//! `mac = HMAC-SHA256(key, op \0 account \0 region \0 query_hash \0 payload)`.
//!
//! Depends on: store (Cursor).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::Cursor;

const VERSION: u8 = 1;
const MAC_LEN: usize = 16;
/// How long a token stays valid.
pub const TOKEN_TTL_S: i64 = 24 * 3600;

/// What a token is bound to.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// Operation name.
    pub operation: &'a str,
    /// Caller account.
    pub account: &'a str,
    /// Caller region.
    pub region: &'a str,
    /// Hash of the query (filters, ids), not of MaxResults.
    pub query_hash: &'a str,
}

fn mac(key: &[u8], b: &Binding<'_>, payload: &[u8]) -> Hmac<Sha256> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for part in [b.operation, b.account, b.region, b.query_hash] {
        m.update(part.as_bytes());
        m.update(b"\0");
    }
    m.update(payload);
    m
}

/// A filter's values as a set (sorted, without repeats), so a token is bound to what the query
/// selects, not to how the caller ordered it.
#[must_use]
pub fn value_set<S: AsRef<str>>(values: Option<&[S]>) -> Option<Vec<String>> {
    values.map(|v| {
        let mut v: Vec<String> = v.iter().map(|x| x.as_ref().to_string()).collect();
        v.sort_unstable();
        v.dedup();
        v
    })
}

/// The hash a token is bound to: SHA-256 of the canonical query, truncated to 16 bytes.
#[must_use]
pub fn query_hash(canonical: &serde_json::Value) -> String {
    use sha2::Digest;
    hex::encode(&Sha256::digest(canonical.to_string().as_bytes())[..16])
}

/// Encodes a cursor into a NextToken, signed with the newest key (`keys[0]`).
#[must_use]
pub fn encode(keys: &[Vec<u8>], b: &Binding<'_>, cursor: &Cursor, now_ms: i64) -> String {
    let key: &[u8] = keys.first().map_or(&[], Vec::as_slice);
    let mut payload = vec![VERSION];
    payload.extend_from_slice(&(now_ms / 1000).to_be_bytes());
    payload.extend_from_slice(&cursor.created_ms.to_be_bytes());
    payload.extend_from_slice(cursor.build_id.as_bytes());
    let tag = mac(key, b, &payload).finalize().into_bytes();
    payload.extend_from_slice(&tag[..MAC_LEN]);
    URL_SAFE_NO_PAD.encode(payload)
}

/// Decodes and verifies a NextToken against any key still in its grace period; `None` for
/// anything not issued for this binding, edited or expired.
#[must_use]
pub fn decode(keys: &[Vec<u8>], b: &Binding<'_>, token: &str, now_ms: i64) -> Option<Cursor> {
    let raw = URL_SAFE_NO_PAD.decode(token.as_bytes()).ok()?;
    if raw.len() < 1 + 8 + 8 + 1 + MAC_LEN || raw[0] != VERSION {
        return None;
    }
    let (payload, tag) = raw.split_at(raw.len() - MAC_LEN);
    keys.iter()
        .find(|key| mac(key, b, payload).verify_truncated_left(tag).is_ok())?;
    let issued_s = i64::from_be_bytes(payload[1..9].try_into().ok()?);
    let created_ms = i64::from_be_bytes(payload[9..17].try_into().ok()?);
    let build_id = std::str::from_utf8(&payload[17..]).ok()?.to_string();
    if now_ms / 1000 - issued_s > TOKEN_TTL_S || issued_s - now_ms / 1000 > 300 {
        return None;
    }
    Some(Cursor {
        created_ms,
        build_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Binding<'static> = Binding {
        operation: "DescribeBuilds",
        account: "111111111111",
        region: "us-east-1",
        query_hash: "q",
    };

    #[test]
    fn round_trip_and_binding() {
        let c = Cursor {
            created_ms: 123,
            build_id: "b-1".into(),
        };
        let t = encode(&[b"k".to_vec()], &B, &c, 1_000_000);
        assert_eq!(decode(&[b"k".to_vec()], &B, &t, 1_000_000), Some(c));
        assert_eq!(decode(&[b"other".to_vec()], &B, &t, 1_000_000), None);
        assert_eq!(
            decode(
                &[b"k".to_vec()],
                &Binding {
                    account: "222222222222",
                    ..B
                },
                &t,
                1_000_000
            ),
            None
        );
        assert_eq!(
            decode(
                &[b"k".to_vec()],
                &Binding {
                    region: "us-west-2",
                    ..B
                },
                &t,
                1_000_000
            ),
            None
        );
        assert_eq!(
            decode(
                &[b"k".to_vec()],
                &Binding {
                    query_hash: "other",
                    ..B
                },
                &t,
                1_000_000
            ),
            None
        );
        assert_eq!(
            decode(
                &[b"k".to_vec()],
                &B,
                &t,
                1_000_000 + (TOKEN_TTL_S + 1) * 1000
            ),
            None
        );
    }

    #[test]
    fn rotated_keys_verify_old_tokens_while_in_grace() {
        let c = Cursor {
            created_ms: 7,
            build_id: "b".into(),
        };
        let old = encode(&[b"k1".to_vec()], &B, &c, 0);
        let both = [b"k2".to_vec(), b"k1".to_vec()];
        assert_eq!(decode(&both, &B, &old, 0), Some(c.clone()));
        let new = encode(&both, &B, &c, 0);
        assert_eq!(decode(&[b"k2".to_vec()], &B, &new, 0), Some(c.clone()));
        assert_eq!(decode(&[b"k2".to_vec()], &B, &old, 0), None);
    }

    #[test]
    fn edited_or_garbage_tokens_are_rejected() {
        let t = encode(
            &[b"k".to_vec()],
            &B,
            &Cursor {
                created_ms: 1,
                build_id: "x".into(),
            },
            0,
        );
        let mut raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        raw[10] ^= 1;
        assert_eq!(
            decode(&[b"k".to_vec()], &B, &URL_SAFE_NO_PAD.encode(raw), 0),
            None
        );
        for g in ["", "!!!", "AAAA", "eyJ0b2tlbiI6MX0"] {
            assert_eq!(decode(&[b"k".to_vec()], &B, g, 0), None);
        }
    }
}
