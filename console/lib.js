// Shared pieces of the console's pages: DOM helpers, the signed API calls (awsJson for builds
// and scans, restJson for the Catalog API), readable errors, the session and polling. Every
// call is SigV4-signed in this page; credentials live in sessionStorage.

import { signedHeaders } from "./sigv4.js";

const SERVICE = "aws-marketplace";
const PREFIX = { build: "AWSMPImageBuilding", scan: "AWSMPAmiScanning" };
export const POLL_MS = 1500;
export const ROLE_PATTERN = /^arn:aws:iam::\d{12}:role\/[a-zA-Z_0-9+=,.@\-_/]+$/;
export const USER_PATTERN = /^[a-zA-Z][a-zA-Z0-9_-]{0,31}$/;
export const LABEL = {
  Ingesting: "Ingesting", Scanning: "Scanning", Succeeded: "Succeeded", IssuesFound: "Issues found",
  IngestionFailed: "Ingestion failed", Failed: "Failed", InternalError: "Internal error",
  InProgress: "In progress",
  Draft: "Staging", Limited: "Limited", Public: "Public", Restricted: "Restricted",
  PREPARING: "Preparing", APPLYING: "Applying", SUCCEEDED: "Succeeded", FAILED: "Failed", CANCELLED: "Cancelled",
};

// ---------------------------------------------------------------- DOM helpers

/** Creates an element: h("a", {href: "#"}, "text", child). Text is never parsed as HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export const main = () => document.getElementById("main");

/** Gives each cell its column's name, for the stacked layout of narrow screens. */
export function labelCells(root) {
  for (const table of root.querySelectorAll("table")) {
    const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.children].forEach((td, i) => {
        if (names[i] && td.colSpan === 1) td.setAttribute("data-label", names[i]);
      });
    }
  }
}

export function show(...nodes) {
  const m = main();
  m.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  labelCells(m);
}

export function badge(status, label = LABEL[status] || status) {
  return h("span", { class: `badge s-${status}` }, label);
}

export function alertBox(kind, title, ...body) {
  return h("div", { class: `alert ${kind}`, role: kind === "error" ? "alert" : "status" },
    h("strong", {}, title), ...body.map((b) => (typeof b === "string" ? h("p", {}, b) : b)));
}

export function when(ts) {
  if (!ts) return "—";
  const d = typeof ts === "number" ? new Date(ts * 1000) : new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function focusHeading() {
  const h1 = main().querySelector("h1");
  if (h1) {
    h1.setAttribute("tabindex", "-1");
    h1.focus();
  }
}

// ---------------------------------------------------------------- API

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** What a person should read for an error of the API (or of the network). */
export function readable(e) {
  const code = e && e.code;
  const msg = (e && e.message) || String(e);
  if (code === "UnrecognizedClientException") {
    return "The access key ID is not known to this service. Check it and sign in again.";
  }
  if ((code === "InvalidSignatureException" || code === "SignatureDoesNotMatch") && /expired|earlier than|later than/i.test(msg)) {
    return "Your computer's clock and the service's differ by more than 5 minutes, so the request's signature was refused as expired. Set the clock right and try again.";
  }
  if (code === "InvalidSignatureException" || code === "SignatureDoesNotMatch") {
    return "The signature does not match: check the secret access key and sign in again.";
  }
  if (code === "ExpiredTokenException") return "The session token has expired. Sign in with fresh credentials.";
  if (code === "UnauthorizedOperationException" || code === "AccessDeniedException") {
    return `You are not allowed to do this: ${msg}`;
  }
  if (code === "NetworkError") return msg;
  if (code === "ResourceInUseException" && lockedBy(msg)) {
    return `Another change request (${lockedBy(msg)}) is in progress for this product; a product takes one change request at a time. Wait for it to end, or cancel it while it is preparing.`;
  }
  if (code === "ThrottlingException") return "The service is busy (rate exceeded). Try again in a moment.";
  if (code) return `${msg} (${code})`;
  return msg;
}

export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem("imagebuild.credentials") || "null");
    } catch {
      return null;
    }
  },
  set(c) {
    sessionStorage.setItem("imagebuild.credentials", JSON.stringify(c));
  },
  clear() {
    sessionStorage.removeItem("imagebuild.credentials");
  },
};

export async function call(service, op, input = {}, creds = session.get()) {
  if (!creds) throw new ApiError("NotSignedIn", "Sign in first.", 0);
  const url = new URL("/", location.href).toString();
  const body = JSON.stringify(input);
  const headers = await signedHeaders({
    url,
    body,
    creds,
    region: creds.region,
    service: SERVICE,
    headers: { "content-type": "application/x-amz-json-1.1", "x-amz-target": `${PREFIX[service]}.${op}` },
  });
  return send(url, { method: "POST", headers, body });
}

export const CATALOG = "AWSMarketplace";

/**
 * One call of the Catalog API (restJson1): `POST /<Op>` with a JSON body, or GET/PATCH with the
 * query members. Errors come back as ApiError with the code of `X-Amzn-ErrorType`.
 */
export async function catalog(op, { method = "POST", query, body } = {}, creds = session.get()) {
  if (!creds) throw new ApiError("NotSignedIn", "Sign in first.", 0);
  const u = new URL(`/${op}`, location.href);
  for (const [k, v] of Object.entries(query || {})) u.searchParams.set(k, v);
  const url = u.toString();
  const text = body === undefined ? "" : JSON.stringify({ Catalog: CATALOG, ...body });
  const headers = await signedHeaders({
    method, url, body: text, creds, region: creds.region, service: SERVICE,
    headers: text ? { "content-type": "application/json" } : {},
  });
  return send(url, { method, headers, body: text || undefined });
}

/**
 * An answer that arrived after the page it was for was left (another page began meanwhile): the
 * page that asked must not render it over the new one.
 */
export class Superseded extends Error {}

async function send(url, init) {
  const seq = routeSeq;
  let resp;
  try {
    resp = await fetch(url, { ...init, cache: "no-store", credentials: "omit" });
  } catch (e) {
    throw new ApiError("NetworkError", `The service did not answer (${e.message}). Is it running?`, 0);
  }
  const text = await resp.text();
  if (seq !== routeSeq) throw new Superseded("The page changed while this request was answered.");
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!resp.ok) {
    const type = String(resp.headers.get("x-amzn-errortype") || data.__type || `HTTP${resp.status}`);
    const code = type.split("#").pop().split(":")[0];
    throw new ApiError(code, data.message || data.Message || resp.statusText, resp.status);
  }
  return data;
}

/**
 * The field a Catalog ValidationException names: the last name of its `#/path` (or of
 * `required key [Name] not found`), e.g. `AmiId` for
 * `ChangeSet[0].Details: AddDeliveryOptions: #/DeliveryOptions/0/…/AmiSource/AmiId: …`.
 */
export function fieldOf(message) {
  const m = /#(\/[^:\s]*):\s*(.*)$/.exec(String(message || ""));
  if (!m) return null;
  const missing = /required key \[(\w+)\] not found/.exec(m[2]);
  if (missing) return missing[1];
  const names = m[1].split("/").filter((x) => x && !/^\d+$/.test(x));
  return names.length ? names[names.length - 1] : null;
}

/** The change set that holds an entity, from the 423 message (`… change sets: <id>`). */
export function lockedBy(message) {
  return /change sets: (\w{25})/.exec(String(message || ""))?.[1] || null;
}

/** Every page of a paginated call (at most `limit` pages). */
export async function all(service, op, input, key, limit = 20) {
  const out = [];
  let token;
  for (let i = 0; i < limit; i += 1) {
    const page = await call(service, op, token ? { ...input, NextToken: token } : input);
    out.push(...(page[key] || []));
    token = page.NextToken;
    if (!token) break;
  }
  return out;
}

// ---------------------------------------------------------------- polling

let pollTimer = null;
let routeSeq = 0;
let pollCount = 0;

/** A new page: polls of the page before stop, and back-off starts over. */
export function beginRoute() {
  routeSeq += 1;
  pollCount = 0;
  clearTimeout(pollTimer);
  return routeSeq;
}

/** True while the page begun as `seq` is still the one shown. */
export function isCurrent(seq) {
  return seq === routeSeq;
}

/** Stops polling (the page shows something that no longer changes). */
export function stopPolling() {
  clearTimeout(pollTimer);
}

/** Runs `fn` once more after POLL_MS (or, with `backoff`, 1 s growing by half each time up to 8 s). */
export function poll(fn, { backoff = false } = {}) {
  clearTimeout(pollTimer);
  const seq = routeSeq;
  const delay = backoff ? Math.min(1000 * 1.5 ** pollCount, 8000) : POLL_MS;
  pollCount += 1;
  pollTimer = setTimeout(() => {
    if (seq === routeSeq) fn().catch(showError);
  }, delay);
}

export function showError(e) {
  if (e instanceof Superseded) return;
  const region = document.getElementById("page-error");
  if (!region) return;
  region.replaceChildren(alertBox("error", "Something went wrong", readable(e)));
}

export function clearError() {
  const region = document.getElementById("page-error");
  if (region) region.replaceChildren();
}


/** Paging tokens kept in the hash, encoded once so `+` and `/` survive URLSearchParams. */
export function pagesOf(params) {
  return (params.get("pages") || "").split(",").filter(Boolean);
}

export function pager(base, tokens, next) {
  const href = (t) => `${base}pages=${encodeURIComponent(t.join(","))}`;
  return h("nav", { class: "pager", "aria-label": "Pages" },
    tokens.length ? h("a", { class: "button", href: href(tokens.slice(0, -1)) }, "Previous page") : null,
    h("span", { class: "muted" }, `Page ${tokens.length + 1}`),
    next ? h("a", { class: "button", href: href([...tokens, next]) }, "Next page") : null);
}

/** A page's empty state: what is missing, why it matters, and the one action that starts it. */
export function emptyState(title, text, href, action) {
  return h("section", { class: "card empty", "aria-labelledby": "empty-title" },
    h("h2", { id: "empty-title" }, title),
    h("p", {}, text),
    h("a", { class: "button primary", href }, action));
}

export function fieldError(id, text) {
  return h("p", { id, class: "field-error", role: "alert" }, text);
}
