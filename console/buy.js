// The buyer's side of a package version: build it into one of your own AMIs (the fulfillment
// option prefilled from the product page's link) and follow that build to its end.

import { h, show, badge, alertBox, when, readable, call, all, poll } from "./lib.js";

const NAME_PATTERN = /^[a-zA-Z0-9()[\] ./\-'@_]{3,128}$/;

export async function buildFromVersion(params) {
  const fo = params.get("fo") || "";
  const product = params.get("product") || "";
  const version = params.get("version") || "";
  const images = await all("scan", "ListImages", { MaxResults: 100 }, "Images");
  const token = crypto.randomUUID();
  const pick = h("select", { id: "source-pick", "aria-describedby": "source-pick-help" },
    h("option", { value: "" }, images.length ? "Choose one of your AMIs" : "You own no AMIs in this Region"),
    ...images.map((i) => h("option", { value: i.ImageId }, `${i.ImageId} — ${i.Name || "unnamed"} (${i.Platform})`)));
  const other = h("input", { id: "source-other", spellcheck: "false", placeholder: "ami-…" });
  const foInput = h("input", { id: "build-fo", value: fo, spellcheck: "false", required: true });
  const name = h("input", { id: "build-name", required: true, value: version ? `with ${version}` : "" });
  const result = h("div", { "aria-live": "assertive" });
  const form = h("form", { class: "card", novalidate: true, "aria-labelledby": "build-title" },
    h("h2", { id: "build-title" }, "Build a new AMI"),
    h("label", { for: "build-fo" }, "Fulfillment option ID"), foInput,
    h("label", { for: "source-pick" }, "Source AMI"),
    h("p", { id: "source-pick-help", class: "muted" }, "Your AMI to install the package on; a copy is made, your AMI is not changed."),
    pick,
    h("label", { for: "source-other" }, "Or another AMI ID (shared with you or public)"), other,
    h("label", { for: "build-name" }, "New AMI name"), name,
    result,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Start build")));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const source = other.value.trim() || pick.value;
    const problems = [];
    if (!/^fo-[a-z0-9]+$/i.test(foInput.value.trim())) problems.push("Give the fulfillment option ID of the version (fo-…).");
    if (!/^ami-[0-9a-zA-Z]{8,17}$/.test(source)) problems.push("Choose the source AMI, or enter an AMI ID.");
    if (!NAME_PATTERN.test(name.value.trim())) problems.push("The new AMI's name has 3 to 128 letters, digits, spaces and ( ) [ ] . / - ' @ _.");
    if (problems.length) {
      result.replaceChildren(alertBox("error", "Missing or wrong information", ...problems));
      return;
    }
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const out = await call("build", "StartBuild", {
        FulfillmentOptionIds: [foInput.value.trim()], SourceImageId: source, DestinationImageName: name.value.trim(), ClientToken: token,
      });
      location.hash = `#/builds/${out.BuildId}`;
    } catch (e) {
      result.replaceChildren(alertBox("error", "The build could not start", readable(e)));
      button.disabled = false;
    }
  });
  show(h("p", {}, product ? h("a", { href: `#/products/${product}` }, "← The product (sellers)") : h("a", { href: "#/builds" }, "← Builds")),
    h("h1", {}, version ? `Build with version ${version}` : "Build with a package version"),
    h("div", { id: "page-error" }), form);
}

export async function buildDetail(id) {
  const got = await call("build", "DescribeBuilds", { BuildIds: [id] });
  const b = got.Builds?.[0];
  if (!b) {
    show(h("h1", {}, "Build not found"), alertBox("error", "No such build", `There is no build ${id} in this account and Region.`));
    return;
  }
  const logs = [b.StandardOutputUrl && h("a", { href: b.StandardOutputUrl, target: "_blank", rel: "noopener" }, "stdout"),
    b.StandardErrorUrl && h("a", { href: b.StandardErrorUrl, target: "_blank", rel: "noopener" }, "stderr")].filter(Boolean);
  show(h("p", {}, h("a", { href: "#/builds" }, "← Builds")),
    h("div", { class: "page-head" }, h("h1", {}, b.DestinationImage?.Name ? `Build of “${b.DestinationImage.Name}”` : "Build"), h("span", { id: "build-status" }, badge(b.Status))),
    h("div", { id: "page-error" }),
    b.Status === "InProgress" ? alertBox("info", "In progress…", "The page updates as the build moves on.")
      : b.Status === "Succeeded" ? alertBox("success", "Build succeeded", `Your new AMI is ${b.DestinationImage?.Id}.`)
        : alertBox("error", `Build ${b.Status === "Failed" ? "failed" : "ended with an internal error"}`, b.ErrorDetail ? `${b.ErrorDetail.Code}: ${b.ErrorDetail.Message}` : ""),
    h("dl", { class: "review" },
      h("dt", {}, "Build ID"), h("dd", {}, h("code", {}, b.BuildId)),
      h("dt", {}, "Products"), h("dd", {}, (b.Products || []).map((p) => `${p.Title || p.Id} ${p.Version || ""}`.trim()).join(", ") || "—"),
      h("dt", {}, "Source AMI"), h("dd", {}, h("code", {}, b.SourceImage?.Id || "—")),
      h("dt", {}, "New AMI"), h("dd", {}, b.DestinationImage?.Id ? h("code", {}, b.DestinationImage.Id) : "—"),
      h("dt", {}, "Started"), h("dd", {}, when(b.StartTime)),
      h("dt", {}, "Last updated"), h("dd", {}, when(b.LastUpdateTime)),
      h("dt", {}, "Logs"), h("dd", { id: "build-logs" }, logs.length ? logs.flatMap((a, i) => (i ? [" · ", a] : [a])) : "—")));
  if (b.Status === "InProgress") poll(() => buildDetail(id), { backoff: true });
}
