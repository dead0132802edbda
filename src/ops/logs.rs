//! Time-limited, signed URLs for a build's installer output, served by the service itself
//! (the stand-in for the presigned S3 URLs of the real service).
//!
//! Depends on: nothing crate-internal.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Path prefix the URLs live under.
pub const LOGS_PATH: &str = "/_imagebuild/logs/";

/// Which installer stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// Path segment.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// Parses a path segment.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "stdout" => Some(Stream::Stdout),
            "stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}

fn signature(
    key: &[u8],
    account: &str,
    region: &str,
    build_id: &str,
    stream: Stream,
    expires_s: i64,
) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(
        format!(
            "{account}\n{region}\n{build_id}\n{}\n{expires_s}",
            stream.as_str()
        )
        .as_bytes(),
    );
    hex::encode(m.finalize().into_bytes())
}

/// Builds the URL of one stream of one build, valid until `expires_s` (epoch seconds).
#[must_use]
pub fn url(
    base_url: &str,
    key: &[u8],
    account: &str,
    region: &str,
    build_id: &str,
    stream: Stream,
    expires_s: i64,
) -> String {
    let sig = signature(key, account, region, build_id, stream, expires_s);
    format!(
        "{base_url}{LOGS_PATH}{build_id}/{}?Expires={expires_s}&Signature={sig}",
        stream.as_str()
    )
}

/// Checks a URL's signature for the build's owner; expiry is checked by the caller.
#[must_use]
pub fn verify(
    key: &[u8],
    account: &str,
    region: &str,
    build_id: &str,
    stream: Stream,
    expires_s: i64,
    sig: &str,
) -> bool {
    let expected = signature(key, account, region, build_id, stream, expires_s);
    expected.len() == sig.len() && bool::from(expected.as_bytes().ct_eq(sig.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_url_verifies_only_for_its_owner() {
        let u = url(
            "http://h",
            b"k",
            "111111111111",
            "us-east-1",
            "b1",
            Stream::Stdout,
            99,
        );
        let sig = u.rsplit("Signature=").next().unwrap();
        assert!(u.starts_with("http://h/_imagebuild/logs/b1/stdout?Expires=99&Signature="));
        assert!(verify(
            b"k",
            "111111111111",
            "us-east-1",
            "b1",
            Stream::Stdout,
            99,
            sig
        ));
        assert!(!verify(
            b"k",
            "222222222222",
            "us-east-1",
            "b1",
            Stream::Stdout,
            99,
            sig
        ));
        assert!(!verify(
            b"k",
            "111111111111",
            "us-east-1",
            "b1",
            Stream::Stderr,
            99,
            sig
        ));
        assert!(!verify(
            b"k",
            "111111111111",
            "us-east-1",
            "b1",
            Stream::Stdout,
            100,
            sig
        ));
    }
}
