// Change requests: every Catalog change set of the seller, newest first, with its changes and
// per-change errors; one change request followed to its end (and cancelled while preparing);
// the findings behind a SCAN_ERROR.

import {
  h, show, badge, alertBox, when, readable, catalog, call, poll, pagesOf, pager, CATALOG, LABEL,
} from "./lib.js";

const STATUSES = ["PREPARING", "APPLYING", "SUCCEEDED", "FAILED", "CANCELLED"];

export function inFlight(s) {
  return s.Status === "PREPARING" || s.Status === "APPLYING";
}

function describe(id) {
  return catalog("DescribeChangeSet", { method: "GET", query: { catalog: CATALOG, changeSetId: id } });
}

/** DescribeChangeSet of each summary, by id (the list has no changes or errors). */
export async function describeAll(summaries) {
  const got = await Promise.all(summaries.map((s) => describe(s.ChangeSetId)));
  return Object.fromEntries(got.map((d) => [d.ChangeSetId, d]));
}

function bareId(identifier) {
  return String(identifier || "").split("@")[0];
}

function entityLink(c) {
  const id = bareId(c.Entity?.Identifier);
  if (!id || id.startsWith("$")) return h("span", { class: "muted" }, "new product");
  return c.Entity.Type?.startsWith("AmiProduct") ? h("a", { href: `#/products/${id}` }, h("code", {}, id)) : h("code", {}, id);
}

function errorList(set, c, i) {
  const errors = c.ErrorDetailList || [];
  if (!errors.length) return null;
  return h("ul", { class: "errors" }, ...errors.map((e) => h("li", {},
    h("code", {}, e.ErrorCode), " ",
    e.ErrorCode === "SCAN_ERROR" && /^https?:\/\//.test(e.ErrorMessage)
      ? h("a", { href: `#/changes/${set.ChangeSetId}/findings/${i}` }, "View the findings of the scan")
      : e.ErrorMessage)));
}

export function setsTable(summaries, described, caption) {
  const rows = summaries.map((s) => {
    const d = described[s.ChangeSetId] || { ChangeSet: [] };
    return h("tr", { "data-change-set": s.ChangeSetId },
      h("td", {}, h("a", { href: `#/changes/${s.ChangeSetId}` }, s.ChangeSetName || s.ChangeSetId), h("p", { class: "muted" }, h("code", {}, s.ChangeSetId))),
      h("td", {}, badge(s.Status), d.Intent === "VALIDATE" ? h("p", { class: "muted" }, "Test run") : null,
        s.FailureCode ? h("p", { class: "muted" }, s.FailureCode) : null),
      h("td", {}, h("ul", { class: "plain" }, ...d.ChangeSet.map((c) => h("li", {}, c.ChangeType, " · ", entityLink(c))))),
      h("td", {}, ...d.ChangeSet.map((c, i) => errorList(d, c, i)).filter(Boolean), d.ChangeSet.some((c) => c.ErrorDetailList?.length) ? null : "—"),
      h("td", {}, when(s.StartTime)),
      h("td", {}, s.EndTime ? when(s.EndTime) : "—"));
  });
  return h("div", { class: "table-wrap" }, h("table", { class: "change-sets" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ...["Change request", "Status", "Changes", "Errors", "Started", "Ended"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6 }, "No change requests.")))));
}

// ---------------------------------------------------------------- the list

export async function changeRequests(params) {
  const status = params.get("status") || "";
  const product = params.get("product") || "";
  const tokens = pagesOf(params);
  const filters = [];
  if (status) filters.push({ Name: "Status", ValueList: [status] });
  if (product) filters.push({ Name: "EntityId", ValueList: [product] });
  const page = await catalog("ListChangeSets", {
    body: {
      ...(filters.length ? { FilterList: filters } : {}),
      Sort: { SortBy: "StartTime", SortOrder: "DESCENDING" }, MaxResults: 10,
      ...(tokens.length ? { NextToken: tokens[tokens.length - 1] } : {}),
    },
  });
  const list = page.ChangeSetSummaryList || [];
  const described = await describeAll(list);
  const base = `#/changes?${product ? `product=${encodeURIComponent(product)}&` : ""}`;
  const input = h("input", { id: "product-filter", value: product, spellcheck: "false", placeholder: "prod-…" });
  const form = h("form", { class: "search", role: "search" },
    h("label", { for: "product-filter" }, "Product ID"), input, h("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = input.value.trim();
    location.hash = `#/changes?${status ? `status=${status}&` : ""}${v ? `product=${encodeURIComponent(v)}` : ""}`;
  });
  show(h("h1", {}, "Change requests"), h("div", { id: "page-error" }),
    h("nav", { class: "chips", "aria-label": "Filter by status" },
      ["", ...STATUSES].map((v) => h("a", { class: v === status ? "chip active" : "chip", href: `${base}${v ? `status=${v}` : ""}` }, v ? LABEL[v] : "All"))),
    form,
    setsTable(list, described, product ? `Change requests of ${product}, newest first` : "Your change requests, newest first"),
    pager(`${base}${status ? `status=${status}&` : ""}`, tokens, page.NextToken));
  if (list.some(inFlight)) poll(() => changeRequests(params), { backoff: true });
}

// ---------------------------------------------------------------- one change request

export async function changeRequest(id) {
  let s;
  try {
    s = await describe(id);
  } catch (e) {
    if (e.code !== "ResourceNotFoundException") throw e;
    show(h("h1", {}, "Change request not found"), alertBox("error", "No such change request", readable(e)),
      h("a", { href: "#/changes" }, "All change requests"));
    return;
  }
  const created = s.Status === "SUCCEEDED" && s.Intent !== "VALIDATE"
    ? s.ChangeSet.find((c) => c.ChangeType === "CreateProduct") : null;
  const parts = [
    h("p", {}, h("a", { href: "#/changes" }, "← Change requests")),
    h("div", { class: "page-head" }, h("h1", {}, s.ChangeSetName || "Change request"), h("span", { id: "change-status" }, badge(s.Status))),
    h("div", { id: "page-error" }),
    h("dl", { class: "review" },
      h("dt", {}, "Change request ID"), h("dd", {}, h("code", { id: "change-set-id" }, s.ChangeSetId)),
      h("dt", {}, "Intent"), h("dd", {}, s.Intent === "VALIDATE" ? "Test only (VALIDATE): checks everything, changes nothing" : "Apply"),
      h("dt", {}, "Started"), h("dd", {}, when(s.StartTime)),
      h("dt", {}, "Ended"), h("dd", {}, s.EndTime ? when(s.EndTime) : "—")),
    outcome(s),
    created ? h("p", {}, h("a", { class: "button primary", href: `#/products/${bareId(created.Entity.Identifier)}` }, "Open the new product")) : null,
    s.Status === "PREPARING" ? cancelForm(s) : null,
    h("h2", {}, "Changes"),
    h("ol", { class: "changes" }, ...s.ChangeSet.map((c, i) => h("li", { class: "card" },
      h("h3", {}, c.ChangeType, " · ", entityLink(c)),
      errorList(s, c, i),
      h("details", {}, h("summary", {}, "Details sent"), h("pre", {}, JSON.stringify(c.DetailsDocument, null, 2)))))),
  ];
  show(...parts);
  if (inFlight(s)) poll(() => changeRequest(id), { backoff: true });
}

function outcome(s) {
  const review = s.Status === "APPLYING" && s.ChangeSet.some((c) => c.ChangeType === "UpdateVisibility");
  if (review) {
    return alertBox("info", "Awaiting review",
      "AWS Marketplace Seller Operations reviews every visibility change before it applies. This page updates when the review ends.");
  }
  if (inFlight(s)) {
    return alertBox("info", `${LABEL[s.Status]}…`, s.Status === "PREPARING"
      ? "AWS Marketplace is checking the request (scanning AMIs, test-building packages). You can cancel it until it starts applying."
      : "The changes are being applied. This page updates when they are done.");
  }
  if (s.Status === "SUCCEEDED") {
    return alertBox("success", s.Intent === "VALIDATE" ? "The test passed" : "Applied",
      s.Intent === "VALIDATE" ? "Every check passed; nothing was changed." : "Every change of this request is in effect.");
  }
  if (s.Status === "CANCELLED") return alertBox("info", "Cancelled", "Nothing of this request was applied.");
  return alertBox("error", `Failed (${s.FailureCode || "unknown"})`,
    s.FailureDescription || "The change request failed.",
    s.FailureCode === "SERVER_FAULT" ? "This was a fault of the service, not of the request: submit it again." : "Fix what each change's errors say, then submit a new change request.");
}

function cancelForm(s) {
  const out = h("div", { "aria-live": "polite" });
  const button = h("button", { type: "button" }, "Cancel change request");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await catalog("CancelChangeSet", { method: "PATCH", query: { catalog: CATALOG, changeSetId: s.ChangeSetId } });
      await changeRequest(s.ChangeSetId);
    } catch (e) {
      out.replaceChildren(alertBox("error", "The change request could not be cancelled", readable(e)));
      button.disabled = false;
    }
  });
  return h("div", { class: "actions start" }, button, out);
}

// ---------------------------------------------------------------- findings of a SCAN_ERROR

/**
 * The findings behind change `index`'s SCAN_ERROR: the scan of its AMI that the change request
 * started (the first one of that AMI since the request began), else the findings file itself.
 */
export async function findings(id, index) {
  const s = await describe(id);
  const c = s.ChangeSet[index];
  const ami = c?.DetailsDocument?.DeliveryOptions?.[0]?.Details?.AmiDeliveryOptionDetails?.AmiSource?.AmiId;
  if (ami) {
    const since = Date.parse(s.StartTime) / 1000 - 1;
    const got = await call("scan", "DescribeScans", { Filters: [{ Name: "image-id", Values: [ami] }], MaxResults: 100 });
    const scan = (got.Scans || []).filter((x) => x.StartTime >= since).sort((a, b) => a.StartTime - b.StartTime)[0];
    if (scan) {
      location.replace(`#/scans/${scan.ScanId}`);
      return;
    }
  }
  const url = (c?.ErrorDetailList || []).find((e) => e.ErrorCode === "SCAN_ERROR")?.ErrorMessage;
  const resp = url ? await fetch(url, { cache: "no-store", credentials: "omit" }) : null;
  const list = resp && resp.ok ? await resp.json() : [];
  show(h("p", {}, h("a", { href: `#/changes/${id}` }, "← Change request")),
    h("h1", {}, "Findings of the test build's scan"),
    h("ul", { class: "errors" }, ...list.map((f) => h("li", {}, h("code", {}, f.ErrorCode), " ", f.ErrorMessage))),
    list.length ? null : alertBox("error", "The findings are no longer available", "Findings are kept for 60 days."));
}
