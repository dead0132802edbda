// The change requests a seller makes from a product's page, one form each. Every field is checked
// here with the API's own rules before anything is sent; when the service still refuses, its
// answer is shown next to the field it names. One ClientRequestToken per form: a second click,
// or a retry after a network failure, gets the same change request, never a second one.

import {
  h, show, alertBox, readable, catalog, all, fieldError, fieldOf, lockedBy,
  ROLE_PATTERN, USER_PATTERN,
} from "./lib.js";
import { entityDescribe, optionsOf, MCO_ACCOUNTS } from "./products.js";

const AMI_PATTERN = /^ami-([a-zA-Z0-9]{8}|[a-zA-Z0-9]{17})$/;
const TEXT = /^\S+[\S\s]*$/;
const CONTROL = /[\x00-\x08\x0B-\x1F]/;
const GROUP_PATTERN = /^[A-Za-z0-9_-]{1,99}$/;
const INSTANCE_TYPE = /^[a-z]+[0-9]+[a-z]*\.[0-9]*[a-z]+$/;
const INSTALLERS = { Linux: [".rpm", ".deb", ".sh", ".run", ".exe"], Windows: [".msi", ".ps1", ".bat", ".exe"] };
export const REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
  "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1",
  "ap-southeast-2", "sa-east-1", "af-south-1"];
const TITLES = {
  create: "Create product", info: "Update product information", "add-version": "Add version",
  "update-version": "Update version information", "restrict-version": "Restrict version",
  allowlist: "Update allowlist", regions: "Add or restrict regions", release: "Release to Limited",
  visibility: "Request Public or Restricted",
};
const BUILDERS = {
  create: createForm, info: infoForm, "add-version": addVersionForm, "update-version": updateVersionForm,
  "restrict-version": restrictForm, allowlist: allowlistForm, regions: regionsForm, release: releaseForm,
  visibility: visibilityForm,
};

// ---------------------------------------------------------------- fields

/** A labelled field; `key` is the API member it fills (where a refusal naming it is shown). */
function field({ id, label, key, help, value = "", type = "text", multiline = false, options, attrs = {} }) {
  const describedBy = [help ? `${id}-help` : null, `${id}-error`].filter(Boolean).join(" ");
  const common = { id, name: id, "data-key": key || id, "aria-describedby": describedBy, ...attrs };
  let input;
  if (options) {
    input = h("select", common, ...options.map((o) => {
      const [v, t] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: v === value }, t);
    }));
  } else if (multiline) {
    input = h("textarea", { ...common, rows: 3 }, value);
  } else {
    input = h("input", { ...common, type, value, spellcheck: "false" });
  }
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    help ? h("p", { id: `${id}-help`, class: "muted" }, help) : null,
    input,
    h("div", { id: `${id}-error` }));
}

const val = (form, id) => (form.querySelector(`#${id}`)?.value ?? "").trim();
const lines = (text) => text.split(/[\n,]/).map((x) => x.trim()).filter(Boolean);

/** Marks `id` wrong with `text` (true when it did, for chaining checks). */
function complain(form, id, text) {
  const input = form.querySelector(`#${id}`);
  const slot = form.querySelector(`#${id}-error`);
  if (input) input.setAttribute("aria-invalid", "true");
  if (slot) slot.replaceChildren(fieldError(`${id}-problem`, text));
  return true;
}

function clearProblems(form) {
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  for (const el of form.querySelectorAll("[id$='-error']")) el.replaceChildren();
  form.querySelector(".form-error")?.replaceChildren();
}

/** The API's `S` rule (no leading blank, not empty) with a length limit; empty allowed unless `required`. */
function text(form, id, name, max, { required = false } = {}) {
  const v = form.querySelector(`#${id}`)?.value ?? "";
  if (!v.trim()) return required ? complain(form, id, `Enter the ${name}.`) : false;
  if (!TEXT.test(v)) return complain(form, id, `The ${name} cannot start with a space.`);
  if (CONTROL.test(v)) return complain(form, id, `The ${name} cannot contain control characters.`);
  if ([...v].length > max) return complain(form, id, `The ${name} can have at most ${max} characters (it has ${[...v].length}).`);
  return false;
}

// ---------------------------------------------------------------- the page

/** The form of change request `kind` for product `id` (none: a new product). */
export async function changeForm(id, kind) {
  const build = BUILDERS[kind];
  if (!build) {
    show(h("h1", {}, "No such change request"), alertBox("error", "Unknown change", `The console offers no change named ${kind}.`));
    return;
  }
  const entity = id ? await entityDescribe(id) : null;
  const ctx = { id, entity, doc: entity?.DetailsDocument || {}, token: crypto.randomUUID() };
  const spec = await build(ctx);
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "form-title" },
    h("h2", { id: "form-title" }, TITLES[kind]),
    spec.intro ? h("p", { class: "muted" }, spec.intro) : null,
    ...spec.fields,
    h("div", { class: "form-error", "aria-live": "assertive" }),
    h("div", { class: "actions" },
      h("a", { class: "button link", href: id ? `#/products/${id}` : "#/products" }, "Cancel"),
      spec.validate ? h("button", { type: "submit", name: "intent", value: "VALIDATE" }, spec.validate) : null,
      h("button", { type: "submit", class: "primary", name: "intent", value: "APPLY", disabled: spec.blocked || false }, spec.submit || "Submit request")));
  form.addEventListener("submit", (ev) => submit(ev, form, ctx, spec));
  show(h("p", {}, h("a", { href: id ? `#/products/${id}` : "#/products" }, id ? `← ${ctx.doc.Description?.ProductTitle || id}` : "← Server products")),
    h("h1", {}, TITLES[kind]), h("div", { id: "page-error" }), form);
}

async function submit(ev, form, ctx, spec) {
  ev.preventDefault();
  const intent = ev.submitter?.value === "VALIDATE" ? "VALIDATE" : "APPLY";
  clearProblems(form);
  if (spec.check(form)) {
    form.querySelector("[aria-invalid=true]")?.focus();
    return;
  }
  const buttons = [...form.querySelectorAll("button")];
  for (const b of buttons) b.disabled = true;
  const entity = ctx.id ? { Type: "AmiProduct@1.0", Identifier: ctx.entity.EntityIdentifier } : { Type: "AmiProduct@1.0" };
  const changes = spec.changes(form).map((c) => ({ Entity: entity, ...c }));
  try {
    const out = await catalog("StartChangeSet", {
      body: {
        ChangeSet: changes, Intent: intent, ClientRequestToken: `${ctx.token}-${intent}`,
        ChangeSetName: `${intent === "VALIDATE" ? "Test: " : ""}${spec.name ? spec.name(form) : TITLES[spec.kind]}`.slice(0, 100),
      },
    });
    location.hash = `#/changes/${out.ChangeSetId}`;
  } catch (e) {
    refused(form, e);
    for (const b of buttons) b.disabled = false;
  }
}

/** Shows a refusal next to the field it names, else above the buttons. */
function refused(form, e) {
  const key = e.code === "ValidationException" ? fieldOf(e.message) : null;
  const input = key && form.querySelector(`[data-key="${key}"]`);
  if (input) {
    complain(form, input.id, `The service refused this value: ${e.message}`);
    input.focus();
    return;
  }
  const blocker = e.code === "ResourceInUseException" ? lockedBy(e.message) : null;
  form.querySelector(".form-error").replaceChildren(alertBox("error", blocker ? "Another change request is in progress" : "The change request was refused",
    blocker ? "A product takes one change request at a time, and this one is busy. Wait for the other request to end (or cancel it while it is preparing), then submit again." : readable(e),
    blocker ? h("a", { href: `#/changes/${blocker}` }, `View change request ${blocker}`) : "",
    /not the latest/.test(e.message) ? h("a", { href: `#/products/${e.message.match(/entity (\S+)/)?.[1] || ""}` }, "The product changed meanwhile: reload it") : ""));
}

// ---------------------------------------------------------------- one builder per change type

function createForm() {
  return {
    kind: "create",
    intro: "A new product starts in Staging (the API says Draft): only you can see and build it until you release it.",
    fields: [field({ id: "product-title", label: "Product title", key: "ProductTitle", help: "Up to 72 characters." })],
    check: (f) => text(f, "product-title", "product title", 72, { required: true }),
    changes: (f) => [{ ChangeType: "CreateProduct", DetailsDocument: { ProductTitle: val(f, "product-title") } }],
    name: (f) => `Create product ${val(f, "product-title")}`,
    submit: "Create product",
  };
}

function infoForm({ doc }) {
  const d = doc.Description || {};
  const first = doc.Description?.Visibility === "Draft" && !d.ShortDescription;
  const join = (x, sep) => (Array.isArray(x) ? x.join(sep) : "");
  return {
    kind: "info",
    intro: first ? "The first update of a product in Staging gives every field but SKU." : "Change any field; the others stay as they are.",
    fields: [
      field({ id: "info-title", label: "Product title", key: "ProductTitle", value: d.ProductTitle || "", help: "Up to 72 characters." }),
      field({ id: "info-short", label: "Short description", key: "ShortDescription", value: d.ShortDescription || "", multiline: true, help: "Up to 1,000 characters." }),
      field({ id: "info-long", label: "Long description", key: "LongDescription", value: d.LongDescription || "", multiline: true, help: "Up to 5,000 characters." }),
      field({ id: "info-logo", label: "Logo URL", key: "LogoUrl", value: doc.PromotionalResources?.LogoUrl || "", help: "An HTTPS URL of the logo." }),
      field({ id: "info-highlights", label: "Highlights", key: "Highlights", value: join(d.Highlights, "\n"), multiline: true, help: "One to three, one per line, each up to 500 characters." }),
      field({ id: "info-categories", label: "Categories", key: "Categories", value: join(d.Categories, ", "), help: "One to three, separated by commas." }),
      field({ id: "info-keywords", label: "Search keywords", key: "SearchKeywords", value: join(d.SearchKeywords, ", "), help: "One to 15, separated by commas; up to 50 characters each, 250 in all." }),
      field({ id: "info-support", label: "Support information", key: "SupportDescription", value: doc.SupportInformation?.Description || "", multiline: true, help: "How buyers reach your support; up to 2,000 characters." }),
    ],
    check: (f) => {
      let bad = false;
      const req = { required: first };
      bad = text(f, "info-title", "product title", 72, { required: first && !d.ProductTitle }) || bad;
      bad = text(f, "info-short", "short description", 1000, req) || bad;
      bad = text(f, "info-long", "long description", 5000, req) || bad;
      bad = text(f, "info-support", "support information", 2000, req) || bad;
      const logo = val(f, "info-logo");
      if ((logo || first) && !/^https:\/\/\S+$/.test(logo)) bad = complain(f, "info-logo", "Enter the logo's HTTPS URL (starting with https).");
      bad = listCheck(f, "info-highlights", "highlights", 1, 3, 500, first) || bad;
      bad = listCheck(f, "info-categories", "categories", 1, 3, 100, first) || bad;
      bad = listCheck(f, "info-keywords", "search keywords", 1, 15, 50, first) || bad;
      if (lines(val(f, "info-keywords")).join("").length > 250) bad = complain(f, "info-keywords", "Search keywords must be no more than 250 combined characters.");
      if (!bad && !Object.keys(infoDetails(f)).length) bad = complain(f, "info-title", "Change at least one field.");
      return bad;
    },
    changes: (f) => [{ ChangeType: "UpdateInformation", DetailsDocument: infoDetails(f) }],
  };
}

function listCheck(f, id, name, min, max, each, required) {
  const items = id === "info-highlights" ? val(f, id).split("\n").map((x) => x.trim()).filter(Boolean) : lines(val(f, id));
  if (!items.length) return required ? complain(f, id, `Give between ${min} and ${max} ${name}.`) : false;
  if (items.length > max) return complain(f, id, `Give between ${min} and ${max} ${name} (there are ${items.length}).`);
  const long = items.find((x) => x.length > each);
  return long ? complain(f, id, `Each of the ${name} can have at most ${each} characters: "${long.slice(0, 40)}…" is longer.`) : false;
}

function infoDetails(f) {
  const out = {};
  const put = (k, v) => { if (v !== "" && !(Array.isArray(v) && !v.length)) out[k] = v; };
  put("ProductTitle", val(f, "info-title"));
  put("ShortDescription", val(f, "info-short"));
  put("LongDescription", val(f, "info-long"));
  put("LogoUrl", val(f, "info-logo"));
  put("Highlights", val(f, "info-highlights").split("\n").map((x) => x.trim()).filter(Boolean));
  put("Categories", lines(val(f, "info-categories")));
  put("SearchKeywords", lines(val(f, "info-keywords")));
  put("SupportDescription", val(f, "info-support"));
  return out;
}

async function addVersionForm({ doc }) {
  const images = await all("scan", "ListImages", { MaxResults: 100 }, "Images");
  const titles = new Set((doc.Versions || []).map((v) => v.VersionTitle));
  const scanLabel = (i) => (i.LatestScan ? `latest scan: ${i.LatestScan.Status}` : "not scanned");
  const kind = h("fieldset", {}, h("legend", {}, "Delivery"),
    ...[["ami", "An AMI, scanned by AWS Marketplace; buyers launch it"], ["package", "A software package, test-built and scanned; buyers build it into their own AMIs"]].map(([v, t]) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "delivery", value: v, checked: v === "ami" }), t)));
  const ami = h("fieldset", { id: "ami-fields" }, h("legend", {}, "AMI"),
    field({ id: "ami-id", label: "AMI", key: "AmiId", options: [["", "Choose one of your AMIs"], ...images.map((i) => [i.ImageId, `${i.ImageId} — ${i.Name || "unnamed"} (${scanLabel(i)})`])] }),
    field({ id: "ami-role", label: "IAM access role ARN", key: "AccessRoleArn", help: "A role that AWS Marketplace (assets.marketplace.amazonaws.com) may assume to copy the AMI." }),
    field({ id: "ami-user", label: "OS user name", key: "UserName", value: "ec2-user" }),
    field({ id: "ami-port", label: "Scanning port", key: "ScanningPort", value: "22", type: "number", attrs: { min: 1, max: 65535, inputmode: "numeric" } }),
    field({ id: "ami-os", label: "Operating system name", key: "OperatingSystemName", help: "For example AMAZONLINUX or UBUNTU." }),
    field({ id: "ami-os-version", label: "Operating system version", key: "OperatingSystemVersion" }),
    field({ id: "ami-type", label: "Recommended instance type", key: "RecommendedInstanceType", value: "m5.large" }),
    field({ id: "ami-usage", label: "Usage instructions", key: "UsageInstructions", multiline: true, help: "How buyers connect once launched; up to 4,000 characters." }));
  const pkg = h("fieldset", { id: "package-fields", hidden: true }, h("legend", {}, "Software package"),
    field({ id: "pkg-group", label: "Package group name", key: "PackageGroupName", help: "Letters, digits, _ and -, under 100 characters; never reused." }),
    field({ id: "pkg-platform", label: "Platform", key: "Platform", options: ["Linux", "Windows"] }),
    field({ id: "pkg-url", label: "Installer URL", key: "Url", help: "An S3 object: s3://bucket/key." }),
    field({ id: "pkg-type", label: "Installer type", key: "Type", options: [...new Set([...INSTALLERS.Linux, ...INSTALLERS.Windows])] }),
    field({ id: "pkg-os", label: "Base operating systems", key: "OperatingSystems", value: "AMAZONLINUX 2023", multiline: true, help: "One per line: name and version, e.g. AMAZONLINUX 2023. Marketplace test-builds the package on its base AMI of each." }),
    field({ id: "pkg-usage", label: "Usage instructions (optional)", key: "UsageInstructions", multiline: true }));
  kind.addEventListener("change", () => {
    const isPkg = kind.querySelector("input:checked").value === "package";
    ami.hidden = isPkg;
    pkg.hidden = !isPkg;
  });
  const isPkg = (f) => f.querySelector("input[name=delivery]:checked").value === "package";
  return {
    kind: "add-version",
    intro: "Each version is one delivery option. \"Test add version\" runs every check (scan, test build) and changes nothing.",
    fields: [
      field({ id: "version-title", label: "Version title", key: "VersionTitle", help: "Unique in the product; up to 64 characters." }),
      field({ id: "release-notes", label: "Release notes", key: "ReleaseNotes", multiline: true }),
      kind, ami, pkg],
    check: (f) => {
      let bad = text(f, "version-title", "version title", 64, { required: true });
      if (!bad && titles.has(val(f, "version-title"))) bad = complain(f, "version-title", "The version title must be different from any other version titles of this product.");
      bad = text(f, "release-notes", "release notes", 30000, { required: true }) || bad;
      return (isPkg(f) ? checkPackage(f) : checkAmi(f)) || bad;
    },
    changes: (f) => [{
      ChangeType: "AddDeliveryOptions",
      DetailsDocument: {
        Version: { VersionTitle: val(f, "version-title"), ReleaseNotes: val(f, "release-notes") },
        DeliveryOptions: [{ Details: isPkg(f) ? packageDetails(f) : amiDetails(f) }],
      },
    }],
    submit: "Add version",
    name: (f) => `Add version ${val(f, "version-title")}`,
    validate: "Test add version",
  };
}

function checkAmi(f) {
  let bad = false;
  if (!AMI_PATTERN.test(val(f, "ami-id"))) bad = complain(f, "ami-id", "Choose the AMI of this version.");
  if (!ROLE_PATTERN.test(val(f, "ami-role"))) bad = complain(f, "ami-role", "Enter an IAM role ARN such as arn:aws:iam::123456789012:role/MarketplaceAmiIngestion.");
  if (!USER_PATTERN.test(val(f, "ami-user"))) bad = complain(f, "ami-user", "The OS user name starts with a letter and has at most 32 letters, digits, - or _.");
  const port = Number(val(f, "ami-port"));
  if (!Number.isInteger(port) || port < 1 || port > 65535) bad = complain(f, "ami-port", "The scanning port must be a whole number from 1 to 65535.");
  bad = text(f, "ami-os", "operating system name", 100, { required: true }) || bad;
  bad = text(f, "ami-os-version", "operating system version", 100, { required: true }) || bad;
  if (!INSTANCE_TYPE.test(val(f, "ami-type"))) bad = complain(f, "ami-type", "Enter an instance type such as m5.large.");
  bad = text(f, "ami-usage", "usage instructions", 4000, { required: true }) || bad;
  return bad;
}

function amiDetails(f) {
  return {
    AmiDeliveryOptionDetails: {
      AmiSource: {
        AmiId: val(f, "ami-id"), AccessRoleArn: val(f, "ami-role"), UserName: val(f, "ami-user"),
        OperatingSystemName: val(f, "ami-os"), OperatingSystemVersion: val(f, "ami-os-version"), ScanningPort: Number(val(f, "ami-port")),
      },
      UsageInstructions: val(f, "ami-usage"), RecommendedInstanceType: val(f, "ami-type"),
    },
  };
}

function checkPackage(f) {
  let bad = false;
  if (!GROUP_PATTERN.test(val(f, "pkg-group"))) bad = complain(f, "pkg-group", "The package group name has 1 to 99 letters, digits, _ or -.");
  const url = val(f, "pkg-url");
  if (!/^s3:\/\/[^/\s]+\/\S+$/.test(url) && !/^https:\/\/\S*\.s3\S*\/\S+$/.test(url)) bad = complain(f, "pkg-url", "Enter the installer's S3 object URL, such as s3://bucket/agent.rpm.");
  const platform = val(f, "pkg-platform");
  if (!INSTALLERS[platform].includes(val(f, "pkg-type"))) bad = complain(f, "pkg-type", `A ${platform} installer is one of ${INSTALLERS[platform].join(" ")}.`);
  const oses = val(f, "pkg-os").split("\n").map((x) => x.trim()).filter(Boolean);
  if (!oses.length || oses.some((x) => !/^\S+\s+\S+$/.test(x))) bad = complain(f, "pkg-os", "Give at least one operating system, one per line, as name and version (AMAZONLINUX 2023).");
  return text(f, "pkg-usage", "usage instructions", 4000) || bad;
}

function packageDetails(f) {
  const usage = val(f, "pkg-usage");
  return {
    PackageDeliveryOptionDetails: {
      PackageGroupName: val(f, "pkg-group"),
      Installer: { Url: val(f, "pkg-url"), Type: val(f, "pkg-type") },
      Platform: val(f, "pkg-platform"),
      OperatingSystems: val(f, "pkg-os").split("\n").map((x) => x.trim()).filter(Boolean).map((x) => {
        const [Name, Version] = x.split(/\s+/);
        return { Name, Version };
      }),
      ...(usage ? { UsageInstructions: usage } : {}),
    },
  };
}

function updateVersionForm({ doc }) {
  const opts = optionsOf(doc);
  return {
    kind: "update-version",
    intro: "Change a version's release notes and how buyers use it. The AMI or package itself cannot change: add a new version instead.",
    fields: [
      field({ id: "uv-option", label: "Version", key: "Id", options: opts.map(({ version: v, option: o }) => [o.Id, `${v.VersionTitle} (${o.Id})`]) }),
      field({ id: "uv-notes", label: "Release notes (leave empty to keep them)", key: "ReleaseNotes", multiline: true }),
      field({ id: "uv-usage", label: "Usage instructions (leave empty to keep them)", key: "UsageInstructions", multiline: true }),
      field({ id: "uv-type", label: "Recommended instance type (AMI versions; leave empty to keep it)", key: "RecommendedInstanceType" }),
    ],
    check: (f) => {
      let bad = text(f, "uv-notes", "release notes", 30000);
      bad = text(f, "uv-usage", "usage instructions", 4000) || bad;
      const t = val(f, "uv-type");
      const ami = opts.find((o) => o.option.Id === val(f, "uv-option"))?.option.Type === "AmazonMachineImage";
      if (t && (!ami || !/^\S{1,24}$/.test(t))) bad = complain(f, "uv-type", ami ? "Enter an instance type such as m5.large." : "Package versions have no recommended instance type.");
      if (!bad && !val(f, "uv-notes") && !val(f, "uv-usage") && !t) bad = complain(f, "uv-notes", "Change at least one field.");
      return bad;
    },
    changes: (f) => {
      const o = opts.find((x) => x.option.Id === val(f, "uv-option"))?.option;
      const details = {};
      if (val(f, "uv-usage")) details.UsageInstructions = val(f, "uv-usage");
      if (val(f, "uv-type")) details.RecommendedInstanceType = val(f, "uv-type");
      const key = o?.Type === "AmazonMachineImage" ? "AmiDeliveryOptionDetails" : "PackageDeliveryOptionDetails";
      return [{
        ChangeType: "UpdateDeliveryOptions",
        DetailsDocument: {
          ...(val(f, "uv-notes") ? { Version: { ReleaseNotes: val(f, "uv-notes") } } : {}),
          DeliveryOptions: [{ Id: val(f, "uv-option"), Details: { [key]: details } }],
        },
      }];
    },
  };
}

function restrictForm({ doc }) {
  const open = optionsOf(doc).filter((o) => o.option.Visibility !== "Restricted");
  const last = open.length <= 1;
  const boxes = open.map(({ version: v, option: o }) => h("label", { class: "choice" },
    h("input", { type: "checkbox", name: "restrict", value: o.Id, disabled: last, "data-key": "DeliveryOptionIds" }), `${v.VersionTitle} (${o.Id})`));
  return {
    kind: "restrict-version",
    intro: "A restricted version can no longer be bought or built by new buyers; existing subscribers keep it. At least one version must stay public, so the last one cannot be restricted.",
    fields: [h("fieldset", { id: "restrict-options", "aria-describedby": "restrict-options-error" }, h("legend", {}, "Versions to restrict"),
      ...boxes, last ? h("p", { class: "muted" }, open.length ? "This is the product's last public version: add another version before restricting it." : "No public versions are left.") : null,
      h("div", { id: "restrict-options-error" }))],
    check: (f) => {
      const picked = [...f.querySelectorAll("input[name=restrict]:checked")];
      if (!picked.length) return complain(f, "restrict-options", "Choose at least one version.");
      if (picked.length >= open.length) return complain(f, "restrict-options", "At least one version must remain public.");
      return false;
    },
    name: (f) => `Restrict ${[...f.querySelectorAll("input[name=restrict]:checked")].map((b) => b.parentElement.textContent.split(" (")[0]).join(", ")}`,
    changes: (f) => [{ ChangeType: "RestrictDeliveryOptions", DetailsDocument: { DeliveryOptionIds: [...f.querySelectorAll("input[name=restrict]:checked")].map((b) => b.value) } }],
    blocked: last,
  };
}

function allowlistForm({ doc }) {
  const mine = (doc.Targeting?.PositiveTargeting?.BuyerAccounts || []).filter((a) => !MCO_ACCOUNTS.includes(a));
  return {
    kind: "allowlist",
    intro: `Buyers who may subscribe to and build this product while it is Limited. AWS Marketplace's own accounts (${MCO_ACCOUNTS.join(", ")}) are always on it.`,
    fields: [field({ id: "allowlist-accounts", label: "Buyer AWS account IDs", key: "BuyerAccounts", value: mine.join("\n"), multiline: true, help: "One 12-digit account ID per line (or separated by commas); up to 100. The list replaces the current one." })],
    check: (f) => {
      const ids = lines(val(f, "allowlist-accounts"));
      const bad = ids.find((x) => !/^\d{12}$/.test(x));
      if (bad) return complain(f, "allowlist-accounts", `"${bad}" is not a 12-digit AWS account ID.`);
      if (ids.length > 100) return complain(f, "allowlist-accounts", "Give at most 100 account IDs.");
      return false;
    },
    changes: (f) => [{ ChangeType: "UpdateTargeting", DetailsDocument: { PositiveTargeting: { BuyerAccounts: [...new Set(lines(val(f, "allowlist-accounts")))] } } }],
  };
}

function regionsForm({ doc }) {
  const current = new Set(doc.RegionAvailability?.Regions || []);
  const boxes = REGIONS.map((r) => h("label", { class: "choice" }, h("input", { type: "checkbox", name: "region", value: r, checked: current.has(r) }), r));
  const picked = (f) => new Set([...f.querySelectorAll("input[name=region]:checked")].map((b) => b.value));
  return {
    kind: "regions",
    intro: "Check the regions to offer the product in; unchecking one restricts it (existing buyers keep it).",
    fields: [h("fieldset", { id: "regions", class: "columns" }, h("legend", {}, "Regions"), ...boxes, h("div", { id: "regions-error" }))],
    check: (f) => {
      const now = picked(f);
      const same = now.size === current.size && [...now].every((r) => current.has(r));
      return same ? complain(f, "regions", "Check or uncheck at least one region.") : false;
    },
    changes: (f) => {
      const now = picked(f);
      const added = [...now].filter((r) => !current.has(r));
      const removed = [...current].filter((r) => !now.has(r));
      return [
        added.length ? { ChangeType: "AddRegions", DetailsDocument: { Regions: added } } : null,
        removed.length ? { ChangeType: "RestrictRegions", DetailsDocument: { Regions: removed } } : null,
      ].filter(Boolean);
    },
  };
}

function releaseForm({ doc }) {
  const missing = [
    !doc.Description?.ShortDescription && "product information",
    !optionsOf(doc).length && "a version",
  ].filter(Boolean);
  return {
    kind: "release",
    intro: "Release moves the product from Staging to Limited: you and the accounts on its allowlist can then subscribe and build it.",
    fields: [missing.length ? alertBox("warning", "Not ready yet", `The release will fail until the product has ${missing.join(" and ")}.`) : alertBox("info", "Ready to release", "The product has its information and at least one version.")],
    check: () => false,
    changes: () => [{ ChangeType: "ReleaseProduct", DetailsDocument: {} }],
    submit: "Release to Limited",
  };
}

function visibilityForm({ doc }) {
  const now = doc.Description?.Visibility;
  const targets = ["Public", "Restricted", "Limited"].filter((v) => v !== now);
  return {
    kind: "visibility",
    intro: "AWS Marketplace Seller Operations reviews every visibility change; the request shows \"awaiting review\" until the review ends (it can take days). Restricted stops new subscriptions; existing buyers keep the product.",
    fields: [field({ id: "target-visibility", label: "New visibility", key: "TargetVisibility", options: targets })],
    check: () => false,
    name: (f) => `Request ${val(f, "target-visibility")}`,
    changes: (f) => [{ ChangeType: "UpdateVisibility", DetailsDocument: { TargetVisibility: val(f, "target-visibility") } }],
    submit: "Request visibility change",
  };
}
