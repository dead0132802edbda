//! The accounts file (`--accounts FILE`): accounts, their principals, access keys (long-term
//! and temporary), and the actions each principal may call. Without a file, the development
//! account of the README is the only one.
//!
//! ```json
//! {"Accounts": [{"AccountId": "111122223333", "Principals": [{
//!     "Name": "alice",
//!     "Allow": ["aws-marketplace:StartBuild", "aws-marketplace:Describe*"],
//!     "AccessKeys": [{"AccessKeyId": "AKIA…", "SecretAccessKey": "…"}],
//!     "SessionCredentials": [{"AccessKeyId": "ASIA…", "SecretAccessKey": "…",
//!                             "SessionToken": "…", "Expiration": "2030-01-01T00:00:00Z"}]}]}]}
//! ```
//!
//! Depends on: auth.

use std::collections::HashSet;

use serde::Deserialize;

use super::{Credential, Secret, StaticCredentials, DEFAULT_GRANT};

/// Why an accounts file was refused; the message names the field.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// Not readable.
    #[error("cannot read accounts file {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Malformed or inconsistent.
    #[error("invalid accounts file: at {path}: {message}")]
    Invalid {
        /// JSON path of the bad field.
        path: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct File {
    accounts: Vec<Account>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Account {
    account_id: String,
    principals: Vec<PrincipalEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct PrincipalEntry {
    name: String,
    #[serde(default)]
    allow: Option<Vec<String>>,
    #[serde(default)]
    access_keys: Vec<KeyEntry>,
    #[serde(default)]
    session_credentials: Vec<SessionEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct KeyEntry {
    access_key_id: String,
    secret_access_key: String,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct SessionEntry {
    access_key_id: String,
    secret_access_key: String,
    session_token: String,
    expiration: Option<String>,
}

impl std::fmt::Debug for SessionEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionEntry")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Parses `2030-01-01T00:00:00Z` (seconds, optional fraction) into epoch ms.
fn parse_expiration(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let time = time.split('.').next()?;
    let compact = format!("{}T{}Z", date.replace('-', ""), time.replace(':', ""));
    crate::clock::parse_iso8601_basic(&compact)
}

fn valid_key_id(s: &str) -> bool {
    (16..=128).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric())
}

/// Parses and validates an accounts document.
///
/// # Errors
/// `AccountsError::Invalid` naming the offending field.
pub fn parse(text: &str) -> Result<StaticCredentials, AccountsError> {
    let de = &mut serde_json::Deserializer::from_str(text);
    let file: File = serde_path_to_error::deserialize(de).map_err(|e| AccountsError::Invalid {
        path: e.path().to_string(),
        message: e.inner().to_string(),
    })?;
    let bad = |path: String, message: &str| AccountsError::Invalid {
        path,
        message: message.into(),
    };
    let mut creds = StaticCredentials::default();
    let mut seen = HashSet::new();
    for (i, a) in file.accounts.iter().enumerate() {
        if !crate::world::is_account_id(&a.account_id) {
            return Err(bad(
                format!("Accounts[{i}].AccountId"),
                "not a 12-digit account id",
            ));
        }
        for (j, p) in a.principals.iter().enumerate() {
            let at = format!("Accounts[{i}].Principals[{j}]");
            if p.name.is_empty()
                || !p
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c))
            {
                return Err(bad(format!("{at}.Name"), "not an IAM user name"));
            }
            let allow: Vec<String> = match &p.allow {
                Some(a) => a.clone(),
                None => DEFAULT_GRANT.iter().map(|x| (*x).to_string()).collect(),
            };
            let base = Credential {
                access_key: String::new(),
                secret: Secret::new(""),
                account: a.account_id.clone(),
                principal_arn: format!("arn:aws:iam::{}:user/{}", a.account_id, p.name),
                session_token: None,
                expires_ms: None,
                allow: allow.into(),
            };
            for (k, key) in p.access_keys.iter().enumerate() {
                if !valid_key_id(&key.access_key_id) {
                    return Err(bad(
                        format!("{at}.AccessKeys[{k}].AccessKeyId"),
                        "16-128 letters and digits",
                    ));
                }
                if !seen.insert(key.access_key_id.clone()) {
                    return Err(bad(
                        format!("{at}.AccessKeys[{k}].AccessKeyId"),
                        "access key id used twice",
                    ));
                }
                if key.secret_access_key.is_empty() {
                    return Err(bad(
                        format!("{at}.AccessKeys[{k}].SecretAccessKey"),
                        "must not be empty",
                    ));
                }
                creds.insert(Credential {
                    access_key: key.access_key_id.clone(),
                    secret: Secret::new(key.secret_access_key.clone()),
                    ..base.clone()
                });
            }
            for (k, sc) in p.session_credentials.iter().enumerate() {
                if !valid_key_id(&sc.access_key_id) {
                    return Err(bad(
                        format!("{at}.SessionCredentials[{k}].AccessKeyId"),
                        "16-128 letters and digits",
                    ));
                }
                if !seen.insert(sc.access_key_id.clone()) {
                    return Err(bad(
                        format!("{at}.SessionCredentials[{k}].AccessKeyId"),
                        "access key id used twice",
                    ));
                }
                if sc.session_token.is_empty() || sc.secret_access_key.is_empty() {
                    return Err(bad(
                        format!("{at}.SessionCredentials[{k}]"),
                        "SecretAccessKey and SessionToken must not be empty",
                    ));
                }
                let expires_ms = match &sc.expiration {
                    None => None,
                    Some(e) => Some(parse_expiration(e).ok_or_else(|| {
                        bad(
                            format!("{at}.SessionCredentials[{k}].Expiration"),
                            "not an ISO-8601 time like 2030-01-01T00:00:00Z",
                        )
                    })?),
                };
                creds.insert(Credential {
                    access_key: sc.access_key_id.clone(),
                    secret: Secret::new(sc.secret_access_key.clone()),
                    session_token: Some(Secret::new(sc.session_token.clone())),
                    expires_ms,
                    ..base.clone()
                });
            }
        }
    }
    if creds.is_empty() {
        return Err(bad("Accounts".into(), "no access keys defined"));
    }
    Ok(creds)
}

/// Reads and parses an accounts file.
///
/// # Errors
/// `AccountsError` naming the file or the offending field.
pub fn from_file(path: &std::path::Path) -> Result<StaticCredentials, AccountsError> {
    let text = std::fs::read_to_string(path).map_err(|source| AccountsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::CredentialStore;

    const GOOD: &str = r#"{"Accounts": [{"AccountId": "111122223333", "Principals": [
        {"Name": "alice", "AccessKeys": [{"AccessKeyId": "AKIAALICE0000000001", "SecretAccessKey": "s1"}]},
        {"Name": "reader", "Allow": ["aws-marketplace:Describe*"],
         "SessionCredentials": [{"AccessKeyId": "ASIAREADER00000001", "SecretAccessKey": "s3cr3tvalue", "SessionToken": "t0kenvalue", "Expiration": "2030-01-01T00:00:00Z"}]}]}]}"#;

    #[test]
    fn parses_keys_principals_and_grants() {
        let c = parse(GOOD).unwrap();
        let alice = c.lookup("AKIAALICE0000000001").unwrap();
        assert_eq!(alice.principal_arn, "arn:aws:iam::111122223333:user/alice");
        assert_eq!(alice.allow.len(), DEFAULT_GRANT.len());
        let reader = c.lookup("ASIAREADER00000001").unwrap();
        assert_eq!(&*reader.allow, ["aws-marketplace:Describe*".to_string()]);
        assert_eq!(reader.expires_ms, Some(1_893_456_000_000));
        assert!(reader.session_token.is_some());
        assert!(
            !format!("{reader:?}").contains("s3cr3tvalue")
                && !format!("{reader:?}").contains("t0kenvalue")
        );
    }

    #[test]
    fn bad_files_name_the_field() {
        for (doc, path) in [
            (
                r#"{"Accounts": [{"AccountId": "12", "Principals": []}]}"#,
                "Accounts[0].AccountId",
            ),
            (
                r#"{"Accounts": [{"AccountId": "111122223333", "Principals": [{"Name": "a", "AccessKeys": [{"AccessKeyId": "short", "SecretAccessKey": "x"}]}]}]}"#,
                "Accounts[0].Principals[0].AccessKeys[0].AccessKeyId",
            ),
            (
                r#"{"Accounts": [{"AccountId": "111122223333", "Principals": [{"Name": "a", "Extra": 1}]}]}"#,
                "Accounts[0].Principals[0]",
            ),
            (
                r#"{"Accounts": [{"AccountId": "111122223333", "Principals": [{"Name": "a", "SessionCredentials": [{"AccessKeyId": "ASIAXXXXXXXXXXXXXXXX", "SecretAccessKey": "x", "SessionToken": "t", "Expiration": "soon"}]}]}]}"#,
                "Expiration",
            ),
            (r#"{"Accounts": []}"#, "Accounts"),
        ] {
            let e = parse(doc).unwrap_err().to_string();
            assert!(e.contains(path), "{e}");
        }
    }
}
