//! Who is calling: access keys and their accounts, and SigV4 verification of each request.
//!
//! Secrets are held in `Secret`, which never prints its value.
//!
//! Depends on: clock (date formats).

pub mod accounts;
pub mod sigv4;

use std::collections::HashMap;
use std::sync::Arc;

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

/// The grant of a principal whose accounts-file entry names no actions: the actions of the
/// `AWSMarketplaceImageBuildFullAccess` managed policy that concern this service, plus the
/// seller's scan and Catalog API actions (which `AWSMarketplaceSellerFullAccess` grants with
/// `aws-marketplace:*`).
pub const DEFAULT_GRANT: [&str; 21] = [
    "aws-marketplace:DescribeBuilds",
    "aws-marketplace:ListBuilds",
    "aws-marketplace:StartBuild",
    "aws-marketplace:StartScans",
    "aws-marketplace:DescribeScans",
    "aws-marketplace:DescribeScanFindings",
    "aws-marketplace:ResubmitScan",
    "aws-marketplace:ListImages",
    "aws-marketplace:StartChangeSet",
    "aws-marketplace:DescribeChangeSet",
    "aws-marketplace:ListChangeSets",
    "aws-marketplace:CancelChangeSet",
    "aws-marketplace:DescribeEntity",
    "aws-marketplace:ListEntities",
    "aws-marketplace:BatchDescribeEntities",
    "aws-marketplace:TagResource",
    "aws-marketplace:UntagResource",
    "aws-marketplace:ListTagsForResource",
    "aws-marketplace:PutResourcePolicy",
    "aws-marketplace:GetResourcePolicy",
    "aws-marketplace:DeleteResourcePolicy",
];

/// An access key and what it stands for.
#[derive(Debug, Clone)]
pub struct Credential {
    /// Access key id.
    pub access_key: String,
    /// Secret access key.
    pub secret: Secret,
    /// Account the key belongs to.
    pub account: String,
    /// ARN of the IAM principal (`arn:aws:iam::ACCOUNT:user/NAME`).
    pub principal_arn: String,
    /// For temporary credentials: the session token the request must carry.
    pub session_token: Option<Secret>,
    /// For temporary credentials: when they stop working (epoch ms).
    pub expires_ms: Option<i64>,
    /// IAM-style action patterns the principal may call (`*` wildcards allowed); shared with
    /// each request's `Principal`, not copied.
    pub allow: Arc<[String]>,
}

impl Credential {
    /// A long-term key with the default grant.
    #[must_use]
    pub fn long_term(access_key: &str, secret: &str, account: &str, user: &str) -> Self {
        Self {
            access_key: access_key.into(),
            secret: Secret::new(secret),
            account: account.into(),
            principal_arn: format!("arn:aws:iam::{account}:user/{user}"),
            session_token: None,
            expires_ms: None,
            allow: DEFAULT_GRANT.iter().map(|a| (*a).to_string()).collect(),
        }
    }
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
    /// ARN of the IAM principal.
    pub arn: String,
    /// Action patterns it may call.
    pub allow: Arc<[String]>,
}

impl Principal {
    /// The caller a credential authenticates, in the region of its request's scope.
    #[must_use]
    pub fn of(c: &Credential, region: String) -> Self {
        Self {
            account: c.account.clone(),
            access_key: c.access_key.clone(),
            region,
            arn: c.principal_arn.clone(),
            allow: c.allow.clone(),
        }
    }

    /// True when one of the principal's patterns matches `action` (IAM: case-insensitive, `*`
    /// and `?` wildcards).
    #[must_use]
    pub fn may(&self, action: &str) -> bool {
        self.allow.iter().any(|p| {
            if p.is_ascii() && action.is_ascii() {
                ascii_wildcard_match(p.as_bytes(), action.as_bytes())
            } else {
                wildcard_match(&p.to_ascii_lowercase(), &action.to_ascii_lowercase())
            }
        })
    }
}

/// IAM-style glob: `*` matches any run, `?` one character.
#[must_use]
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    glob(&p, &t, '*', '?', |a, b| a == b)
}

/// `wildcard_match` of ASCII text ignoring ASCII case, without allocating: what every request's
/// authorization runs (actions and the usual patterns are ASCII).
fn ascii_wildcard_match(p: &[u8], t: &[u8]) -> bool {
    glob(p, t, b'*', b'?', |a, b| a.eq_ignore_ascii_case(&b))
}

/// The glob itself, over any symbols: `any` matches a run, `one` one symbol.
fn glob<T: Copy + PartialEq>(p: &[T], t: &[T], any: T, one: T, eq: impl Fn(T, T) -> bool) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == one || eq(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == any {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == any {
        pi += 1;
    }
    pi == p.len()
}

/// Looks up access keys.
pub trait CredentialStore: Send + Sync + 'static {
    /// Returns the credential for `access_key`, if known.
    fn lookup(&self, access_key: &str) -> Option<Arc<Credential>>;
}

/// A fixed set of credentials.
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials {
    by_key: HashMap<String, Arc<Credential>>,
}

impl StaticCredentials {
    /// The development account and key pair only.
    #[must_use]
    pub fn development() -> Self {
        let mut s = Self::default();
        let mut dev =
            Credential::long_term(DEV_ACCESS_KEY, DEV_SECRET_KEY, DEV_ACCOUNT, "developer");
        // The development principal may call every operation of every service here.
        dev.allow = Arc::from(["aws-marketplace:*".to_string()]);
        s.insert(dev);
        s
    }

    /// Adds (or replaces) a credential.
    pub fn insert(&mut self, c: Credential) {
        self.by_key.insert(c.access_key.clone(), Arc::new(c));
    }
}

impl StaticCredentials {
    /// Number of access keys.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// True when there are no keys.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

impl CredentialStore for StaticCredentials {
    fn lookup(&self, access_key: &str) -> Option<Arc<Credential>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_iam() {
        assert!(wildcard_match("*", "aws-marketplace:startbuild"));
        assert!(wildcard_match(
            "aws-marketplace:*",
            "aws-marketplace:startbuild"
        ));
        assert!(wildcard_match(
            "aws-marketplace:describe*",
            "aws-marketplace:describebuilds"
        ));
        assert!(wildcard_match(
            "aws-marketplace:?tartbuild",
            "aws-marketplace:startbuild"
        ));
        assert!(!wildcard_match(
            "aws-marketplace:describe*",
            "aws-marketplace:startbuild"
        ));
        assert!(!wildcard_match("ec2:*", "aws-marketplace:startbuild"));
        assert!(wildcard_match("a*b*c", "axxbyyc") && !wildcard_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn default_grant_and_case_insensitive_actions() {
        let c = Credential::long_term("AK", "S", "111122223333", "u");
        let p = Principal {
            account: c.account,
            access_key: c.access_key,
            region: "us-east-1".into(),
            arn: c.principal_arn,
            allow: c.allow,
        };
        for (pattern, action) in [
            (
                "aws-marketplace:Describe*",
                "aws-marketplace:DescribeBuilds",
            ),
            ("AWS-MARKETPLACE:?TARTBUILD", "aws-marketplace:StartBuild"),
            ("a*b*c", "AxxByyC"),
            ("a*b*c", "axxbyy"),
            ("ec2:*", "aws-marketplace:StartBuild"),
            ("*", ""),
            ("", "x"),
        ] {
            let lower = wildcard_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase());
            assert_eq!(
                ascii_wildcard_match(pattern.as_bytes(), action.as_bytes()),
                lower,
                "{pattern} {action}"
            );
        }
        assert!(p.may("aws-marketplace:StartBuild") && p.may("aws-marketplace:DescribeBuilds"));
        assert!(p.may("aws-marketplace:StartScans") && p.may("aws-marketplace:ResubmitScan"));
        assert!(p.may("aws-marketplace:StartChangeSet") && p.may("aws-marketplace:DescribeEntity"));
        assert!(!p.may("aws-marketplace:StartAssessment") && !p.may("ec2:RunInstances"));
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "Secret(***)");
    }
}
