//! The console (`/console/`: Manage AMIs, builds, Server products and change requests): a static page embedded in the binary, which signs
//! every API call itself (SigV4 with WebCrypto) and so uses only the public API. The server
//! only hands out the files, with a Content-Security-Policy that allows nothing but this origin.
//!
//! Depends on: nothing crate-internal.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use hyper::{Method, Response, StatusCode};

/// Where the console lives.
pub const PREFIX: &str = "/console";

/// A script of the console: its name and text.
macro_rules! script {
    ($name:literal) => {
        (
            $name,
            "text/javascript; charset=utf-8",
            include_str!(concat!("../console/", $name)),
        )
    };
}

const ASSETS: [(&str, &str, &str); 9] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../console/index.html"),
    ),
    script!("app.js"),
    script!("lib.js"),
    script!("sigv4.js"),
    script!("products.js"),
    script!("changes.js"),
    script!("forms.js"),
    script!("buy.js"),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../console/app.css"),
    ),
];

/// The page's icon, also served at `/favicon.ico` for clients that ask there unprompted.
const FAVICON: &str = include_str!("../console/favicon.svg");
/// Where browsers look for an icon when a page declares none.
pub const FAVICON_PATH: &str = "/favicon.ico";

/// Same origin only: no CDNs, no inline script, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// True for paths the console answers.
#[must_use]
pub fn owns(path: &str) -> bool {
    path == PREFIX || path.starts_with("/console/") || path == FAVICON_PATH
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Serves one console request (GET or HEAD).
#[must_use]
pub fn handle(method: &Method, path: &str) -> Response<Full<Bytes>> {
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
        r.headers_mut()
            .insert("allow", HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    if path == PREFIX {
        let mut r = plain(StatusCode::PERMANENT_REDIRECT, "");
        r.headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/console/"));
        return r;
    }
    let name = match path.trim_start_matches("/console/") {
        "" => "index.html",
        FAVICON_PATH | "favicon.svg" => "favicon.svg",
        other => other,
    };
    let found = ASSETS
        .iter()
        .chain(&[("favicon.svg", "image/svg+xml", FAVICON)])
        .find(|(n, _, _)| *n == name)
        .copied();
    let Some((_, content_type, body)) = found else {
        return plain(StatusCode::NOT_FOUND, "Not found\n");
    };
    let body = if method == Method::HEAD { "" } else { body };
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_the_embedded_files_with_a_strict_policy() {
        let r = handle(&Method::GET, "/console/");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("connect-src 'self'"));
        assert_eq!(
            handle(&Method::GET, "/console/app.js").status(),
            StatusCode::OK
        );
        assert_eq!(
            handle(&Method::GET, "/console").status(),
            StatusCode::PERMANENT_REDIRECT
        );
        assert_eq!(
            handle(&Method::GET, "/console/../Cargo.toml").status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            handle(&Method::POST, "/console/").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
        assert!(owns("/console") && owns("/console/app.css") && !owns("/consoles"));
        for p in ["/favicon.ico", "/console/favicon.svg"] {
            let r = handle(&Method::GET, p);
            assert_eq!(r.status(), StatusCode::OK, "{p}");
            assert_eq!(r.headers()["content-type"], "image/svg+xml", "{p}");
        }
        assert!(owns("/favicon.ico"));
    }

    #[test]
    fn assets_reference_nothing_outside_this_origin() {
        for (name, _, body) in ASSETS {
            for needle in ["http://", "https://", "//cdn", "@import"] {
                assert!(!body.contains(needle), "{name} mentions {needle}");
            }
        }
        // The icon names SVG's XML namespace, which is an identifier, not a request.
        let icon = FAVICON.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(!icon.contains("http") && !icon.contains("//"));
    }
}
