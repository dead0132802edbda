// Server products (seed 002): the seller's products with their status, versions, regions,
// allowlist, change requests and builds, and the page's change requests — each a Catalog API
// change set (`AmiProduct@1.0`) signed in this page, like every other call.

import {
  h, show, badge, alertBox, when, catalog, call, poll, pagesOf, pager, emptyState, CATALOG, LABEL,
} from "./lib.js";
import { setsTable, describeAll, inFlight } from "./changes.js";

const PAGE = 20;
const VISIBILITIES = ["Draft", "Limited", "Public", "Restricted"];
/** Marketplace's Managed Catalog Operations accounts, on every product's allowlist. */
export const MCO_ACCOUNTS = ["297512042063", "782858285006"];

/** Every delivery option of a product with its version and source. */
export function optionsOf(doc) {
  return (doc?.Versions || []).flatMap((v) => (v.DeliveryOptions || []).map((o) => ({
    version: v, option: o, source: (v.Sources || []).find((s) => s.Id === o.SourceId) || {},
  })));
}

export function entityDescribe(id) {
  return catalog("DescribeEntity", { method: "GET", query: { catalog: CATALOG, entityId: id } });
}

export function statusBadge(visibility) {
  return badge(visibility, LABEL[visibility] || visibility);
}

// ---------------------------------------------------------------- the list

export async function products(params) {
  const status = params.get("status") || "";
  const q = params.get("q") || "";
  const tokens = pagesOf(params);
  const filters = {};
  if (status) filters.Visibility = { ValueList: [status] };
  if (q) filters.ProductTitle = { WildCardValue: q };
  const page = await catalog("ListEntities", {
    body: {
      EntityType: "AmiProduct", MaxResults: PAGE,
      ...(Object.keys(filters).length ? { EntityTypeFilters: { AmiProductFilters: filters } } : {}),
      EntityTypeSort: { AmiProductSort: { SortBy: "LastModifiedDate", SortOrder: "DESCENDING" } },
      ...(tokens.length ? { NextToken: tokens[tokens.length - 1] } : {}),
    },
  });
  const list = page.EntitySummaryList || [];
  const head = h("div", { class: "page-head" }, h("h1", {}, "Server products"),
    h("a", { class: "button primary", href: "#/products/new" }, "Create product"));
  if (!list.length && !status && !q && !tokens.length) {
    show(head, h("div", { id: "page-error" }),
      emptyState("No server products yet",
        "Create a product, add a version from a scanned AMI or a software package, then release it to Limited for your allowlisted buyers.",
        "#/products/new", "Create product"));
    return;
  }
  const details = list.length
    ? (await catalog("BatchDescribeEntities", { body: { EntityRequestList: list.map((e) => ({ Catalog: CATALOG, EntityId: e.EntityId })) } })).EntityDetails || {}
    : {};
  show(head, h("div", { id: "page-error" }), productFilters(status, q), productTable(list, details),
    pager(`#/products?${status ? `status=${status}&` : ""}${q ? `q=${encodeURIComponent(q)}&` : ""}`, tokens, page.NextToken));
}

function productFilters(status, q) {
  const link = (v) => `#/products?${v ? `status=${v}` : ""}${q ? `${v ? "&" : ""}q=${encodeURIComponent(q)}` : ""}`;
  const search = h("input", { id: "product-search", type: "search", value: q, placeholder: "Part of a title" });
  const form = h("form", { class: "search", role: "search" },
    h("label", { for: "product-search" }, "Search by title"), search,
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = search.value.trim();
    location.hash = `#/products?${status ? `status=${status}&` : ""}${v ? `q=${encodeURIComponent(v)}` : ""}`;
  });
  return h("div", {},
    h("nav", { class: "chips", "aria-label": "Filter by status" },
      ["", ...VISIBILITIES].map((v) => h("a", { class: v === status ? "chip active" : "chip", href: link(v), "aria-current": v === status ? "true" : false },
        v ? LABEL[v] : "All"))),
    form);
}

function productTable(list, details) {
  const rows = list.map((e) => {
    const doc = details[e.EntityId]?.DetailsDocument || {};
    const options = optionsOf(doc);
    const restricted = options.filter((o) => o.option.Visibility === "Restricted").length;
    return h("tr", {},
      h("td", {}, h("a", { href: `#/products/${e.EntityId}` }, e.Name || e.AmiProductSummary?.ProductTitle || "Untitled")),
      h("td", {}, h("code", {}, e.EntityId)),
      h("td", {}, doc.Description?.ProductCode ? h("code", {}, doc.Description.ProductCode) : "—"),
      h("td", {}, statusBadge(e.Visibility)),
      h("td", { class: "num" }, options.length - restricted),
      h("td", { class: "num" }, restricted),
      h("td", {}, when(e.LastModifiedDate)));
  });
  return h("div", { class: "table-wrap" }, h("table", { id: "products-table" },
    h("caption", {}, "Your products, last changed first"),
    h("thead", {}, h("tr", {}, ...["Product title", "Product ID", "Product code", "Status", "Public versions", "Restricted versions", "Last change"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7 }, "No products match.")))));
}

// ---------------------------------------------------------------- one product

export async function productDetail(id) {
  let e;
  try {
    e = await entityDescribe(id);
  } catch (err) {
    if (err.code !== "ResourceNotFoundException") throw err;
    show(h("h1", {}, "Product not found"), alertBox("error", "No such product", `There is no product ${id} of this account.`),
      h("a", { href: "#/products" }, "Back to Server products"));
    return;
  }
  const doc = e.DetailsDocument || {};
  const [sets, builds] = await Promise.all([
    catalog("ListChangeSets", { body: { FilterList: [{ Name: "EntityId", ValueList: [id] }], Sort: { SortBy: "StartTime", SortOrder: "DESCENDING" }, MaxResults: 5 } }),
    call("build", "DescribeBuilds", { Filters: [{ Name: "product-id", Values: [id] }], MaxResults: 10 }),
  ]);
  const summaries = sets.ChangeSetSummaryList || [];
  const described = await describeAll(summaries);
  const d = doc.Description || {};
  const running = summaries.filter(inFlight);
  show(
    h("p", {}, h("a", { href: "#/products" }, "← Server products")),
    h("div", { class: "page-head" }, h("h1", {}, d.ProductTitle || "Untitled product"), statusBadge(d.Visibility)),
    h("div", { id: "page-error" }),
    ...running.map((s) => alertBox("info", "A change request is in progress",
      `${s.ChangeSetName} is ${LABEL[s.Status].toLowerCase()}${reviewing(described[s.ChangeSetId]) ? ": awaiting review by AWS Marketplace Seller Operations" : ""}. The product takes one change request at a time; this page updates when it ends.`,
      h("a", { href: `#/changes/${s.ChangeSetId}` }, "View the change request"))),
    overview(e, d),
    requestChanges(id, doc),
    ...versionsSection(id, doc),
    h("h2", {}, "Availability"),
    h("dl", { class: "review" },
      h("dt", {}, "Regions"), h("dd", {}, (doc.RegionAvailability?.Regions || []).join(", ") || "None"),
      h("dt", {}, "Restricted regions"), h("dd", {}, (doc.RegionAvailability?.Restrict || []).join(", ") || "None"),
      h("dt", {}, "Future regions"), h("dd", {}, doc.RegionAvailability?.FutureRegionSupport || "None"),
      h("dt", {}, "Allowlist (buyer accounts)"), h("dd", { id: "allowlist" }, (doc.Targeting?.PositiveTargeting?.BuyerAccounts || []).join(", ") || "None")),
    h("div", { class: "page-head" }, h("h2", {}, "Change requests"), h("a", { href: `#/changes?product=${id}` }, "All change requests of this product")),
    setsTable(summaries, described, "Latest change requests of this product"),
    h("h2", {}, "Builds"),
    buildsTable(builds.Builds || []));
  if (running.length) poll(() => productDetail(id), { backoff: true });
}

function reviewing(set) {
  return set && set.Status === "APPLYING" && set.ChangeSet.some((c) => c.ChangeType === "UpdateVisibility");
}

function overview(e, d) {
  const list = (x) => (Array.isArray(x) && x.length ? x.join(", ") : "—");
  return h("dl", { class: "review" },
    h("dt", {}, "Product ID"), h("dd", {}, h("code", { id: "product-id" }, e.EntityIdentifier.split("@")[0])),
    h("dt", {}, "Product code"), h("dd", {}, h("code", {}, d.ProductCode || "—")),
    h("dt", {}, "Revision"), h("dd", {}, e.EntityIdentifier.split("@")[1] || "—"),
    h("dt", {}, "Last change"), h("dd", {}, when(e.LastModifiedDate)),
    h("dt", {}, "Short description"), h("dd", {}, d.ShortDescription || "—"),
    h("dt", {}, "Long description"), h("dd", {}, d.LongDescription || "—"),
    h("dt", {}, "Highlights"), h("dd", {}, list(d.Highlights)),
    h("dt", {}, "Categories"), h("dd", {}, list(d.Categories)),
    h("dt", {}, "Search keywords"), h("dd", {}, list(d.SearchKeywords)));
}

function requestChanges(id, doc) {
  const draft = doc.Description?.Visibility === "Draft";
  const has = optionsOf(doc).length > 0;
  const items = [
    ["info", "Update product information"],
    ["add-version", "Add version"],
    has && ["update-version", "Update version information"],
    has && !draft && ["restrict-version", "Restrict version"],
    ["allowlist", "Update allowlist"],
    ["regions", "Add or restrict regions"],
    draft && ["release", "Release to Limited"],
    !draft && ["visibility", "Request Public or Restricted"],
  ].filter(Boolean);
  return h("section", { class: "card", "aria-labelledby": "request-title" },
    h("h2", { id: "request-title" }, "Request changes"),
    h("ul", { class: "actions-list" }, ...items.map(([k, t]) => h("li", {}, h("a", { class: "button", href: `#/products/${id}/change/${k}` }, t)))));
}

function versionsSection(id, doc) {
  const rows = optionsOf(doc).map(({ version: v, option: o, source: s }) => {
    const ami = o.Type === "AmazonMachineImage";
    const os = ami ? [s.OperatingSystem?.Name, s.OperatingSystem?.Version].filter(Boolean).join(" ") : (s.OperatingSystems || []).join(", ");
    const open = o.Visibility !== "Restricted";
    return h("tr", { "data-version": v.VersionTitle },
      h("td", {}, h("strong", {}, v.VersionTitle), h("p", { class: "muted" }, v.ReleaseNotes || "")),
      h("td", {}, ami ? "AMI" : "Software package", h("p", {}, h("code", {}, o.Id))),
      h("td", {}, h("code", {}, ami ? s.Image : s.Installer?.Url || "—"),
        h("p", { class: "muted" }, ami ? `${os} · user ${s.OperatingSystem?.Username || "—"} · port ${s.OperatingSystem?.ScanningPort ?? 22}`
          : `${s.Installer?.Type || ""} for ${s.Platform || ""} · built on ${os || "—"}`)),
      h("td", {}, ami ? o.Recommendations?.InstanceType || "—" : "—"),
      h("td", {}, badge(o.Visibility)),
      h("td", {}, ami ? h("span", { class: "muted" }, "Launched by buyers, not built")
        : open ? h("a", { href: `#/build?fo=${encodeURIComponent(o.Id)}&product=${id}&version=${encodeURIComponent(v.VersionTitle)}` }, `Build with ${v.VersionTitle}`)
          : h("span", { class: "muted" }, "Restricted: existing subscribers only")));
  });
  return [h("h2", {}, "Versions"),
    h("div", { class: "table-wrap" }, h("table", { id: "versions-table" },
      h("caption", {}, "Versions and their delivery options"),
      h("thead", {}, h("tr", {}, ...["Version", "Delivery option", "Source", "Recommended instance type", "Visibility", "Buyers"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 6 }, "No versions yet: add one from a scanned AMI or a software package.")))))];
}

export function buildsTable(list) {
  const rows = list.map((b) => h("tr", {},
    h("td", {}, h("a", { href: `#/builds/${b.BuildId}` }, h("code", {}, b.BuildId))),
    h("td", {}, badge(b.Status)),
    h("td", {}, (b.Products || []).map((p) => `${p.Title || p.Id} ${p.Version || ""}`.trim()).join(", ") || "—"),
    h("td", {}, b.DestinationImage?.Id ? h("code", {}, b.DestinationImage.Id) : "—"),
    h("td", {}, when(b.StartTime))));
  return h("div", { class: "table-wrap" }, h("table", {},
    h("caption", {}, "Your builds with this product"),
    h("thead", {}, h("tr", {}, ...["Build ID", "Status", "Products", "New AMI", "Started"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 5 }, "No builds with this product from this account.")))));
}
