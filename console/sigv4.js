// AWS Signature Version 4 for awsJson and restJson requests, computed in the browser with WebCrypto.
// The console signs every call exactly as an SDK would, so it exercises the public API, its
// authentication and its errors (nothing here is console-specific on the server).

const enc = new TextEncoder();

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text) {
  return hex(await crypto.subtle.digest("SHA-256", enc.encode(text)));
}

async function hmac(key, text) {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(text)));
}

/** `20260101T000000Z` and `20260101` for a Date. */
export function amzDates(date) {
  const iso = date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  return { amzDate: iso, dateStamp: iso.slice(0, 8) };
}

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves !'()* alone). */
export function uriEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The canonical query string of a URL: each name and value encoded, sorted by name then value. */
export function canonicalQuery(url) {
  const pairs = [...new URL(url).searchParams].map(([k, v]) => [uriEncode(k), uriEncode(v)]);
  pairs.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join("&");
}

/**
 * Headers for a signed request of `body` to `url` (POST unless `method` says otherwise; the
 * query string, if any, is signed as the URL carries it).
 * creds: { accessKeyId, secretAccessKey, sessionToken? }; headers: lower-case name -> value
 * (content-type, x-amz-target); the browser sends Host itself, so it is signed, not set.
 */
export async function signedHeaders({ method = "POST", url, headers, body = "", creds, region, service, date = new Date() }) {
  if (!globalThis.crypto || !crypto.subtle) {
    throw new Error(
      "This browser offers no WebCrypto here: open the console over https or on localhost (127.0.0.1).",
    );
  }
  const u = new URL(url);
  const { amzDate, dateStamp } = amzDates(date);
  const all = { ...headers, host: u.host, "x-amz-date": amzDate };
  if (creds.sessionToken) all["x-amz-security-token"] = creds.sessionToken;
  const names = Object.keys(all).map((n) => n.toLowerCase()).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(all[n]).trim().replace(/\s+/g, " ")}\n`).join("");
  const signed = names.join(";");
  const canonical = [method, u.pathname || "/", canonicalQuery(url), canonicalHeaders, signed, await sha256Hex(body)].join("\n");
  const scope = `${dateStamp}/${region}/${service}/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, await sha256Hex(canonical)].join("\n");
  let key = await hmac(enc.encode(`AWS4${creds.secretAccessKey}`), dateStamp);
  key = await hmac(key, region);
  key = await hmac(key, service);
  key = await hmac(key, "aws4_request");
  const signature = hex(await hmac(key, toSign));
  const out = { ...all };
  delete out.host;
  out.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signed}, Signature=${signature}`;
  return out;
}
