//! Time-limited, signed URLs for a build's installer output, served by the service itself
//! (the stand-in for the presigned S3 URLs of the real service).
//!
//! Depends on: nothing crate-internal.

use hmac::{Hmac, Mac};

use crate::encoding::Hex32;
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

/// Signs log URLs with the newest key and verifies them with any key still in its grace
/// period; each key's HMAC state is prepared once.
#[derive(Clone)]
pub struct UrlSigner {
    keyed: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for UrlSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UrlSigner(***)")
    }
}

impl UrlSigner {
    /// Prepares a signer for `keys`, newest first (an empty list signs with an empty key).
    #[must_use]
    pub fn new(keys: &[Vec<u8>]) -> Self {
        let mut keyed: Vec<Hmac<Sha256>> = keys
            .iter()
            .map(|k| {
                <Hmac<Sha256> as Mac>::new_from_slice(k)
                    .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
            })
            .collect();
        if keyed.is_empty() {
            keyed.push(
                <Hmac<Sha256> as Mac>::new_from_slice(&[])
                    .unwrap_or_else(|_| unreachable!("HMAC takes any key length")),
            );
        }
        Self { keyed }
    }

    fn signature_with(
        keyed: &Hmac<Sha256>,
        account: &str,
        region: &str,
        build_id: &str,
        expires_s: i64,
    ) -> [u8; 32] {
        let mut m = keyed.clone();
        for part in [account, region, build_id] {
            m.update(part.as_bytes());
            m.update(b"\n");
        }
        m.update(&expires_s.to_be_bytes());
        m.finalize().into_bytes().into()
    }

    /// Builds the URLs of both streams of one build, valid until `expires_s` (epoch seconds).
    ///
    /// One signature covers the build (owner, region, id, expiry), not the stream: both URLs
    /// go to the same caller, so binding the stream would only double the signing work.
    #[must_use]
    pub fn urls(
        &self,
        base_url: &str,
        account: &str,
        region: &str,
        build_id: &str,
        expires_s: i64,
    ) -> (String, String) {
        let sig = Hex32::of(&Self::signature_with(
            &self.keyed[0],
            account,
            region,
            build_id,
            expires_s,
        ));
        let mut expires = itoa::Buffer::new();
        let expires = expires.format(expires_s);
        // `{base_url}{LOGS_PATH}{build_id}/{stream}?Expires={expires_s}&Signature={sig}`, by
        // appending: `format!` cost more than the URL's HMAC.
        let url = |stream: Stream| {
            let parts = [
                base_url,
                LOGS_PATH,
                build_id,
                "/",
                stream.as_str(),
                "?Expires=",
                expires,
                "&Signature=",
                sig.as_str(),
            ];
            let mut u = String::with_capacity(parts.iter().map(|p| p.len()).sum());
            parts.iter().for_each(|p| u.push_str(p));
            u
        };
        (url(Stream::Stdout), url(Stream::Stderr))
    }

    /// The hex signature of any resource URL (`id`, owner, region and expiry bound).
    #[must_use]
    pub fn sign(&self, account: &str, region: &str, id: &str, expires_s: i64) -> Hex32 {
        Hex32::of(&Self::signature_with(
            &self.keyed[0],
            account,
            region,
            id,
            expires_s,
        ))
    }

    /// Checks a URL's signature for the build's owner; expiry is checked by the caller.
    #[must_use]
    pub fn verify(
        &self,
        account: &str,
        region: &str,
        build_id: &str,
        expires_s: i64,
        sig: &str,
    ) -> bool {
        let Ok(given) = hex::decode(sig) else {
            return false;
        };
        self.keyed.iter().any(|k| {
            let expected = Self::signature_with(k, account, region, build_id, expires_s);
            given.len() == expected.len() && bool::from(expected.as_slice().ct_eq(&given))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_url_verifies_only_for_its_build_and_owner() {
        let s = UrlSigner::new(&[b"k".to_vec()]);
        let acct = "111111111111";
        let (out, err) = s.urls("http://h", acct, "us-east-1", "b1", 99);
        assert!(out.starts_with("http://h/_imagebuild/logs/b1/stdout?Expires=99&Signature="));
        assert!(err.starts_with("http://h/_imagebuild/logs/b1/stderr?Expires=99&Signature="));
        let sig = out.rsplit("Signature=").next().unwrap();
        assert!(s.verify(acct, "us-east-1", "b1", 99, sig));
        assert!(!s.verify("222222222222", "us-east-1", "b1", 99, sig));
        assert!(!s.verify(acct, "us-west-2", "b1", 99, sig));
        assert!(!s.verify(acct, "us-east-1", "b2", 99, sig));
        assert!(!s.verify(acct, "us-east-1", "b1", 100, sig));
        assert!(!UrlSigner::new(&[b"other".to_vec()]).verify(acct, "us-east-1", "b1", 99, sig));
        assert!(!s.verify(acct, "us-east-1", "b1", 99, "zz"));
        // after rotation the old key still verifies, new URLs use the new key
        let rotated = UrlSigner::new(&[b"k2".to_vec(), b"k".to_vec()]);
        assert!(rotated.verify(acct, "us-east-1", "b1", 99, sig));
        let (new, _) = rotated.urls("http://h", acct, "us-east-1", "b1", 99);
        let new_sig = new.rsplit("Signature=").next().unwrap();
        assert!(!s.verify(acct, "us-east-1", "b1", 99, new_sig));
    }
}
