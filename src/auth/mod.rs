//! Who is calling: access keys and their accounts, and SigV4 verification of each request.
//!
//! Secrets are held in `Secret`, which never prints its value.
//!
//! Depends on: clock (date formats).

pub mod sigv4;

use std::collections::HashMap;

/// The development account used when no accounts file is given (README).
pub const DEV_ACCOUNT: &str = "123456789012";
/// The development access key id.
pub const DEV_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
/// The development secret access key.
pub const DEV_SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A secret string that never appears in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    #[must_use]
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// Returns the secret for signing maths.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An access key and what it stands for.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret: Secret,
    /// Account the key belongs to.
    pub account: String,
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Account id.
    pub account: String,
    /// Access key id used.
    pub access_key: String,
    /// Region from the credential scope.
    pub region: String,
}

/// Looks up access keys.
pub trait CredentialStore: Send + Sync + 'static {
    /// Returns the credential for `access_key`, if known.
    fn lookup(&self, access_key: &str) -> Option<Credential>;
}

/// A fixed set of credentials.
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials {
    by_key: HashMap<String, Credential>,
}

impl StaticCredentials {
    /// The development account and key pair only.
    #[must_use]
    pub fn development() -> Self {
        let mut s = Self::default();
        s.insert(Credential {
            access_key: DEV_ACCESS_KEY.into(),
            secret: Secret::new(DEV_SECRET_KEY),
            account: DEV_ACCOUNT.into(),
        });
        s
    }

    /// Adds (or replaces) a credential.
    pub fn insert(&mut self, c: Credential) {
        self.by_key.insert(c.access_key.clone(), c);
    }
}

impl CredentialStore for StaticCredentials {
    fn lookup(&self, access_key: &str) -> Option<Credential> {
        self.by_key.get(access_key).cloned()
    }
}

/// Why a request was not authenticated; each maps to AWS's own error code and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header (or query-string signature) at all.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The signature is malformed or incomplete.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The signature does not verify (mismatch, clock skew, scope).
    #[error("{0}")]
    InvalidSignature(String),
    /// The access key (or session token) is not known.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// The session token has expired.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
}

impl AuthError {
    /// The AWS error code (`__type`).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::InvalidSignature(_) => "InvalidSignatureException",
            AuthError::UnrecognizedClient => "UnrecognizedClientException",
            AuthError::ExpiredToken => "ExpiredTokenException",
        }
    }
}
