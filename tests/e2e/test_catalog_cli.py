"""Seed 002's product lifecycle through the stock `aws marketplace-catalog` CLI (its model ships
in botocore: no add-model), joined to seed 000's scans and seed 003's builds: a seller creates a
product, adds a package version (test build and scan) and an AMI version (scan), releases it to
Limited, and buyers build the package; versions come and are restricted; the product goes
Public after a review, then Restricted."""

import json
import subprocess
import time

import pytest

from conftest import (ACCESS_KEY, CONTROL_TOKEN, FAST, SECRET_KEY, aws_bin, cli_env, control, loads)

SELLER = "123456789012"
BUYER = ("111122223333", "AKIABUYER0000000001", "buyer-secret")
STRANGER = ("444455556666", "AKIASTRANGER0000001", "stranger-secret")
LATE_BUYER = ("777788889999", "AKIALATEBUYER000001", "late-secret")
ROLE = f"arn:aws:iam::{SELLER}:role/MarketplaceAmiIngestion"
CLEAN_AMI = "ami-0a1b2c3d4e5f60718"          # Ubuntu, passes every control
PUBLIC_AMI = "ami-02a2b3c4d5e6f7081"         # Amazon Linux 2023, public: any buyer's base
PACKAGE = "s3://demo-seller-packages/agent-1.0.0.rpm"
CATALOG_FAST = ["--change-set-seconds", "0", "--review-seconds", "0", "--ingest-seconds", "0",
                "--scan-seconds", "0", "--control-token", CONTROL_TOKEN]


def accounts_file(tmp_path):
    def account(acct, key, secret, name):
        return {"AccountId": acct, "Principals": [
            {"Name": name, "AccessKeys": [{"AccessKeyId": key, "SecretAccessKey": secret}]}]}
    doc = {"Accounts": [account(SELLER, ACCESS_KEY, SECRET_KEY, "seller"),
                        account(*BUYER, "buyer"), account(*STRANGER, "stranger"),
                        account(*LATE_BUYER, "late")]}
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(doc))
    return str(path)


@pytest.fixture
def lifecycle_server(start_server, tmp_path):
    return start_server("--in-memory", "--accounts", accounts_file(tmp_path), *FAST, *CATALOG_FAST)


class Cli:
    """`aws <service> …` as the seller or another account."""

    def __init__(self, home, endpoint):
        self.home, self.endpoint = home, endpoint

    def run(self, service, *args, who=None, check=True):
        env = cli_env(self.home)
        if who:
            env.update(AWS_ACCESS_KEY_ID=who[1], AWS_SECRET_ACCESS_KEY=who[2])
        p = subprocess.run([aws_bin(), service, *args, "--endpoint-url", self.endpoint, "--output", "json"],
                           env=env, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {service} {' '.join(args)} failed ({p.returncode}): {p.stderr}")
        return p

    def catalog(self, *args, **kw):
        return self.run("marketplace-catalog", *args, **kw)

    def changes(self, changes, *extra):
        out = loads(self.catalog("start-change-set", "--catalog", "AWSMarketplace",
                                 "--change-set", json.dumps(changes), *extra))
        assert out["ChangeSetArn"].endswith("/ChangeSet/" + out["ChangeSetId"])
        return self.wait(out["ChangeSetId"])

    def wait(self, cs_id, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            d = loads(self.catalog("describe-change-set", "--catalog", "AWSMarketplace", "--change-set-id", cs_id))
            if d["Status"] not in ("PREPARING", "APPLYING"):
                return d
            time.sleep(0.1)
        raise AssertionError(f"change set {cs_id} did not end")

    def entity(self, entity_id):
        return loads(self.catalog("describe-entity", "--catalog", "AWSMarketplace", "--entity-id", entity_id))

    def build(self, fo, who=None, check=True):
        return self.run("marketplaceimagebuild", "start-build", "--source-image-id", PUBLIC_AMI,
                        "--fulfillment-option-ids", fo, "--destination-image-name", "agent image",
                        who=who, check=check)


def product_change(change_type, product, details):
    return {"ChangeType": change_type, "Entity": {"Type": "AmiProduct@1.0", "Identifier": product},
            "DetailsDocument": details}


def package_version(title, group, url=PACKAGE):
    return {"Version": {"VersionTitle": title, "ReleaseNotes": f"Release {title}"},
            "DeliveryOptions": [{"Details": {"PackageDeliveryOptionDetails": {
                "PackageGroupName": group, "Installer": {"Url": url, "Type": ".rpm"}, "Platform": "Linux",
                "OperatingSystems": [{"Name": "AMAZONLINUX", "Version": "2023"}]}}}]}


def ami_version(title, ami=CLEAN_AMI, user="ubuntu"):
    return {"Version": {"VersionTitle": title, "ReleaseNotes": f"Release {title}"},
            "DeliveryOptions": [{"Details": {"AmiDeliveryOptionDetails": {
                "AmiSource": {"AmiId": ami, "AccessRoleArn": ROLE, "UserName": user,
                              "OperatingSystemName": "UBUNTU", "OperatingSystemVersion": "22.04"},
                "UsageInstructions": "Connect with SSH as ubuntu.", "RecommendedInstanceType": "m5.large",
                "SecurityGroups": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": ["0.0.0.0/0"]}]}}}]}


INFORMATION = {"ShortDescription": "An agent.", "LongDescription": "An agent for servers.",
               "LogoUrl": "https://example.com/logo.png", "Highlights": ["Fast"],
               "SupportDescription": "Mail support@example.com", "Categories": ["Operating Systems"],
               "SearchKeywords": ["agent"]}


def option_of(entity, title):
    version = next(v for v in entity["DetailsDocument"]["Versions"] if v["VersionTitle"] == title)
    return version["DeliveryOptions"][0]


def test_seller_to_buyer_lifecycle_with_the_stock_cli(aws_home, lifecycle_server):
    cli = Cli(aws_home, lifecycle_server.endpoint)
    # create the product with its information, a package version and an AMI version
    d = cli.changes([
        {"ChangeType": "CreateProduct", "Entity": {"Type": "AmiProduct@1.0"}, "ChangeName": "Create",
         "DetailsDocument": {"ProductTitle": "Example Agent"}},
        product_change("UpdateInformation", "$Create.Entity.Identifier", INFORMATION),
        product_change("AddDeliveryOptions", "$Create.Entity.Identifier", package_version("1.0.0-pkg", "agent-1_0_0")),
        product_change("AddRegions", "$Create.Entity.Identifier", {"Regions": ["us-east-1", "us-west-2"]}),
    ])
    assert d["Status"] == "SUCCEEDED", d
    assert all(c["ErrorDetailList"] == [] for c in d["ChangeSet"])
    product = d["ChangeSet"][0]["Entity"]["Identifier"].split("@")[0]
    assert product.startswith("prod-") and len(product) == 18
    assert len(d["ChangeSetId"]) == 25 and len(d["StartTime"]) == 20 and d["EndTime"].endswith("Z")
    d = cli.changes([product_change("AddDeliveryOptions", product, ami_version("1.0.0"))])
    assert d["Status"] == "SUCCEEDED", d
    e = cli.entity(product)
    assert e["EntityType"] == "AmiProduct@1.0" and e["EntityIdentifier"] == f"{product}@2"
    assert json.loads(e["Details"]) == e["DetailsDocument"]
    doc = e["DetailsDocument"]
    assert doc["Description"]["Visibility"] == "Draft" and doc["Description"]["ProductTitle"] == "Example Agent"
    assert [v["VersionTitle"] for v in doc["Versions"]] == ["1.0.0-pkg", "1.0.0"]
    fo = option_of(e, "1.0.0-pkg")["Id"]
    ami_option = option_of(e, "1.0.0")
    assert fo.startswith("fo-") and ami_option["Type"] == "AmazonMachineImage"
    assert doc["Versions"][1]["Sources"][0]["Image"] == CLEAN_AMI
    # the AMI version's scan ran through the scanning service
    scan = loads(cli.run("marketplaceamiscanning", "describe-scans", "--filters", f"Name=image-id,Values={CLEAN_AMI}"))
    assert scan["Scans"][0]["Status"] == "Succeeded"
    # Draft: only the seller builds it
    assert cli.build(fo).returncode == 0
    assert "does not exist" in cli.build(fo, who=BUYER, check=False).stderr
    # release to Limited with the buyer on the allowlist
    d = cli.changes([product_change("UpdateTargeting", product, {"PositiveTargeting": {"BuyerAccounts": [BUYER[0]]}}),
                     product_change("ReleaseProduct", product, {})])
    assert d["Status"] == "SUCCEEDED", d
    assert cli.entity(product)["DetailsDocument"]["Description"]["Visibility"] == "Limited"
    built = loads(cli.build(fo, who=BUYER))
    assert built["BuildId"]
    stranger = cli.build(fo, who=STRANGER, check=False)
    assert stranger.returncode != 0 and "InvalidFulfillmentOptionIdException" in stranger.stderr
    ami_refused = cli.build(ami_option["Id"], check=False)
    assert "InvalidFulfillmentOptionIdException" in ami_refused.stderr and "launch" in ami_refused.stderr
    # versions 1.1.0 and 1.1.1, information updated, 1.1.0 restricted
    assert cli.changes([product_change("AddDeliveryOptions", product, package_version("1.1.0", "agent-1_1_0"))])["Status"] == "SUCCEEDED"
    fo_110 = option_of(cli.entity(product), "1.1.0")["Id"]
    assert loads(cli.build(fo_110, who=BUYER))["BuildId"]
    d = cli.changes([product_change("UpdateDeliveryOptions", product, {
        "Version": {"ReleaseNotes": "Fixes the installer."},
        "DeliveryOptions": [{"Id": fo_110, "Details": {"PackageDeliveryOptionDetails": {"UsageInstructions": "Run agent --help"}}}]})])
    assert d["Status"] == "SUCCEEDED", d
    v110 = next(v for v in cli.entity(product)["DetailsDocument"]["Versions"] if v["VersionTitle"] == "1.1.0")
    assert v110["ReleaseNotes"] == "Fixes the installer."
    assert v110["DeliveryOptions"][0]["Instructions"]["Usage"] == "Run agent --help"
    assert cli.changes([product_change("AddDeliveryOptions", product, package_version("1.1.1", "agent-1_1_1"))])["Status"] == "SUCCEEDED"
    d = cli.changes([product_change("RestrictDeliveryOptions", product, {"DeliveryOptionIds": [fo_110]})])
    assert d["Status"] == "SUCCEEDED", d
    assert option_of(cli.entity(product), "1.1.0")["Visibility"] == "Restricted"
    # a new buyer cannot pick the restricted version; the existing subscriber still builds it
    d = cli.changes([product_change("UpdateTargeting", product, {"PositiveTargeting": {"BuyerAccounts": [BUYER[0], LATE_BUYER[0]]}})])
    assert d["Status"] == "SUCCEEDED"
    late = cli.build(fo_110, who=LATE_BUYER, check=False)
    assert "restricted version" in late.stderr
    assert loads(cli.build(fo_110, who=BUYER))["BuildId"]
    # Public after the Seller Operations review: anyone builds the open versions
    d = cli.changes([product_change("UpdateVisibility", product, {"TargetVisibility": "Public"})])
    assert d["Status"] == "SUCCEEDED", d
    assert cli.entity(product)["DetailsDocument"]["Description"]["Visibility"] == "Public"
    assert loads(cli.build(fo, who=STRANGER))["BuildId"]
    # Restricted: only existing subscribers
    d = cli.changes([product_change("UpdateVisibility", product, {"TargetVisibility": "Restricted"})])
    assert d["Status"] == "SUCCEEDED", d
    assert "does not exist" in cli.build(fo, who=LATE_BUYER, check=False).stderr
    assert loads(cli.build(fo, who=BUYER))["BuildId"]
    # the seller sees every change set of the journey, newest first
    listed = loads(cli.catalog("list-change-sets", "--catalog", "AWSMarketplace"))["ChangeSetSummaryList"]
    assert len(listed) == 10 and all(s["Status"] == "SUCCEEDED" for s in listed)
    assert [s["StartTime"] for s in listed] == sorted((s["StartTime"] for s in listed), reverse=True)
    # buyers see none of the seller's entities
    assert "ResourceNotFoundException" in cli.catalog("describe-entity", "--catalog", "AWSMarketplace",
                                                      "--entity-id", product, who=BUYER, check=False).stderr


def test_review_can_be_held_and_rejected(aws_home, lifecycle_server):
    cli = Cli(aws_home, lifecycle_server.endpoint)
    d = cli.changes([
        {"ChangeType": "CreateProduct", "Entity": {"Type": "AmiProduct@1.0"}, "ChangeName": "C", "DetailsDocument": {"ProductTitle": "Reviewed"}},
        product_change("UpdateInformation", "$C.Entity.Identifier", INFORMATION),
        product_change("AddDeliveryOptions", "$C.Entity.Identifier", package_version("1.0", "reviewed-1")),
        product_change("ReleaseProduct", "$C.Entity.Identifier", {}),
    ])
    assert d["Status"] == "SUCCEEDED", d
    product = d["ChangeSet"][0]["Entity"]["Identifier"]
    control(lifecycle_server, "PUT", "review", {"Outcome": "Hold"})
    out = loads(cli.catalog("start-change-set", "--catalog", "AWSMarketplace", "--change-set",
                            json.dumps([product_change("UpdateVisibility", product, {"TargetVisibility": "Public"})])))
    time.sleep(0.5)
    held = loads(cli.catalog("describe-change-set", "--catalog", "AWSMarketplace", "--change-set-id", out["ChangeSetId"]))
    assert held["Status"] == "APPLYING" and "EndTime" not in held
    # the product is locked while its review is open
    busy = cli.catalog("start-change-set", "--catalog", "AWSMarketplace", "--change-set",
                       json.dumps([product_change("AddRegions", product, {"Regions": ["eu-west-1"]})]), check=False)
    assert "ResourceInUseException" in busy.stderr
    assert f"entity: '{product}'  change sets: {out['ChangeSetId']}" in busy.stderr
    control(lifecycle_server, "PUT", "review", {"Outcome": "Reject", "Message": "Logo is blurry."})
    control(lifecycle_server, "POST", "advance", {"ChangeSetId": out["ChangeSetId"]})
    d = cli.wait(out["ChangeSetId"])
    assert d["Status"] == "FAILED" and d["FailureCode"] == "CLIENT_ERROR"
    assert d["ChangeSet"][0]["ErrorDetailList"] == [{"ErrorCode": "AUDIT_ERROR", "ErrorMessage": "Logo is blurry."}]
    assert cli.entity(product)["DetailsDocument"]["Description"]["Visibility"] == "Limited"
