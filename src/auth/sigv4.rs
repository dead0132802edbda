//! SigV4 header-auth verification, done as AWS does it: parse, check the scope and the clock
//! before looking up the key, recompute the signature over exactly the headers the client
//! signed and the raw body bytes, compare in constant time.
//!
//! Canonicalisation is ours (so every failing step has AWS's own message); the key derivation
//! is `aws-sigv4`'s, the final HMAC the `hmac` crate's (the known-answer tests verify botocore's
//! signatures through it). Per credential scope (key, date, region, service) the HMAC keyed with the
//! derived key is cached, its pads already hashed.
//!
//! Depends on: auth, clock.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{AuthError, CredentialStore, Principal};
use crate::clock::{iso8601_basic, parse_iso8601_basic};

/// Allowed clock skew between client and server.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// The parts of an HTTP request that SigV4 covers.
#[derive(Debug)]
pub struct SignedRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path as received (still percent-encoded).
    pub path: &'a str,
    /// Query string as received, without `?`.
    pub query: &'a str,
    /// All headers.
    pub headers: &'a http::HeaderMap,
    /// The raw body bytes.
    pub body: &'a [u8],
}

/// Verifies requests against a credential store for one signing name.
pub struct Verifier<C> {
    credentials: C,
    service: String,
    cache_keys: bool,
    /// HMACs keyed with the derived key, by credential scope (`key/date/region/service/aws4_request`).
    key_cache: Mutex<HashMap<String, Hmac<Sha256>>>,
}

impl<C: CredentialStore> Verifier<C> {
    /// Creates a verifier for `service` (the model's `signingName`).
    pub fn new(credentials: C, service: &str) -> Self {
        Self {
            credentials,
            service: service.to_string(),
            cache_keys: true,
            key_cache: Mutex::new(HashMap::new()),
        }
    }

    /// A verifier that derives the signing key for every request (benchmarks).
    pub fn without_key_cache(credentials: C, service: &str) -> Self {
        Self {
            cache_keys: false,
            ..Self::new(credentials, service)
        }
    }

    /// Verifies `req` at time `now_ms` and returns the caller.
    ///
    /// # Errors
    /// The `AuthError` AWS would answer with.
    pub fn verify(&self, req: &SignedRequest<'_>, now_ms: i64) -> Result<Principal, AuthError> {
        let query = query_pairs(req.query);
        let has_query_auth = query.iter().any(|(k, _)| k == "X-Amz-Algorithm");
        let mut auth_values = req.headers.get_all(http::header::AUTHORIZATION).iter();
        let first_auth = auth_values.next();
        if has_query_auth && first_auth.is_some() {
            return Err(AuthError::InvalidSignature(
                "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header.".into(),
            ));
        }
        let signed = if has_query_auth {
            parse_presigned(&query)?
        } else {
            let Some(raw) = first_auth else {
                return Err(AuthError::MissingAuthenticationToken);
            };
            if auth_values.next().is_some() {
                return Err(AuthError::IncompleteSignature(
                    "Only one Authorization header is allowed.".into(),
                ));
            }
            let header = raw.to_str().map_err(|_| {
                AuthError::IncompleteSignature(
                    "Authorization header contains characters that are not printable ASCII.".into(),
                )
            })?;
            parse_header_auth(header, req.headers)?
        };
        self.check(req, &signed, now_ms)
    }

    /// The principal an access key names, without checking any signature (only for the
    /// explicitly insecure mode).
    pub fn principal_unverified(&self, access_key: &str, region: &str) -> Option<Principal> {
        self.credentials
            .lookup(access_key)
            .map(|c| Principal::of(&c, region.to_string()))
    }

    /// AWS's order: the scope, the clock, the key and its session token, then the signature.
    fn check(
        &self,
        req: &SignedRequest<'_>,
        signed: &Signed,
        now_ms: i64,
    ) -> Result<Principal, AuthError> {
        self.check_scope(signed)?;
        check_time(signed, now_ms)?;
        let credential = self
            .credentials
            .lookup(signed.scope.access_key)
            .ok_or(AuthError::UnrecognizedClient)?;
        check_token(req, signed, &credential, now_ms)?;
        self.check_signature(req, signed, &credential)?;
        Ok(Principal::of(&credential, signed.scope.region.to_string()))
    }

    /// The credential scope and the signed headers, before any key lookup.
    fn check_scope(&self, signed: &Signed) -> Result<(), AuthError> {
        let scope = &signed.scope;
        let date_value: &str = &signed.date_value;
        if scope.terminator != "aws4_request" {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{}'. ",
                scope.terminator
            )));
        }
        if scope.date != &date_value[..8] {
            return Err(AuthError::InvalidSignature(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{}'.",
                scope.date,
                &date_value[..8],
                date_value
            )));
        }
        if !crate::world::is_region(scope.region) {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to a valid region, not '{}'. ",
                scope.region
            )));
        }
        if scope.service != self.service {
            return Err(AuthError::InvalidSignature(format!(
                "Credential should be scoped to correct service: '{}'. ",
                self.service
            )));
        }
        if !signed.signed_headers.iter().any(|h| h == "host") {
            return Err(AuthError::InvalidSignature(
                "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
            ));
        }
        match signed.date_header {
            Some(date_header) if !signed.signed_headers.iter().any(|h| h == date_header) => {
                Err(AuthError::InvalidSignature(format!(
                    "'{}' must be a 'SignedHeader' in the AWS Authorization.",
                    if date_header == "date" {
                        "Date"
                    } else {
                        "X-Amz-Date"
                    }
                )))
            }
            _ => Ok(()),
        }
    }

    /// The signature over the canonical request, with the payload hash of the raw body (which
    /// `x-amz-content-sha256` must agree with when sent), compared in constant time.
    fn check_signature(
        &self,
        req: &SignedRequest<'_>,
        signed: &Signed,
        credential: &super::Credential,
    ) -> Result<(), AuthError> {
        let scope = &signed.scope;
        let body_hash = crate::encoding::Hex32::of(&Sha256::digest(req.body).into());
        let claimed = header_str(req.headers, "x-amz-content-sha256")?;
        let payload_hash = match &claimed {
            Some(claimed) if signed.expires_s.is_none() => {
                if claimed != body_hash.as_str() {
                    return Err(AuthError::InvalidSignature(
                        "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
                    ));
                }
                claimed
            }
            _ => body_hash.as_str(),
        };
        let canonical = canonical_request_hash(req, &signed.signed_headers, payload_hash)?;
        let mut mac = self.signing_mac(
            scope.raw,
            credential.secret.expose(),
            signed.t_ms,
            scope.region,
        );
        // The string to sign, fed to the HMAC piece by piece.
        for part in [
            "AWS4-HMAC-SHA256\n",
            &signed.date_value,
            "\n",
            scope.date,
            "/",
            scope.region,
            "/",
            scope.service,
            "/aws4_request\n",
            crate::encoding::Hex32::of(&canonical).as_str(),
        ] {
            mac.update(part.as_bytes());
        }
        let expected = crate::encoding::Hex32::of(&mac.finalize().into_bytes().into());
        let expected = expected.as_str().as_bytes();
        if expected.len() != signed.signature.len()
            || !bool::from(expected.ct_eq(signed.signature.as_bytes()))
        {
            return Err(AuthError::InvalidSignature(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
            ));
        }
        Ok(())
    }

    /// The HMAC keyed with the signing key of a credential scope (its date is the request's,
    /// already checked against `t_ms`), from the cache when it was derived before: the cached
    /// state has the key's pads already hashed, two SHA-256 blocks a request fewer.
    fn signing_mac(&self, scope: &str, secret: &str, t_ms: i64, region: &str) -> Hmac<Sha256> {
        let derive = || {
            let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(t_ms).unwrap_or(0));
            let key = aws_sigv4::sign::v4::generate_signing_key(secret, t, region, &self.service);
            <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref())
                .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
        };
        if !self.cache_keys {
            return derive();
        }
        if let Some(k) = self
            .key_cache
            .lock()
            .ok()
            .and_then(|c| c.get(scope).cloned())
        {
            return k;
        }
        let mac = derive();
        if let Ok(mut cache) = self.key_cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(scope.to_string(), mac.clone());
        }
        mac
    }
}

/// The request's time against the clock: within 5 minutes for header auth, within
/// `X-Amz-Expires` for a presigned URL, and never more than 5 minutes ahead.
fn check_time(signed: &Signed, now_ms: i64) -> Result<(), AuthError> {
    let (t_ms, date_value) = (signed.t_ms, &*signed.date_value);
    match signed.expires_s {
        // Header auth: the request must reach us within 5 minutes of its time stamp.
        None if t_ms < now_ms - MAX_SKEW_MS => {
            return Err(AuthError::InvalidSignature(format!(
                "Signature expired: {} is now earlier than {} ({} - 5 min.)",
                date_value,
                iso8601_basic(now_ms - MAX_SKEW_MS),
                iso8601_basic(now_ms)
            )));
        }
        // Presigned: valid from X-Amz-Date until X-Amz-Date + X-Amz-Expires.
        Some(expires) if now_ms > t_ms + expires * 1000 => {
            return Err(AuthError::InvalidSignature(format!(
                "Signature expired: {} is now earlier than {} ({} + {} sec.)",
                iso8601_basic(t_ms + expires * 1000),
                iso8601_basic(now_ms),
                date_value,
                expires
            )));
        }
        _ => {}
    }
    if t_ms > now_ms + MAX_SKEW_MS {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {} is still later than {} ({} + 5 min.)",
            date_value,
            iso8601_basic(now_ms + MAX_SKEW_MS),
            iso8601_basic(now_ms)
        )));
    }
    Ok(())
}

/// The session token: required with (and only with) temporary credentials, equal in constant
/// time, and not past their expiry.
fn check_token(
    req: &SignedRequest<'_>,
    signed: &Signed,
    credential: &super::Credential,
    now_ms: i64,
) -> Result<(), AuthError> {
    let token = match signed.token {
        Some(t) => Some(Cow::Borrowed(t)),
        None => header_str(req.headers, "x-amz-security-token")?,
    };
    match (&credential.session_token, token) {
        (None, None) => Ok(()),
        (Some(expected), Some(given)) => {
            let e = expected.expose().as_bytes();
            if e.len() != given.len() || !bool::from(e.ct_eq(given.as_bytes())) {
                return Err(AuthError::UnrecognizedClient);
            }
            if credential.expires_ms.is_some_and(|x| now_ms >= x) {
                return Err(AuthError::ExpiredToken);
            }
            Ok(())
        }
        // A temporary key without its token, or a token with a long-term key.
        _ => Err(AuthError::UnrecognizedClient),
    }
}

/// A header's value as SigV4 reads it: trimmed, several values joined by `,` (borrowed when
/// there is one value, the usual case).
fn header_str<'h>(
    headers: &'h http::HeaderMap,
    name: &str,
) -> Result<Option<Cow<'h, str>>, AuthError> {
    let text = |v: &'h http::HeaderValue| {
        v.to_str().map(str::trim).map_err(|_| {
            AuthError::IncompleteSignature(format!(
                "Header '{name}' contains characters that are not printable ASCII."
            ))
        })
    };
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let first = text(first)?;
    let Some(second) = values.next() else {
        return Ok(Some(Cow::Borrowed(first)));
    };
    let mut joined = format!("{first},{}", text(second)?);
    for v in values {
        joined.push(',');
        joined.push_str(text(v)?);
    }
    Ok(Some(Cow::Owned(joined)))
}

struct Scope<'a> {
    /// The whole credential scope as sent.
    raw: &'a str,
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
}

/// What a request claims, from its Authorization header or its query string.
struct Signed<'a> {
    scope: Scope<'a>,
    signed_headers: Vec<Cow<'a, str>>,
    signature: &'a str,
    /// The request time as sent (`YYYYMMDDTHHMMSSZ`).
    date_value: Cow<'a, str>,
    t_ms: i64,
    /// Header auth: the header that carried the time (must be signed).
    date_header: Option<&'static str>,
    /// Presigned: `X-Amz-Expires` seconds.
    expires_s: Option<i64>,
    /// Presigned: `X-Amz-Security-Token`.
    token: Option<&'a str>,
}

fn parse_date(date_value: &str) -> Result<i64, AuthError> {
    parse_iso8601_basic(date_value).ok_or_else(|| {
        AuthError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{date_value}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })
}

fn parse_scope(credential: &str) -> Result<Scope<'_>, AuthError> {
    let mut parts = credential.split('/');
    let (Some(access_key), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(AuthError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    Ok(Scope {
        raw: credential,
        access_key,
        date,
        region,
        service,
        terminator,
    })
}

/// The signed header names, lowercased (borrowed when they already are, as SDKs send them).
fn split_signed_headers(s: &str) -> Vec<Cow<'_, str>> {
    s.split(';')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            if h.bytes().any(|b| b.is_ascii_uppercase()) {
                Cow::Owned(h.to_ascii_lowercase())
            } else {
                Cow::Borrowed(h)
            }
        })
        .collect()
}

/// Decoded `(key, value)` pairs of a query string.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Longest presigned validity AWS allows: seven days.
const MAX_PRESIGN_EXPIRES_S: i64 = 604_800;

fn parse_presigned(query: &[(String, String)]) -> Result<Signed<'_>, AuthError> {
    let get = |k: &str| {
        query
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let mut missing = None;
    for k in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
        "X-Amz-Expires",
    ] {
        if get(k).is_none() {
            missing = Some(k);
            break;
        }
    }
    if let Some(k) = missing {
        return Err(AuthError::IncompleteSignature(format!(
            "AWS query-string parameters must include '{k}'. Re-examine the query-string parameters."
        )));
    }
    let field = |k: &str| get(k).unwrap_or_default();
    let algorithm = field("X-Amz-Algorithm");
    if algorithm != "AWS4-HMAC-SHA256" {
        return Err(AuthError::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'."
        )));
    }
    let expires: i64 = field("X-Amz-Expires")
        .parse()
        .map_err(|_| AuthError::IncompleteSignature("X-Amz-Expires should be a number".into()))?;
    if expires < 0 {
        return Err(AuthError::IncompleteSignature(
            "X-Amz-Expires must be non-negative".into(),
        ));
    }
    if expires > MAX_PRESIGN_EXPIRES_S {
        return Err(AuthError::IncompleteSignature(format!(
            "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGN_EXPIRES_S}"
        )));
    }
    let date_value = field("X-Amz-Date");
    Ok(Signed {
        scope: parse_scope(field("X-Amz-Credential"))?,
        signed_headers: split_signed_headers(field("X-Amz-SignedHeaders")),
        signature: field("X-Amz-Signature"),
        t_ms: parse_date(date_value)?,
        date_value: Cow::Borrowed(date_value),
        date_header: None,
        expires_s: Some(expires),
        token: get("X-Amz-Security-Token"),
    })
}

/// The three parameters of an `Authorization` header, and the first part that was not
/// `key=value`.
#[derive(Default)]
struct AuthParams<'a> {
    credential: Option<&'a str>,
    signed_headers: Option<&'a str>,
    signature: Option<&'a str>,
    malformed: Option<&'a str>,
}

fn auth_params(rest: &str) -> AuthParams<'_> {
    let mut p = AuthParams::default();
    for part in rest.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some((k, v)) = part.split_once('=') else {
            p.malformed.get_or_insert(part);
            continue;
        };
        let slot = match k.trim() {
            "Credential" => &mut p.credential,
            "SignedHeaders" => &mut p.signed_headers,
            "Signature" => &mut p.signature,
            _ => continue,
        };
        *slot = Some(v.trim());
    }
    p
}

/// AWS's order: a malformed pair of a SigV4 header, then the missing parameters (whatever the
/// algorithm, so `Authorization: X` reads as incomplete), then the algorithm.
fn parse_header_auth<'a>(
    header: &'a str,
    headers: &'a http::HeaderMap,
) -> Result<Signed<'a>, AuthError> {
    let (algorithm, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    let params = auth_params(rest);
    if let (Some(part), "AWS4-HMAC-SHA256") = (&params.malformed, algorithm) {
        return Err(AuthError::IncompleteSignature(format!(
            "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{header}'."
        )));
    }
    let mut missing = String::new();
    for (name, present) in [
        ("Credential", params.credential.is_some()),
        ("Signature", params.signature.is_some()),
        ("SignedHeaders", params.signed_headers.is_some()),
    ] {
        if !present {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if headers.get("x-amz-date").is_none() && headers.get(http::header::DATE).is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if !missing.is_empty() {
        return Err(AuthError::IncompleteSignature(format!(
            "{missing}Authorization={header}"
        )));
    }
    if algorithm != "AWS4-HMAC-SHA256" {
        return Err(AuthError::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'."
        )));
    }
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (params.credential, params.signed_headers, params.signature)
    else {
        return Err(AuthError::IncompleteSignature(format!(
            "Authorization={header}"
        )));
    };
    let scope = parse_scope(credential)?;
    // Request time: X-Amz-Date, else Date; both in ISO-8601 basic format.
    let (date_header, date_value) = match (
        header_str(headers, "x-amz-date")?,
        header_str(headers, "date")?,
    ) {
        (Some(v), _) => ("x-amz-date", v),
        (None, Some(v)) => ("date", v),
        (None, None) => {
            return Err(AuthError::IncompleteSignature(format!(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={header}"
            )));
        }
    };
    Ok(Signed {
        scope,
        signed_headers: split_signed_headers(signed_headers),
        signature,
        t_ms: parse_date(&date_value)?,
        date_value,
        date_header: Some(date_header),
        expires_s: None,
        token: None,
    })
}

fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes `%XX` escapes (and `+` as a space is not special: SigV4 query encoding).
#[must_use]
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Normalises the path (`.`/`..`/`//`) and URI-encodes it again, as non-S3 services do.
fn canonical_uri(path: &str) -> Cow<'_, str> {
    if path == "/" {
        return Cow::Borrowed("/");
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(s, true))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    Cow::Owned(out)
}

fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (
                uri_encode(&percent_decode(k), true),
                uri_encode(&percent_decode(v), true),
            )
        })
        .filter(|(k, _)| k != "X-Amz-Signature")
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Feeds the canonical request to `sink` piece by piece: method, URI, query, each signed header
/// (`name:value`, values trimmed, several joined by `,`, runs of blanks as one space), the
/// signed header names and the payload hash, each part on its own line.
fn feed_canonical(
    req: &SignedRequest<'_>,
    signed: &[impl AsRef<str>],
    payload_hash: &str,
    sink: &mut impl FnMut(&[u8]),
) -> Result<(), AuthError> {
    for part in [
        req.method,
        "\n",
        &canonical_uri(req.path),
        "\n",
        &canonical_query(req.query),
        "\n",
    ] {
        sink(part.as_bytes());
    }
    for name in signed.iter().map(AsRef::as_ref) {
        let value = header_str(req.headers, name)?.ok_or_else(|| {
            AuthError::InvalidSignature(format!("The request signature we calculated does not match the signature you provided. Signed header '{name}' is not present in the request."))
        })?;
        sink(name.as_bytes());
        sink(b":");
        for (i, word) in value.split_whitespace().enumerate() {
            if i > 0 {
                sink(b" ");
            }
            sink(word.as_bytes());
        }
        sink(b"\n");
    }
    sink(b"\n");
    for (i, name) in signed.iter().map(AsRef::as_ref).enumerate() {
        if i > 0 {
            sink(b";");
        }
        sink(name.as_bytes());
    }
    sink(b"\n");
    sink(payload_hash.as_bytes());
    Ok(())
}

/// SHA-256 of the canonical request, hashed as it is fed (nothing is assembled).
fn canonical_request_hash(
    req: &SignedRequest<'_>,
    signed: &[impl AsRef<str>],
    payload_hash: &str,
) -> Result<[u8; 32], AuthError> {
    let mut hasher = Sha256::new();
    feed_canonical(req, signed, payload_hash, &mut |b| hasher.update(b))?;
    Ok(hasher.finalize().into())
}

/// The canonical request as text (what the hash above covers).
#[cfg(test)]
fn canonical_request(
    req: &SignedRequest<'_>,
    signed: &[impl AsRef<str>],
    payload_hash: &str,
) -> Result<String, AuthError> {
    let mut out = Vec::new();
    feed_canonical(req, signed, payload_hash, &mut |b| out.extend_from_slice(b))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Credential, Secret, StaticCredentials};

    const KAT_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn verifier() -> Verifier<StaticCredentials> {
        let mut c = StaticCredentials::default();
        c.insert(Credential::long_term(
            "AKIDEXAMPLE",
            KAT_SECRET,
            "111122223333",
            "kat",
        ));
        Verifier::new(c, "aws-marketplace")
    }

    fn token_verifier(expires_ms: Option<i64>) -> Verifier<StaticCredentials> {
        let mut c = StaticCredentials::default();
        let mut cred = Credential::long_term("AKIDEXAMPLE", KAT_SECRET, "111122223333", "kat");
        cred.session_token = Some(Secret::new("FQoGZXIvYXdzEXAMPLETOKEN"));
        cred.expires_ms = expires_ms;
        c.insert(cred);
        Verifier::new(c, "aws-marketplace")
    }

    #[test]
    fn kat2_verifies_with_its_session_token_only() {
        let signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target";
        let mut h = kat_headers(
            "6067d011bfb41c723fc03b0b7080ea3fd6d4cb02ec3310c273460c42f82f4fa0",
            signed,
        );
        h.insert(
            "x-amz-security-token",
            "FQoGZXIvYXdzEXAMPLETOKEN".parse().unwrap(),
        );
        assert_eq!(
            token_verifier(None)
                .verify(&req(&h, b"{}"), NOW)
                .unwrap()
                .account,
            "111122223333"
        );
        // expired temporary credentials
        assert_eq!(
            token_verifier(Some(NOW - 1))
                .verify(&req(&h, b"{}"), NOW)
                .unwrap_err(),
            AuthError::ExpiredToken
        );
        // the token with a long-term key, or the temporary key without (or with another) token
        assert_eq!(
            verifier().verify(&req(&h, b"{}"), NOW).unwrap_err(),
            AuthError::UnrecognizedClient
        );
        h.insert(
            "x-amz-security-token",
            "FQoGZXIvYXdzEXAMPLETOKEX".parse().unwrap(),
        );
        assert_eq!(
            token_verifier(None)
                .verify(&req(&h, b"{}"), NOW)
                .unwrap_err(),
            AuthError::UnrecognizedClient
        );
        let h = kat_headers(
            "7209877dfb823e860e200611680cbee0c382b39fe8ef982f0ff907cf9825baa2",
            "content-type;host;x-amz-date;x-amz-target",
        );
        assert_eq!(
            token_verifier(None)
                .verify(&req(&h, b"{}"), NOW)
                .unwrap_err(),
            AuthError::UnrecognizedClient
        );
    }

    /// A request presigned by aws-sigv4 itself (query-string auth).
    fn presigned_query(expires: Duration) -> String {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{
            sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        };
        use aws_smithy_runtime_api::client::identity::Identity;
        let identity: Identity =
            Credentials::new("AKIDEXAMPLE", KAT_SECRET, None, None, "t").into();
        let mut settings = SigningSettings::default();
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires);
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("aws-marketplace")
            .time(UNIX_EPOCH + Duration::from_secs(1_705_320_000))
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let headers = [
            ("host", "127.0.0.1:18099"),
            ("x-amz-target", "AWSMPImageBuilding.DescribeBuilds"),
            ("content-type", "application/x-amz-json-1.1"),
        ];
        let signable = SignableRequest::new(
            "POST",
            "http://127.0.0.1:18099/",
            headers.iter().copied(),
            SignableBody::Bytes(b"{}"),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut r = http::Request::builder()
            .uri("http://127.0.0.1:18099/")
            .body(())
            .unwrap();
        instructions.apply_to_request_http1x(&mut r);
        r.uri().query().unwrap().to_string()
    }

    fn preq<'a>(h: &'a http::HeaderMap, q: &'a str) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path: "/",
            query: q,
            headers: h,
            body: b"{}",
        }
    }

    #[test]
    fn presigned_requests_verify_until_they_expire() {
        let query = presigned_query(Duration::from_secs(300));
        let mut h = http::HeaderMap::new();
        h.insert("host", "127.0.0.1:18099".parse().unwrap());
        h.insert(
            "x-amz-target",
            "AWSMPImageBuilding.DescribeBuilds".parse().unwrap(),
        );
        h.insert(
            "content-type",
            "application/x-amz-json-1.1".parse().unwrap(),
        );
        assert_eq!(
            verifier().verify(&preq(&h, &query), NOW).unwrap().account,
            "111122223333"
        );
        let late = 1_705_320_000_000 + 301_000;
        assert!(
            matches!(verifier().verify(&preq(&h, &query), late).unwrap_err(), AuthError::InvalidSignature(m) if m.starts_with("Signature expired:"))
        );
        let other_body = SignedRequest {
            method: "POST",
            path: "/",
            query: &query,
            headers: &h,
            body: b"{ }",
        };
        assert!(
            matches!(verifier().verify(&other_body, NOW).unwrap_err(), AuthError::InvalidSignature(m) if m.starts_with("The request signature we calculated"))
        );
        let without = query
            .split('&')
            .filter(|kv| !kv.starts_with("X-Amz-Signature="))
            .collect::<Vec<_>>()
            .join("&");
        assert_eq!(
            verifier().verify(&preq(&h, &without), NOW).unwrap_err(),
            AuthError::IncompleteSignature("AWS query-string parameters must include 'X-Amz-Signature'. Re-examine the query-string parameters.".into())
        );
        let mut both = h.clone();
        both.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
        );
        let req_both = SignedRequest {
            method: "POST",
            path: "/",
            query: &query,
            headers: &both,
            body: b"{}",
        };
        assert!(
            matches!(verifier().verify(&req_both, NOW).unwrap_err(), AuthError::InvalidSignature(m) if m.starts_with("Found both"))
        );
        let week = presigned_query(Duration::from_secs(604_801));
        assert!(
            matches!(verifier().verify(&preq(&h, &week), NOW).unwrap_err(), AuthError::IncompleteSignature(m) if m.starts_with("X-Amz-Expires must be less than a week"))
        );
    }

    fn kat_headers(sig: &str, signed: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("host", "127.0.0.1:18099".parse().unwrap());
        h.insert("x-amz-date", "20240115T120000Z".parse().unwrap());
        h.insert(
            "x-amz-target",
            "AWSMPImageBuilding.DescribeBuilds".parse().unwrap(),
        );
        h.insert(
            "content-type",
            "application/x-amz-json-1.1".parse().unwrap(),
        );
        h.insert(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/aws-marketplace/aws4_request, SignedHeaders={signed}, Signature={sig}").parse().unwrap(),
        );
        h
    }

    const NOW: i64 = 1_705_320_060_000; // 20240115T120100Z

    fn req<'a>(h: &'a http::HeaderMap, body: &'a [u8]) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: h,
            body,
        }
    }

    #[test]
    fn signed_header_names_are_read_lowercased_and_cached_keys_verify_alike() {
        const KAT1: &str = "7209877dfb823e860e200611680cbee0c382b39fe8ef982f0ff907cf9825baa2";
        let upper = kat_headers(KAT1, "Content-Type;HOST;x-amz-date;X-Amz-Target");
        let cached = verifier();
        for _ in 0..2 {
            assert!(cached.verify(&req(&upper, b"{}"), NOW).is_ok());
            let cold = Verifier::without_key_cache(verifier().credentials, "aws-marketplace");
            assert!(cold.verify(&req(&upper, b"{}"), NOW).is_ok());
        }
        // A cached key does not make a wrong signature or another body pass.
        let wrong = kat_headers(
            &KAT1.replace('7', "8"),
            "content-type;host;x-amz-date;x-amz-target",
        );
        assert!(matches!(
            cached.verify(&req(&wrong, b"{}"), NOW),
            Err(AuthError::InvalidSignature(_))
        ));
        assert!(cached.verify(&req(&upper, b"{ }"), NOW).is_err());
    }

    #[test]
    fn kat1_verifies() {
        let h = kat_headers(
            "7209877dfb823e860e200611680cbee0c382b39fe8ef982f0ff907cf9825baa2",
            "content-type;host;x-amz-date;x-amz-target",
        );
        let p = verifier().verify(&req(&h, b"{}"), NOW).unwrap();
        assert_eq!(p.account, "111122223333");
        assert_eq!(p.region, "us-east-1");
        let canonical = canonical_request(
            &req(&h, b"{}"),
            &["content-type", "host", "x-amz-date", "x-amz-target"],
            &hex::encode(Sha256::digest(b"{}")),
        )
        .unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "8b280f02ffb1b86a3d4e369763bab8dd8e423ed532fc13f6d7e769f5043c8ce3"
        );
    }

    #[test]
    fn the_streamed_hash_is_the_hash_of_the_canonical_request() {
        let mut h = http::HeaderMap::new();
        h.insert("host", "example.amazonaws.com".parse().unwrap());
        h.insert("x-amz-date", "20240115T120000Z".parse().unwrap());
        h.append("x-multi", "  a   b ".parse().unwrap());
        h.append("x-multi", "c\t\td".parse().unwrap());
        h.append("x-multi", "e".parse().unwrap());
        h.insert("x-spaced", "  one   two  three ".parse().unwrap());
        let signed: Vec<String> = ["host", "x-amz-date", "x-multi", "x-spaced"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        for (path, query) in [("/", ""), ("/a/./b/../c%20d/", "b=2&a=1&a=0&x=a%20b")] {
            let r = SignedRequest {
                method: "GET",
                path,
                query,
                headers: &h,
                body: b"",
            };
            let text = canonical_request(&r, &signed, "e3b0").unwrap();
            assert!(
                text.contains("x-multi:a b,c d,e\nx-spaced:one two three\n\nhost;"),
                "{text}"
            );
            let streamed = canonical_request_hash(&r, &signed, "e3b0").unwrap();
            assert_eq!(
                streamed.as_slice(),
                Sha256::digest(text.as_bytes()).as_slice()
            );
        }
    }

    #[test]
    fn kat2_session_token_canonical_request_matches() {
        let mut h = kat_headers(
            "6067d011bfb41c723fc03b0b7080ea3fd6d4cb02ec3310c273460c42f82f4fa0",
            "content-type;host;x-amz-date;x-amz-security-token;x-amz-target",
        );
        h.insert(
            "x-amz-security-token",
            "FQoGZXIvYXdzEXAMPLETOKEN".parse().unwrap(),
        );
        let signed: Vec<String> = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
            .split(';')
            .map(str::to_string)
            .collect();
        let canonical = canonical_request(
            &req(&h, b"{}"),
            &signed,
            &hex::encode(Sha256::digest(b"{}")),
        )
        .unwrap();
        assert_eq!(
            hex::encode(Sha256::digest(canonical.as_bytes())),
            "7f3c92bbcf802ec3c474c8c0e985170d330edd70b24c6b236909caa950e0e91f"
        );
        let key = aws_sigv4::sign::v4::generate_signing_key(
            KAT_SECRET,
            UNIX_EPOCH + Duration::from_secs(1_705_320_000),
            "us-east-1",
            "aws-marketplace",
        );
        let sts = format!("AWS4-HMAC-SHA256\n20240115T120000Z\n20240115/us-east-1/aws-marketplace/aws4_request\n{}", hex::encode(Sha256::digest(canonical.as_bytes())));
        assert_eq!(
            aws_sigv4::sign::v4::calculate_signature(key, sts.as_bytes()),
            "6067d011bfb41c723fc03b0b7080ea3fd6d4cb02ec3310c273460c42f82f4fa0"
        );
    }

    #[test]
    fn kat3_changed_body_does_not_verify() {
        let h = kat_headers(
            "7209877dfb823e860e200611680cbee0c382b39fe8ef982f0ff907cf9825baa2",
            "content-type;host;x-amz-date;x-amz-target",
        );
        let err = verifier().verify(&req(&h, b"{ }"), NOW).unwrap_err();
        assert!(
            matches!(err, AuthError::InvalidSignature(m) if m.starts_with("The request signature we calculated"))
        );
    }

    #[test]
    fn clock_skew_messages_match_aws() {
        let h = kat_headers(
            "7209877dfb823e860e200611680cbee0c382b39fe8ef982f0ff907cf9825baa2",
            "content-type;host;x-amz-date;x-amz-target",
        );
        let err = verifier()
            .verify(&req(&h, b"{}"), 1_705_320_000_000 + 5 * 60_000 + 1000)
            .unwrap_err();
        assert_eq!(err, AuthError::InvalidSignature("Signature expired: 20240115T120000Z is now earlier than 20240115T120001Z (20240115T120501Z - 5 min.)".into()));
        let err = verifier()
            .verify(&req(&h, b"{}"), 1_705_320_000_000 - 5 * 60_000 - 1000)
            .unwrap_err();
        assert_eq!(err, AuthError::InvalidSignature("Signature not yet current: 20240115T120000Z is still later than 20240115T115959Z (20240115T115459Z + 5 min.)".into()));
    }

    #[test]
    fn malformed_headers_get_incomplete_signature() {
        let mut h = kat_headers("x", "host");
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA512 Credential=a, SignedHeaders=host, Signature=b"
                .parse()
                .unwrap(),
        );
        assert_eq!(
            verifier().verify(&req(&h, b"{}"), NOW).unwrap_err(),
            AuthError::IncompleteSignature(
                "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'.".into()
            )
        );
        // Parameters before the algorithm: a header that is not SigV4 at all reads as incomplete.
        for bad in ["X", "Bearer abc", "AWS AKIAIOSFODNN7EXAMPLE:sig"] {
            h.insert("authorization", bad.parse().unwrap());
            assert_eq!(
                verifier().verify(&req(&h, b"{}"), NOW).unwrap_err(),
                AuthError::IncompleteSignature(format!(
                    "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization={bad}"
                )),
                "{bad}"
            );
        }
        h.insert(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE, SignedHeaders=host, Signature=abc"
                .parse()
                .unwrap(),
        );
        assert!(
            matches!(verifier().verify(&req(&h, b"{}"), NOW).unwrap_err(), AuthError::IncompleteSignature(m) if m.starts_with("Credential must have exactly 5"))
        );
        h.insert("authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240115/us-east-1/aws-marketplace/aws4_request".parse().unwrap());
        assert!(
            matches!(verifier().verify(&req(&h, b"{}"), NOW).unwrap_err(), AuthError::IncompleteSignature(m) if m.starts_with("Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."))
        );
        let empty = http::HeaderMap::new();
        assert_eq!(
            verifier().verify(&req(&empty, b"{}"), NOW).unwrap_err(),
            AuthError::MissingAuthenticationToken
        );
    }

    #[test]
    fn scope_is_checked_before_the_key() {
        let mut h = kat_headers("0", "content-type;host;x-amz-date;x-amz-target");
        h.insert("authorization", "AWS4-HMAC-SHA256 Credential=UNKNOWNKEY/20240115/us-east-1/execute-api/aws4_request, SignedHeaders=host;x-amz-date, Signature=0".parse().unwrap());
        assert_eq!(
            verifier().verify(&req(&h, b"{}"), NOW).unwrap_err(),
            AuthError::InvalidSignature(
                "Credential should be scoped to correct service: 'aws-marketplace'. ".into()
            )
        );
        h.insert("authorization", "AWS4-HMAC-SHA256 Credential=UNKNOWNKEY/20240114/us-east-1/aws-marketplace/aws4_request, SignedHeaders=host;x-amz-date, Signature=0".parse().unwrap());
        assert!(
            matches!(verifier().verify(&req(&h, b"{}"), NOW).unwrap_err(), AuthError::InvalidSignature(m) if m.starts_with("Date in Credential scope does not match"))
        );
        h.insert("authorization", "AWS4-HMAC-SHA256 Credential=UNKNOWNKEY/20240115/us-east-1/aws-marketplace/aws4_request, SignedHeaders=x-amz-date, Signature=0".parse().unwrap());
        assert!(
            matches!(verifier().verify(&req(&h, b"{}"), NOW).unwrap_err(), AuthError::InvalidSignature(m) if m.starts_with("'Host'"))
        );
        h.insert("authorization", "AWS4-HMAC-SHA256 Credential=UNKNOWNKEY/20240115/us-east-1/aws-marketplace/aws4_request, SignedHeaders=host;x-amz-date, Signature=0".parse().unwrap());
        assert_eq!(
            verifier().verify(&req(&h, b"{}"), NOW).unwrap_err(),
            AuthError::UnrecognizedClient
        );
    }

    #[test]
    fn canonical_uri_and_query() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/a/./b/../c"), "/a/c");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("x=a%20b"), "x=a%20b");
    }
}
