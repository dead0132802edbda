// The console's entry and router, sign-in, and the pages of seed 000 (Manage AMIs, the
// four-step Add AMI wizard, issues and resubmission) and the subscriber's builds, over the public
// API only. Server products and change requests (seed 002) are in products.js and changes.js.

import {
  h, show, badge, alertBox, when, focusHeading, readable, session, call, all, poll, showError,
  fieldError, beginRoute, stopPolling, labelCells, LABEL, ROLE_PATTERN, USER_PATTERN, Superseded, isCurrent,
  pagesOf, pager, emptyState,
} from "./lib.js";
import { products, productDetail } from "./products.js";
import { changeForm } from "./forms.js";
import { changeRequests, changeRequest, findings } from "./changes.js";
import { buildFromVersion, buildDetail } from "./buy.js";

/** The pages of seed 002 and the buyer's build, by path: the first pattern that matches. */
const PAGES = [
  [/^\/products$/, (m, params) => products(params)],
  [/^\/products\/new$/, () => changeForm(null, "create")],
  [/^\/products\/([\w-]+)$/, (m) => productDetail(m[1])],
  [/^\/products\/([\w-]+)\/change\/([\w-]+)$/, (m) => changeForm(m[1], m[2])],
  [/^\/changes$/, (m, params) => changeRequests(params)],
  [/^\/changes\/(\w+)$/, (m) => changeRequest(m[1])],
  [/^\/changes\/(\w+)\/findings\/(\d+)$/, (m) => findings(m[1], Number(m[2]))],
  [/^\/build$/, (m, params) => buildFromVersion(params)],
  [/^\/builds\/([\w-]+)$/, (m) => buildDetail(m[1])],
];

/** The page of `path` in PAGES, started, or null. */
function otherPage(path, params) {
  for (const [pattern, open] of PAGES) {
    const m = pattern.exec(path);
    if (m) return open(m, params);
  }
  return null;
}

const MAX_AMIS = 25;
const STATUSES = ["Ingesting", "Scanning", "Succeeded", "IssuesFound", "IngestionFailed", "Failed", "InternalError"];
const FILTER_VALUE = {
  Ingesting: "ingesting", Scanning: "scanning", Succeeded: "succeeded", IssuesFound: "issues-found",
  IngestionFailed: "ingestion-failed", Failed: "failed", InternalError: "internal-error",
};

// ---------------------------------------------------------------- sign-in

function signIn(message) {
  document.getElementById("who").replaceChildren();
  document.getElementById("nav").hidden = true;
  const error = h("div", { id: "signin-error", "aria-live": "assertive" });
  if (message) error.append(alertBox("error", "Sign-in failed", message));
  const form = h("form", { class: "card narrow", novalidate: true },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "Use an access key of the service's accounts file (or the development key). The key stays in this tab's session storage."),
    h("label", { for: "access-key" }, "Access key ID"),
    h("input", { id: "access-key", name: "access-key", autocomplete: "username", required: true, spellcheck: "false" }),
    h("label", { for: "secret-key" }, "Secret access key"),
    h("input", { id: "secret-key", name: "secret-key", type: "password", autocomplete: "current-password", required: true }),
    h("label", { for: "session-token" }, "Session token (temporary credentials only)"),
    h("input", { id: "session-token", name: "session-token", autocomplete: "off" }),
    h("label", { for: "region" }, "Region"),
    h("input", { id: "region", name: "region", value: "us-east-1", required: true, spellcheck: "false" }),
    error,
    h("button", { type: "submit", class: "primary" }, "Sign in"),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const creds = {
      accessKeyId: form.querySelector("#access-key").value.trim(),
      secretAccessKey: form.querySelector("#secret-key").value,
      sessionToken: form.querySelector("#session-token").value.trim() || undefined,
      region: form.querySelector("#region").value.trim() || "us-east-1",
    };
    if (!creds.accessKeyId || !creds.secretAccessKey) {
      error.replaceChildren(alertBox("error", "Sign-in failed", "Enter both the access key ID and the secret access key."));
      return;
    }
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await call("scan", "DescribeScans", { MaxResults: 1 }, creds);
      session.set(creds);
      location.hash = "#/amis";
      route();
    } catch (e) {
      error.replaceChildren(alertBox("error", "Sign-in failed", readable(e)));
    } finally {
      button.disabled = false;
    }
  });
  show(form);
  form.querySelector("#access-key").focus();
}

// ---------------------------------------------------------------- Manage AMIs

async function counts() {
  const latest = await all("scan", "DescribeScans", { Filters: [{ Name: "latest-only", Values: ["true"] }], MaxResults: 256 }, "Scans");
  const by = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  for (const s of latest) by[s.Status] = (by[s.Status] || 0) + 1;
  return { total: latest.length, by };
}

function findingsSummary(c) {
  if (!c) return "—";
  const parts = [["Critical", c.Critical], ["High", c.High], ["Medium", c.Medium], ["Low", c.Low]]
    .filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k.toLowerCase()}`);
  return parts.length ? parts.join(", ") : "None";
}

async function manageAmis(params) {
  const status = params.get("status") || "";
  const tokens = pagesOf(params);
  const [c, page] = await Promise.all([
    counts(),
    call("scan", "DescribeScans", {
      Filters: [{ Name: "latest-only", Values: ["true"] }, ...(status ? [{ Name: "status", Values: [FILTER_VALUE[status]] }] : [])],
      MaxResults: 10,
      ...(tokens.length ? { NextToken: tokens[tokens.length - 1] } : {}),
    }),
  ]);
  const addButton = h("a", { class: "button primary", href: "#/amis/add" }, "Add AMI");
  const header = h("div", { class: "page-head" }, h("h1", {}, "Amazon Machine Images"), addButton);
  if (c.total === 0) {
    show(header, h("div", { id: "page-error" }),
      emptyState("No AMIs shared with AWS Marketplace yet",
        "Add AMIs from your account to have AWS Marketplace scan them for vulnerabilities and policy issues. Results typically arrive in less than an hour.",
        "#/amis/add", "Add AMI"));
    return;
  }
  const link = (s) => `#/amis?status=${encodeURIComponent(s)}`;
  const chips = h("nav", { class: "chips", "aria-label": "AMIs by status" },
    h("a", { href: "#/amis", class: status ? "chip" : "chip active", "aria-current": status ? false : "page" }, `All (${c.total})`),
    ...STATUSES.map((s) => h("a", { href: link(s), class: status === s ? "chip active" : "chip", "aria-current": status === s ? "page" : false },
      `${LABEL[s]} (${c.by[s]})`)));
  const alerts = [];
  if (c.by.IngestionFailed) {
    alerts.push(alertBox("warning", `${c.by.IngestionFailed} AMI(s) could not be ingested`,
      "AWS Marketplace could not copy them with the IAM access role given. Open the details, provide a role that works and resubmit.",
      h("a", { href: link("IngestionFailed") }, "Show AMIs with ingestion issues")));
  }
  if (c.by.IssuesFound) {
    alerts.push(alertBox("warning", `${c.by.IssuesFound} AMI(s) have scanning issues`,
      "Fix the issues in the AMI, then submit the new AMI.",
      h("a", { href: link("IssuesFound") }, "Show AMIs with issues found")));
  }
  if (c.by.Failed + c.by.InternalError) {
    alerts.push(alertBox("warning", `${c.by.Failed + c.by.InternalError} AMI(s) could not be scanned`,
      "Resubmit them; if the issue persists, contact AWS Marketplace Seller Operations.",
      h("a", { href: link("Failed") }, "Show failed AMIs")));
  }
  const rows = page.Scans.map((s) => h("tr", {},
    h("td", {}, h("code", {}, s.SourceImage.Id)),
    h("td", {}, s.SourceImage.Name || "—"),
    h("td", {}, badge(s.Status)),
    h("td", { class: "num" }, s.Attempt),
    h("td", {}, findingsSummary(s.FindingCounts)),
    h("td", {}, when(s.LastUpdateTime)),
    h("td", {}, h("a", { href: `#/scans/${s.ScanId}`, "aria-label": `View details of ${s.SourceImage.Id}` }, "View details"))));
  const pages = pager(`#/amis?${status ? `status=${encodeURIComponent(status)}&` : ""}`, tokens, page.NextToken);
  show(header, h("div", { id: "page-error" }), chips, ...alerts,
    h("div", { class: "table-wrap" }, h("table", {},
      h("caption", {}, status ? `AMIs whose latest scan is ${LABEL[status].toLowerCase()}` : "Your AMIs and their latest scan"),
      h("thead", {}, h("tr", {}, ...["AMI ID", "AMI name", "Status", "Attempt", "Findings", "Last updated", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7 }, "No AMIs with this status."))))),
    pages);
  if (page.Scans.some((s) => s.Status === "Ingesting" || s.Status === "Scanning")) {
    poll(() => manageAmis(params));
  }
}

// ---------------------------------------------------------------- Add AMI wizard

const STEPS = ["Select AMIs", "Specify AMI details", "Assign product ID", "Review and submit"];
let wizard = null;

function newWizard() {
  return { step: 0, images: null, selected: new Map(), role: "", port: "22", user: "ec2-user", productId: "", filter: "", token: null, error: null };
}

function stepNav() {
  return h("ol", { class: "steps", "aria-label": "Add AMI steps" },
    ...STEPS.map((s, i) => h("li", { class: i === wizard.step ? "current" : i < wizard.step ? "done" : "", "aria-current": i === wizard.step ? "step" : false },
      h("span", { class: "muted" }, `Step ${i + 1}`), " ", s)));
}

function wizardButtons({ next, nextLabel = "Next", disabled = false }) {
  return h("div", { class: "actions" },
    h("a", { class: "button link", href: "#/amis", onclick: () => { wizard = null; } }, "Cancel"),
    wizard.step > 0 ? h("button", { type: "button", onclick: () => { wizard.step -= 1; renderWizard(); } }, "Previous") : null,
    h("button", { type: "submit", class: "primary", disabled }, nextLabel));
}

async function addAmi() {
  if (!wizard) wizard = newWizard();
  if (!wizard.images) wizard.images = await all("scan", "ListImages", { MaxResults: 100 }, "Images");
  renderWizard();
}

function renderWizard() {
  stopPolling();
  const head = [h("h1", {}, "Add AMI"), stepNav(), h("div", { id: "page-error" })];
  const form = h("form", { class: "card", novalidate: true });
  const n = wizard.selected.size;
  if (wizard.step === 0) {
    const full = n >= MAX_AMIS;
    const q = wizard.filter.toLowerCase();
    const visible = wizard.images.filter((i) => !q || i.ImageId.includes(q) || (i.Name || "").toLowerCase().includes(q));
    const search = h("input", { id: "ami-search", type: "search", value: wizard.filter, placeholder: "Find by AMI ID or name" });
    search.addEventListener("input", () => {
      wizard.filter = search.value;
      renderWizard();
      const again = document.getElementById("ami-search");
      again.focus();
      again.setSelectionRange(again.value.length, again.value.length);
    });
    form.append(
      h("h2", {}, "Select AMIs"),
      h("p", {}, `Select the AMIs from your account to share with AWS Marketplace for scanning. You can select up to ${MAX_AMIS} AMIs.`),
      h("label", { for: "ami-search" }, "Find AMIs"), search,
      h("p", { id: "selected-count", class: full ? "limit" : "muted", "aria-live": "polite" },
        `${n} of ${MAX_AMIS} AMIs selected`, full ? ` — that is the most one submission can take; unselect an AMI to choose another.` : ""),
      wizard.images.length === 0
        ? h("p", {}, "Your account owns no AMIs in this Region.")
        : h("div", { class: "table-wrap" }, h("table", {},
          h("caption", {}, "Your AMIs"),
          h("thead", {}, h("tr", {}, ...["", "AMI ID", "AMI name", "Platform", "State", "Latest scan"].map((t, i) => h("th", { scope: "col" }, i === 0 ? h("span", { class: "sr-only" }, "Select") : t)))),
          h("tbody", {}, ...visible.map((img) => {
            const checked = wizard.selected.has(img.ImageId);
            const box = h("input", {
              type: "checkbox", id: `pick-${img.ImageId}`, value: img.ImageId, checked,
              disabled: full && !checked, "aria-describedby": "selected-count",
            });
            box.addEventListener("change", () => {
              if (box.checked && wizard.selected.size >= MAX_AMIS) {
                box.checked = false;
                return;
              }
              if (box.checked) wizard.selected.set(img.ImageId, img);
              else wizard.selected.delete(img.ImageId);
              renderWizard();
              document.getElementById(`pick-${img.ImageId}`)?.focus();
            });
            return h("tr", {},
              h("td", {}, box),
              h("td", {}, h("label", { for: `pick-${img.ImageId}` }, h("code", {}, img.ImageId))),
              h("td", {}, img.Name || "—"),
              h("td", {}, img.Platform),
              h("td", {}, img.State),
              h("td", {}, img.LatestScan ? badge(img.LatestScan.Status) : "Not scanned"));
          })))),
      wizardButtons({ disabled: n === 0 }));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (wizard.selected.size === 0) return;
      wizard.step = 1;
      renderWizard();
    });
  } else if (wizard.step === 1) {
    const linux = [...wizard.selected.values()].some((i) => i.Platform === "Linux");
    const role = h("input", { id: "role-arn", value: wizard.role, required: true, spellcheck: "false", placeholder: "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion", "aria-describedby": "role-help" });
    const errors = h("div", {});
    form.append(
      h("h2", {}, "Specify AMI details"),
      h("label", { for: "role-arn" }, "IAM access role ARN"),
      h("p", { id: "role-help", class: "muted" }, "AWS Marketplace assumes this role to copy your AMI. Its trust policy must allow assets.marketplace.amazonaws.com, with permissions to describe and copy the AMI and its snapshots."),
      role,
      linux ? h("fieldset", {},
        h("legend", {}, "Additional settings for Linux AMIs"),
        h("label", { for: "scan-port" }, "Scanning port"),
        h("input", { id: "scan-port", type: "number", min: 1, max: 65535, value: wizard.port, inputmode: "numeric" }),
        h("label", { for: "os-user" }, "OS user name"),
        h("input", { id: "os-user", value: wizard.user, spellcheck: "false" }),
        h("p", { class: "muted" }, "Marketplace logs in with this user over SSH on the scanning port (default 22, user ec2-user).")) : null,
      errors,
      wizardButtons({}));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      wizard.role = role.value.trim();
      const problems = [];
      if (!ROLE_PATTERN.test(wizard.role)) {
        problems.push(fieldError("role-error", "Enter an IAM role ARN such as arn:aws:iam::123456789012:role/MarketplaceAmiIngestion."));
        role.setAttribute("aria-invalid", "true");
      }
      if (linux) {
        wizard.port = form.querySelector("#scan-port").value.trim();
        wizard.user = form.querySelector("#os-user").value.trim();
        const p = Number(wizard.port);
        if (!Number.isInteger(p) || p < 1 || p > 65535) problems.push(fieldError("port-error", "The scanning port must be a whole number from 1 to 65535."));
        if (!USER_PATTERN.test(wizard.user)) problems.push(fieldError("user-error", "The OS user name starts with a letter and has at most 32 letters, digits, - or _."));
      }
      errors.replaceChildren(...problems);
      if (problems.length) {
        (form.querySelector("[aria-invalid=true]") || role).focus();
        return;
      }
      wizard.step = 2;
      renderWizard();
    });
  } else if (wizard.step === 2) {
    const product = h("input", { id: "product-id", value: wizard.productId, spellcheck: "false", placeholder: "prod-…", "aria-describedby": "product-help" });
    form.append(
      h("h2", {}, "Assign product ID (optional)"),
      h("label", { for: "product-id" }, "Product ID"),
      h("p", { id: "product-help", class: "muted" }, "If your product has been granted exceptions for specific issues, give its ID: the findings those exceptions cover are left out of the scan results."),
      product,
      wizardButtons({}));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      wizard.productId = product.value.trim();
      wizard.step = 3;
      renderWizard();
    });
  } else {
    const linux = [...wizard.selected.values()].some((i) => i.Platform === "Linux");
    form.append(
      h("h2", {}, "Review and submit"),
      h("dl", { class: "review" },
        h("dt", {}, "AMIs"), h("dd", {}, `${n} selected`),
        h("dt", {}, "IAM access role ARN"), h("dd", {}, h("code", {}, wizard.role)),
        linux ? [h("dt", {}, "Scanning port (Linux)"), h("dd", {}, wizard.port), h("dt", {}, "OS user name (Linux)"), h("dd", {}, wizard.user)] : null,
        h("dt", {}, "Product ID"), h("dd", {}, wizard.productId || "None")),
      h("div", { class: "table-wrap" }, h("table", {},
        h("caption", {}, "AMIs to submit"),
        h("thead", {}, h("tr", {}, ...["AMI ID", "AMI name", "Platform"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, ...[...wizard.selected.values()].map((i) => h("tr", {}, h("td", {}, h("code", {}, i.ImageId)), h("td", {}, i.Name || "—"), h("td", {}, i.Platform)))))),
      wizardButtons({ nextLabel: "Submit" }));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      wizard.token = wizard.token || crypto.randomUUID();
      const images = [...wizard.selected.values()].map((i) => ({
        SourceImageId: i.ImageId,
        AccessRoleArn: wizard.role,
        ...(i.Platform === "Linux" ? { ScanningPort: Number(wizard.port), OsUserName: wizard.user } : {}),
        ...(wizard.productId ? { ProductId: wizard.productId } : {}),
      }));
      try {
        const out = await call("scan", "StartScans", { Images: images, ClientToken: wizard.token });
        const done = wizard;
        wizard = null;
        submitted(out.Scans, done);
      } catch (e) {
        showError(e);
        button.disabled = false;
        document.getElementById("page-error").focus();
      }
    });
  }
  show(...head, form);
  document.getElementById("page-error").setAttribute("tabindex", "-1");
  focusHeading();
}

function submitted(scans) {
  show(
    h("h1", {}, "Add AMI"),
    h("div", { id: "page-error" }),
    alertBox("success", `${scans.length} AMI${scans.length === 1 ? "" : "s"} submitted for scanning`,
      "AWS Marketplace is ingesting and then scanning them; results typically arrive in less than an hour. The page updates as their statuses change."),
    h("div", { class: "table-wrap" }, h("table", {},
      h("caption", {}, "Submitted AMIs"),
      h("thead", {}, h("tr", {}, ...["AMI ID", "Status", ""].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...scans.map((s) => h("tr", {},
        h("td", {}, h("code", {}, s.SourceImageId)),
        h("td", { id: `status-${s.ScanId}` }, badge(s.Status)),
        h("td", {}, h("a", { href: `#/scans/${s.ScanId}` }, "View details"))))))),
    h("a", { class: "button primary", href: "#/amis" }, "View all AMIs"));
  focusHeading();
  const refresh = async () => {
    const got = await call("scan", "DescribeScans", { ScanIds: scans.map((s) => s.ScanId) });
    for (const s of got.Scans) document.getElementById(`status-${s.ScanId}`)?.replaceChildren(badge(s.Status));
    if (got.Scans.some((s) => s.Status === "Ingesting" || s.Status === "Scanning")) poll(refresh);
  };
  poll(refresh);
}

// ---------------------------------------------------------------- scan details

function resubmitForm(scan, { withRole }) {
  const errors = h("div", {});
  const role = withRole ? h("input", { id: "new-role-arn", spellcheck: "false", value: "", "aria-describedby": "new-role-help", placeholder: scan.AccessRoleArn }) : null;
  const form = h("form", { class: "inline-form", novalidate: true },
    withRole ? [
      h("label", { for: "new-role-arn" }, "New IAM access role ARN"),
      h("p", { id: "new-role-help", class: "muted" }, "A role in your account that AWS Marketplace (assets.marketplace.amazonaws.com) may assume, allowed to describe and copy the AMI, its snapshots and their KMS keys."),
      role,
    ] : null,
    errors,
    h("button", { type: "submit", class: "primary" }, "Resubmit"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const input = { ScanId: scan.ScanId, ClientToken: crypto.randomUUID() };
    if (withRole) {
      const v = role.value.trim();
      if (!ROLE_PATTERN.test(v)) {
        role.setAttribute("aria-invalid", "true");
        errors.replaceChildren(fieldError("new-role-error", "Enter an IAM role ARN such as arn:aws:iam::123456789012:role/MarketplaceAmiIngestion."));
        role.focus();
        return;
      }
      input.AccessRoleArn = v;
    }
    form.querySelector("button").disabled = true;
    try {
      const out = await call("scan", "ResubmitScan", input);
      location.hash = `#/scans/${out.ScanId}`;
    } catch (e) {
      errors.replaceChildren(alertBox("error", "Resubmission failed", readable(e)));
      form.querySelector("button").disabled = false;
    }
  });
  return form;
}

async function scanDetails(id) {
  const got = await call("scan", "DescribeScans", { ScanIds: [id] });
  const s = got.Scans[0];
  if (!s) {
    show(h("h1", {}, "Scan not found"), alertBox("error", "No such scan", `There is no scan ${id} in this account and Region.`),
      h("a", { href: "#/amis" }, "Back to AMIs"));
    return;
  }
  const findings = ["Succeeded", "IssuesFound", "Failed", "InternalError"].includes(s.Status)
    ? await call("scan", "DescribeScanFindings", { ScanId: id, MaxResults: 100 }) : null;
  const parts = [
    h("p", {}, h("a", { href: "#/amis" }, "← Amazon Machine Images")),
    h("div", { class: "page-head" }, h("h1", {}, s.SourceImage.Name || s.SourceImage.Id), badge(s.Status)),
    h("div", { id: "page-error" }),
    h("dl", { class: "review" },
      h("dt", {}, "AMI ID"), h("dd", {}, h("code", {}, s.SourceImage.Id)),
      h("dt", {}, "Scan ID"), h("dd", {}, h("code", {}, s.ScanId)),
      h("dt", {}, "Attempt"), h("dd", {}, s.Attempt),
      h("dt", {}, "IAM access role ARN"), h("dd", {}, h("code", {}, s.AccessRoleArn)),
      s.OsUserName ? [h("dt", {}, "OS user name"), h("dd", {}, s.OsUserName)] : null,
      h("dt", {}, "Scanning port"), h("dd", {}, s.ScanningPort),
      h("dt", {}, "Product ID"), h("dd", {}, s.ProductId || "None"),
      h("dt", {}, "Started"), h("dd", {}, when(s.StartTime)),
      h("dt", {}, "Last updated"), h("dd", {}, when(s.LastUpdateTime))),
  ];
  if (!s.Latest) {
    parts.push(alertBox("info", "This is an earlier attempt", "A newer scan of this AMI exists.",
      h("a", { href: `#/amis` }, "See the AMI's latest scan in the list")));
  }
  const persists = s.Attempt >= 2;
  if (s.Status === "IngestionFailed") {
    parts.push(alertBox("error", `Ingestion issue: ${s.ErrorDetail?.Code || "unknown"}`, s.ErrorDetail?.Message || ""));
    if (s.Latest) parts.push(h("section", { class: "card", "aria-labelledby": "fix-title" }, h("h2", { id: "fix-title" }, "Provide a new IAM access role and resubmit"), resubmitForm(s, { withRole: true })));
  } else if (s.Status === "Failed" || s.Status === "InternalError") {
    parts.push(alertBox("error", s.Status === "Failed" ? `The scan could not run: ${s.ErrorDetail?.Code || ""}` : "The scan failed on the AWS Marketplace side",
      s.ErrorDetail?.Message || ""));
    if (s.Latest) parts.push(h("section", { class: "card", "aria-labelledby": "retry-title" }, h("h2", { id: "retry-title" }, "Resubmit the AMI"), resubmitForm(s, { withRole: false })));
    parts.push(h("section", { class: persists ? "card contact persists" : "card contact", "aria-labelledby": "contact-title" },
      h("h2", { id: "contact-title" }, persists ? "The issue persists" : "If the issue persists"),
      h("p", {}, `This is attempt ${s.Attempt}. If resubmitting does not help, contact AWS Marketplace Seller Operations through the Contact us form of the AWS Marketplace Management Portal, quoting scan ID ${s.ScanId}.`)));
  } else if (s.Status === "IssuesFound") {
    parts.push(alertBox("warning", "Scanning issues found",
      "The AMI cannot be listed as it is. Fix the issues below in a new AMI, then submit the new AMI.",
      h("a", { class: "button primary", href: "#/amis/add" }, "Submit a new AMI")));
  } else if (s.Status === "Succeeded") {
    parts.push(alertBox("success", "No issues found", "The AMI passed every control."));
  } else {
    parts.push(alertBox("info", `${LABEL[s.Status]}…`, "The page updates as the scan moves on."));
  }
  if (findings) {
    parts.push(h("h2", {}, "Controls"),
      h("ul", { class: "controls" }, ...findings.Controls.map((c) => h("li", {}, h("span", { class: `result r-${c.Result}` }, c.Result.replace("_", " ")), " ", c.Title || c.ControlId))));
    if (findings.Findings.length) {
      parts.push(h("div", { class: "table-wrap" }, h("table", { class: "findings" },
        h("caption", {}, "Findings"),
        h("thead", {}, h("tr", {}, ...["Severity", "Control", "Finding", "Remediation"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, ...findings.Findings.map((f) => h("tr", {},
          h("td", {}, h("span", { class: `sev sev-${f.Severity}` }, f.Severity)),
          h("td", {}, h("code", {}, f.ControlId)),
          h("td", {}, h("strong", {}, f.Title), h("p", { class: "muted" }, f.Description)),
          h("td", {}, f.Remediation)))))));
    }
  }
  show(...parts);
  if (s.Status === "Ingesting" || s.Status === "Scanning") poll(() => scanDetails(id));
}

// ---------------------------------------------------------------- builds

async function builds(params) {
  const tokens = pagesOf(params);
  const page = await call("build", "DescribeBuilds", { MaxResults: 10, ...(tokens.length ? { NextToken: tokens[tokens.length - 1] } : {}) });
  const fo = h("input", { id: "fo-ids", spellcheck: "false", placeholder: "fo-…", required: true, "aria-describedby": "fo-help" });
  const src = h("input", { id: "source-image", spellcheck: "false", placeholder: "ami-…", required: true });
  const name = h("input", { id: "dest-name", required: true, placeholder: "my-image-with-agent" });
  const desc = h("input", { id: "dest-desc" });
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "start-title" },
    h("h2", { id: "start-title" }, "Start a build"),
    h("label", { for: "fo-ids" }, "Fulfillment option IDs"),
    h("p", { id: "fo-help", class: "muted" }, "Comma-separated; one per product to install."),
    fo,
    h("label", { for: "source-image" }, "Source AMI ID"), src,
    h("label", { for: "dest-name" }, "New AMI name"), name,
    h("label", { for: "dest-desc" }, "New AMI description (optional)"), desc,
    result,
    h("button", { type: "submit", class: "primary" }, "Start build"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const ids = fo.value.split(",").map((x) => x.trim()).filter(Boolean);
    if (!ids.length || !src.value.trim() || !name.value.trim()) {
      result.replaceChildren(alertBox("error", "Missing information", "Give at least one fulfillment option ID, the source AMI ID and a name for the new AMI."));
      return;
    }
    form.querySelector("button").disabled = true;
    try {
      const out = await call("build", "StartBuild", {
        FulfillmentOptionIds: ids, SourceImageId: src.value.trim(), DestinationImageName: name.value.trim(),
        ...(desc.value.trim() ? { DestinationImageDescription: desc.value.trim() } : {}),
        ClientToken: crypto.randomUUID(),
      });
      result.replaceChildren(alertBox("success", "Build started", `Build ${out.BuildId} is in progress.`));
      await builds(new URLSearchParams());
    } catch (e) {
      result.replaceChildren(alertBox("error", "The build could not start", readable(e)));
    } finally {
      form.querySelector("button").disabled = false;
    }
  });
  const rows = page.Builds.map((b) => h("tr", { id: `build-${b.BuildId}` },
    h("td", {}, h("code", {}, b.BuildId)),
    h("td", {}, badge(b.Status), b.ErrorDetail ? h("p", { class: "muted" }, `${b.ErrorDetail.Code}: ${b.ErrorDetail.Message}`) : null),
    h("td", {}, (b.Products || []).map((p) => `${p.Title || p.Id} ${p.Version || ""}`.trim()).join(", ") || "—"),
    h("td", {}, h("code", {}, b.SourceImage?.Id || "—")),
    h("td", {}, b.DestinationImage?.Id ? h("code", {}, b.DestinationImage.Id) : "—", b.DestinationImage?.Name ? h("p", { class: "muted" }, b.DestinationImage.Name) : null),
    h("td", {}, when(b.StartTime)),
    h("td", {}, b.StandardOutputUrl ? h("a", { href: b.StandardOutputUrl, target: "_blank", rel: "noopener" }, "stdout") : null,
      b.StandardOutputUrl && b.StandardErrorUrl ? " · " : null,
      b.StandardErrorUrl ? h("a", { href: b.StandardErrorUrl, target: "_blank", rel: "noopener" }, "stderr") : null,
      !b.StandardOutputUrl && !b.StandardErrorUrl ? "—" : null)));
  const pages = pager("#/builds?", tokens, page.NextToken);
  const existing = document.getElementById("builds-table");
  const table = h("div", { class: "table-wrap", id: "builds-table" }, h("table", {},
    h("caption", {}, "Your builds, newest first"),
    h("thead", {}, h("tr", {}, ...["Build ID", "Status", "Products", "Source AMI", "New AMI", "Started", "Logs"].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7 }, "No builds yet.")))));
  if (existing && document.getElementById("start-title")) {
    existing.replaceWith(table);
    labelCells(table);
  } else {
    show(h("h1", {}, "Builds"), h("div", { id: "page-error" }), form, table, pages);
  }
  if (page.Builds.some((b) => b.Status === "InProgress")) poll(() => builds(params));
}

// ---------------------------------------------------------------- router

async function route() {
  const seq = beginRoute();
  const creds = session.get();
  if (!creds) {
    signIn();
    return;
  }
  document.getElementById("nav").hidden = false;
  document.getElementById("who").replaceChildren(
    h("span", { class: "muted" }, `${creds.accessKeyId} · ${creds.region}`), " ",
    h("button", { type: "button", id: "sign-out", onclick: () => { session.clear(); wizard = null; location.hash = ""; route(); } }, "Sign out"));
  const hash = location.hash.replace(/^#/, "") || "/amis";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  for (const a of document.querySelectorAll("#nav a")) {
    if (path.startsWith(a.getAttribute("href").slice(1))) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // A page that takes a while says so instead of showing the previous one.
  const slow = setTimeout(() => isCurrent(seq) && show(h("p", { class: "muted", role: "status" }, "Loading…")), 400);
  try {
    if (path === "/amis/add") await addAmi();
    else if (path.startsWith("/scans/")) await scanDetails(decodeURIComponent(path.slice(7)));
    else if (path === "/builds") await builds(params);
    else {
      const page = otherPage(path, params);
      if (page) await page;
      else {
        if (path !== "/amis") wizard = null;
        await manageAmis(params);
      }
    }
    if (path !== "/amis/add") focusHeading();
  } catch (e) {
    if (e instanceof Superseded) return;
    if (["UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"].includes(e.code)) {
      session.clear();
      signIn(readable(e));
      return;
    }
    show(h("h1", {}, "Something went wrong"), alertBox("error", "The page could not load", readable(e)),
      h("button", { type: "button", onclick: () => route() }, "Try again"));
  } finally {
    clearTimeout(slow);
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("error", (ev) => showError(ev.error || ev.message));
window.addEventListener("unhandledrejection", (ev) => {
  ev.preventDefault();
  showError(ev.reason);
});
route();
