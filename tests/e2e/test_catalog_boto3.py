"""The Catalog API through boto3's own `marketplace-catalog` client: paginators, VALIDATE,
idempotent retries, the 423 race, a scan failure with its findings URL, stale revisions, bad
input, every modeled error as its boto3 exception class, and a model check of the router
against botocore's shipped model."""

import concurrent.futures
import json
import time
import urllib.request

import boto3
import botocore.config
import pytest

from conftest import (ACCESS_KEY, CONTROL_TOKEN, FAST, SECRET_KEY, control)

ROLE = "arn:aws:iam::123456789012:role/MarketplaceAmiIngestion"
VULNERABLE = "ami-0a5ca0000000000a1"
CLEAN = "ami-0a1b2c3d4e5f60718"
FAST_SETS = ["--change-set-seconds", "0", "--review-seconds", "0", "--ingest-seconds", "0",
             "--scan-seconds", "0", "--control-token", CONTROL_TOKEN]


def catalog_client(endpoint):
    cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})
    return boto3.client("marketplace-catalog", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, config=cfg)


@pytest.fixture
def cat_server(start_server):
    return start_server("--in-memory", *FAST, *FAST_SETS)


@pytest.fixture
def cat(cat_server):
    return catalog_client(cat_server.endpoint)


def start(cat, changes, **kw):
    return cat.start_change_set(Catalog="AWSMarketplace", ChangeSet=changes, **kw)["ChangeSetId"]


def wait(cat, cs_id, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        d = cat.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=cs_id)
        if d["Status"] not in ("PREPARING", "APPLYING"):
            return d
        time.sleep(0.05)
    raise AssertionError(f"{cs_id} did not end")


def create(title):
    return {"ChangeType": "CreateProduct", "Entity": {"Type": "AmiProduct@1.0"}, "ChangeName": "C",
            "DetailsDocument": {"ProductTitle": title}}


def change(change_type, product, details):
    return {"ChangeType": change_type, "Entity": {"Type": "AmiProduct@1.0", "Identifier": product},
            "DetailsDocument": details}


def ami_version(title, ami, user="ec2-user"):
    return {"Version": {"VersionTitle": title, "ReleaseNotes": "notes"},
            "DeliveryOptions": [{"Details": {"AmiDeliveryOptionDetails": {
                "AmiSource": {"AmiId": ami, "AccessRoleArn": ROLE, "UserName": user,
                              "OperatingSystemName": "AMAZONLINUX", "OperatingSystemVersion": "2023"},
                "UsageInstructions": "ssh", "RecommendedInstanceType": "m5.large"}}}]}


def new_product(cat, title):
    d = wait(cat, start(cat, [create(title)]))
    assert d["Status"] == "SUCCEEDED", d
    return d["ChangeSet"][0]["Entity"]["Identifier"]


def test_paginators_walk_every_change_set_and_product(cat):
    for i in range(7):
        new_product(cat, f"Product {i}")
    pages = list(cat.get_paginator("list_change_sets").paginate(
        Catalog="AWSMarketplace", PaginationConfig={"PageSize": 3}))
    assert [len(p["ChangeSetSummaryList"]) for p in pages] == [3, 3, 1]
    assert "NextToken" not in pages[-1]
    ids = [s["ChangeSetId"] for p in pages for s in p["ChangeSetSummaryList"]]
    assert len(set(ids)) == 7
    pages = list(cat.get_paginator("list_entities").paginate(
        Catalog="AWSMarketplace", EntityType="AmiProduct", PaginationConfig={"PageSize": 2},
        EntityTypeSort={"AmiProductSort": {"SortBy": "ProductTitle", "SortOrder": "ASCENDING"}}))
    titles = [e["Name"] for p in pages for e in p["EntitySummaryList"]]
    assert titles == sorted(titles) and len(titles) == 8  # 7 new + the demo world's product of this seller
    # the default order (newest change first) comes from the store's index, page by page, then
    # the world's unchanged products of this seller
    pages = list(cat.get_paginator("list_entities").paginate(
        Catalog="AWSMarketplace", EntityType="AmiProduct", PaginationConfig={"PageSize": 3}))
    assert [len(p["EntitySummaryList"]) for p in pages] == [3, 3, 2]
    newest = [e["Name"] for p in pages for e in p["EntitySummaryList"]]
    assert newest == [f"Product {i}" for i in range(6, -1, -1)] + ["Demo Seller Appliance"]
    drafts = cat.list_entities(Catalog="AWSMarketplace", EntityType="AmiProduct",
                               EntityTypeFilters={"AmiProductFilters": {"Visibility": {"ValueList": ["Draft"]}}})
    assert len(drafts["EntitySummaryList"]) == 7 and "NextToken" not in drafts
    wild = cat.list_entities(Catalog="AWSMarketplace", EntityType="AmiProduct",
                             EntityTypeFilters={"AmiProductFilters": {"ProductTitle": {"WildCardValue": "uct 3"}}})
    assert [e["Name"] for e in wild["EntitySummaryList"]] == ["Product 3"]
    failed = cat.list_change_sets(Catalog="AWSMarketplace", FilterList=[{"Name": "Status", "ValueList": ["FAILED"]}])
    assert failed["ChangeSetSummaryList"] == []
    with pytest.raises(cat.exceptions.ValidationException):
        cat.list_change_sets(Catalog="AWSMarketplace", NextToken="bogus")


def test_validate_changes_nothing_and_a_retry_gets_the_same_change_set(cat):
    product = new_product(cat, "Validated")
    before = cat.describe_entity(Catalog="AWSMarketplace", EntityId=product)
    d = wait(cat, start(cat, [change("AddDeliveryOptions", product, ami_version("2.0", CLEAN, "ubuntu"))], Intent="VALIDATE"))
    assert d["Status"] == "SUCCEEDED" and d["Intent"] == "VALIDATE"
    after = cat.describe_entity(Catalog="AWSMarketplace", EntityId=product)
    assert after["EntityIdentifier"] == before["EntityIdentifier"] and after["DetailsDocument"]["Versions"] == []
    body = [change("AddRegions", product, {"Regions": ["us-west-2"]})]
    first = start(cat, body, ClientRequestToken="retry-me-1")
    assert start(cat, body, ClientRequestToken="retry-me-1") == first
    with pytest.raises(cat.exceptions.ValidationException) as e:
        start(cat, [change("AddRegions", product, {"Regions": ["eu-west-1"]})], ClientRequestToken="retry-me-1")
    assert "different request parameters" in str(e.value)
    assert wait(cat, first)["Status"] == "SUCCEEDED"
    assert len(cat.list_change_sets(Catalog="AWSMarketplace")["ChangeSetSummaryList"]) == 3


def test_sixteen_racing_change_sets_on_one_entity_one_wins(cat_server, cat):
    product = new_product(cat, "Contended")
    control(cat_server, "POST", "transitions", {"Resource": "changeset", "Mode": "manual"})

    def attempt(i):
        c = catalog_client(cat_server.endpoint)
        try:
            return ("ok", start(c, [change("AddRegions", product, {"Regions": ["us-west-2"]})], ChangeSetName=f"race {i}"))
        except c.exceptions.ResourceInUseException as e:
            return ("423", e.response["Error"]["Message"], e.response["ResponseMetadata"]["HTTPStatusCode"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(attempt, range(16)))
    winners = [r[1] for r in results if r[0] == "ok"]
    losers = [r for r in results if r[0] == "423"]
    assert len(winners) == 1 and len(losers) == 15
    assert all(status == 423 for _, _, status in losers)
    expected = f"Requested change set has entities locked by change sets - entity: '{product}'  change sets: {winners[0]}"
    assert {m for _, m, _ in losers} == {expected}
    # cancel only while PREPARING; the lock goes with it
    cat.cancel_change_set(Catalog="AWSMarketplace", ChangeSetId=winners[0])
    d = cat.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=winners[0])
    assert d["Status"] == "CANCELLED" and d["EndTime"]
    with pytest.raises(cat.exceptions.ResourceInUseException):
        cat.cancel_change_set(Catalog="AWSMarketplace", ChangeSetId=winners[0])
    again = start(cat, [change("AddRegions", product, {"Regions": ["us-west-2"]})])
    control(cat_server, "POST", "advance", {"ChangeSetId": again, "Steps": 3})
    assert cat.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=again)["Status"] == "SUCCEEDED"


def test_scan_findings_fail_the_version_with_a_url_to_them(cat):
    product = new_product(cat, "Scanned")
    d = wait(cat, start(cat, [change("AddDeliveryOptions", product, ami_version("1.0", VULNERABLE))]))
    assert d["Status"] == "FAILED" and d["FailureCode"] == "CLIENT_ERROR"
    assert d["FailureDescription"] == "Change set preparation has failed. For details see 'ErrorDetailList'."
    [err] = d["ChangeSet"][0]["ErrorDetailList"]
    assert err["ErrorCode"] == "SCAN_ERROR" and err["ErrorMessage"].startswith("http://127.0.0.1:")
    with urllib.request.urlopen(err["ErrorMessage"], timeout=10) as r:
        findings = json.loads(r.read())
    assert findings and all(f["ErrorCode"] == "SCAN_ERROR" for f in findings)
    assert any(VULNERABLE in f["ErrorMessage"] for f in findings)
    tampered = err["ErrorMessage"].replace("Signature=", "Signature=00")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(tampered, timeout=10)
    assert e.value.code == 403
    # nothing was added; an ingestion problem reads as AWS's asset codes
    assert cat.describe_entity(Catalog="AWSMarketplace", EntityId=product)["DetailsDocument"]["Versions"] == []
    d = wait(cat, start(cat, [change("AddDeliveryOptions", product, ami_version("1.0", "ami-0d1b2c3d4e5f60718"))]))
    assert d["ChangeSet"][0]["ErrorDetailList"][0]["ErrorCode"] == "ASSET_ACCESS_EXCEPTION"
    d = wait(cat, start(cat, [change("AddDeliveryOptions", product, ami_version("1.0", "ami-0f1b2c3d4e5f60718"))]))
    assert d["ChangeSet"][0]["ErrorDetailList"][0]["ErrorCode"] == "ASSET_NOT_FOUND"


def test_stale_revisions_and_bad_input_are_refused_and_change_nothing(cat):
    product = new_product(cat, "Revised")
    wait(cat, start(cat, [change("AddRegions", product, {"Regions": ["us-west-2"]})]))
    latest = cat.describe_entity(Catalog="AWSMarketplace", EntityId=product)["EntityIdentifier"]
    assert latest == f"{product}@2"
    with pytest.raises(cat.exceptions.ValidationException) as e:
        start(cat, [change("AddRegions", f"{product}@1", {"Regions": ["eu-west-1"]})])
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 422
    assert f"Use the latest RevisionId: {latest}" in str(e.value)
    ok = wait(cat, start(cat, [change("AddRegions", latest, {"Regions": ["eu-west-1"]})]))
    assert ok["Status"] == "SUCCEEDED"
    bad = [
        ([{"ChangeType": "AddRegions", "Entity": {"Type": "AmiProduct@1.0", "Identifier": product}, "Details": "not json"}], "Details"),
        ([{"ChangeType": "AddRegions", "Entity": {"Type": "AmiProduct@1.0", "Identifier": product}, "Details": "{}", "DetailsDocument": {}}], "not both"),
        ([change("AddRegions", product, {"Regions": ["us-east-1"]})] * 21, "20"),
        ([change("AddRegions", product, {"Regions": ["a"]}), change("AddRegions", product, {"Regions": ["b"]})], "more than once"),
        ([change("Explode", product, {})], "Unsupported change type"),
        ([{"ChangeType": "AddRegions", "Entity": {"Type": "SaaSProduct@1.0", "Identifier": product}, "DetailsDocument": {}}], "Unsupported entity type"),
        ([change("AddRegions", "$Nope.Entity.Identifier", {"Regions": ["us-east-1"]})], "$Nope"),
        ([change("AddRegions", product, {"Regions": ["us-east-1"], "Extra": 1})], "Extra"),
        ([change("AddInstanceTypes", product, {"InstanceTypes": ["m5 large"]})], "InstanceTypes"),
        ([change("UpdateVisibility", product, {"TargetVisibility": "Public", "ReplacementProductId": "prod-abcd1234efgh5"})], "ReplacementProductId"),
    ]
    for changes, needle in bad:
        with pytest.raises(cat.exceptions.ValidationException) as e:
            start(cat, changes)
        assert needle in str(e.value), (needle, str(e.value))
    with pytest.raises(cat.exceptions.ResourceNotFoundException) as e:
        start(cat, [change("AddRegions", "prod-abcd1234efgh5", {"Regions": ["us-east-1"]})])
    assert "prod-abcd1234efgh5" in str(e.value)
    assert cat.describe_entity(Catalog="AWSMarketplace", EntityId=product)["EntityIdentifier"] == f"{product}@3"
    assert len(cat.list_change_sets(Catalog="AWSMarketplace")["ChangeSetSummaryList"]) == 3


def test_tags_policies_and_batch_describe(cat):
    product = new_product(cat, "Tagged")
    arn = cat.describe_entity(Catalog="AWSMarketplace", EntityId=product)["EntityArn"]
    cat.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "dev"}])
    cat.untag_resource(ResourceArn=arn, TagKeys=["env"])
    assert cat.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "a"}]
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    cat.put_resource_policy(ResourceArn=arn, Policy=policy)
    assert cat.get_resource_policy(ResourceArn=arn)["Policy"] == policy
    cat.delete_resource_policy(ResourceArn=arn)
    with pytest.raises(cat.exceptions.ResourceNotFoundException):
        cat.get_resource_policy(ResourceArn=arn)
    out = cat.batch_describe_entities(EntityRequestList=[
        {"Catalog": "AWSMarketplace", "EntityId": product},
        {"Catalog": "AWSMarketplace", "EntityId": "prod-doesnotexist1"}])
    assert set(out["EntityDetails"]) == {product} and "Details" not in out["EntityDetails"][product]
    assert out["Errors"]["prod-doesnotexist1"]["ErrorCode"] == "ResourceNotFoundException"
    cs = start(cat, [change("AddRegions", product, {"Regions": ["us-west-2"]})], ChangeSetTags=[{"Key": "k", "Value": "v"}])
    cs_arn = cat.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=cs)["ChangeSetArn"]
    assert cat.list_tags_for_resource(ResourceArn=cs_arn)["Tags"] == [{"Key": "k", "Value": "v"}]


MODELED = {"ValidationException": 422, "ResourceNotFoundException": 404, "ResourceInUseException": 423,
           "ServiceQuotaExceededException": 402, "AccessDeniedException": 403,
           "ResourceNotSupportedException": 415, "ThrottlingException": 429, "InternalServiceException": 500}


def test_every_modeled_error_reaches_boto3_as_its_class(cat_server, cat):
    for name, status in MODELED.items():
        control(cat_server, "PUT", "faults", {"Rules": [{"Operation": "DescribeEntity", "Exception": name, "Count": 1}]})
        with pytest.raises(getattr(cat.exceptions, name)) as e:
            cat.describe_entity(Catalog="AWSMarketplace", EntityId="prod-demoseller1")
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
        assert e.value.response["Error"]["Message"] == "Injected fault"
    assert cat.describe_entity(Catalog="AWSMarketplace", EntityId="prod-demoseller1")["EntityType"] == "AmiProduct@1.0"


def test_router_matches_botocores_model(cat_server, cat):
    """botocore's own model (loaded from the venv, no copy in the repo) against the router: each
    operation's method and path reach it, its query-string members are read under the model's
    wire names, the other methods on its path are refused, and every error shape it names has
    the status the server gives that shape."""
    model = cat.meta.service_model
    arn = "arn:aws:aws-marketplace:us-east-1:123456789012:AWSMarketplace/AmiProduct/prod-nonexistent12"
    calls = {  # operation → parameters whose answer proves the operation ran (404: looked it up)
        "StartChangeSet": {"Catalog": "AWSMarketplace", "ChangeSet": [change("AddRegions", "prod-nonexistent12", {"Regions": ["us-east-1"]})]},
        "DescribeChangeSet": {"Catalog": "AWSMarketplace", "ChangeSetId": "x" * 25},
        "CancelChangeSet": {"Catalog": "AWSMarketplace", "ChangeSetId": "x" * 25},
        "DescribeEntity": {"Catalog": "AWSMarketplace", "EntityId": "prod-nonexistent12"},
        "TagResource": {"ResourceArn": arn, "Tags": [{"Key": "k", "Value": "v"}]},
        "UntagResource": {"ResourceArn": arn, "TagKeys": ["k"]},
        "ListTagsForResource": {"ResourceArn": arn},
        "PutResourcePolicy": {"ResourceArn": arn, "Policy": "{}"},
        "GetResourcePolicy": {"ResourceArn": arn},
        "DeleteResourcePolicy": {"ResourceArn": arn},
    }
    listing = {"ListChangeSets": {"Catalog": "AWSMarketplace"},
               "ListEntities": {"Catalog": "AWSMarketplace", "EntityType": "AmiProduct"},
               "BatchDescribeEntities": {"EntityRequestList": [{"Catalog": "AWSMarketplace", "EntityId": "prod-x12"}]}}
    py_name = {v: k for k, v in cat.meta.method_to_api_mapping.items()}
    for name in list(calls) + list(listing):
        op = model.operation_model(name)
        assert op.http["requestUri"] == f"/{name}", name
        if name in calls:
            with pytest.raises(cat.exceptions.ResourceNotFoundException):
                getattr(cat, py_name[name])(**calls[name])
        else:
            assert getattr(cat, py_name[name])(**listing[name])["ResponseMetadata"]["HTTPStatusCode"] == 200
        for method in {"GET", "POST", "PATCH", "DELETE", "PUT"} - {op.http["method"]}:
            req = urllib.request.Request(f"{cat_server.endpoint}/{name}", method=method)
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            assert e.value.code == 404, (name, method)
        for err in op.error_shapes:
            assert MODELED[err.name] == err.metadata["error"]["httpStatusCode"], (name, err.name)
    # a query member given twice, or missing, is refused by name
    for query, needle in (("catalog=AWSMarketplace&catalog=AWSMarketplace&entityId=prod-x", "more than once"),
                          ("catalog=AWSMarketplace", "entityId")):
        body = _signed_get(cat_server.endpoint, "/DescribeEntity", query)
        assert body[0] == 422 and needle in body[1]["Message"], body
    # operations of newer botocore releases that this service does not serve are not routed
    for name in set(model.operation_names) - set(calls) - set(listing):
        assert name in {"StartAssessment", "DescribeAssessment", "ListAssessments"}, name


def _signed_get(endpoint, path, query):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    req = AWSRequest(method="GET", url=f"{endpoint}{path}?{query}")
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "aws-marketplace", "us-east-1").add_auth(req)
    r = urllib.request.Request(req.url, headers=dict(req.headers), method="GET")
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def package_version(title, group, url="s3://demo-seller-packages/agent-1.0.0.rpm", oses=(("AMAZONLINUX", "2023"),), platform="Linux", ty=".rpm"):
    return {"Version": {"VersionTitle": title, "ReleaseNotes": "notes"},
            "DeliveryOptions": [{"Details": {"PackageDeliveryOptionDetails": {
                "PackageGroupName": group, "Installer": {"Url": url, "Type": ty}, "Platform": platform,
                "OperatingSystems": [{"Name": n, "Version": v} for n, v in oses]}}}]}


def first_error(cat, product, details):
    d = wait(cat, start(cat, [change("AddDeliveryOptions", product, details)]))
    assert d["Status"] == "FAILED", d
    return d["FailureCode"], d["ChangeSet"][0]["ErrorDetailList"][0]


def test_every_version_failure_has_its_documented_code(cat):
    product = new_product(cat, "Failures")
    cases = [
        (ami_version("a", "ami-0a5ca0000000000aa"), "CLIENT_ERROR", "INVALID_AMI_ARCHITECTURE"),
        (ami_version("a", "ami-0a5ca0000000000a9"), "CLIENT_ERROR", "INVALID_AMI_VIRTUALIZATION_TYPE"),
        (ami_version("a", "ami-0e1b2c3d4e5f60718"), "CLIENT_ERROR", "EXISTING_AMI_PRODUCT_CODE"),
        (ami_version("a", CLEAN, "nobody"), "CLIENT_ERROR", "SSHAuthFailedForUserAndKeypair"),
        (package_version("p", "g-missing", url="s3://demo-seller-packages/missing.rpm"), "CLIENT_ERROR", "ASSET_NOT_FOUND"),
        (package_version("p", "g-broken", url="s3://demo-seller-packages/broken.sh", ty=".sh"), "CLIENT_ERROR", "INSTALL_FAILED"),
        (package_version("p", "g-os", oses=(("SUSE", "15"),)), "CLIENT_ERROR", "INCOMPATIBLE_OPERATING_SYSTEM"),
    ]
    for details, failure, code in cases:
        got_failure, err = first_error(cat, product, details)
        assert (got_failure, err["ErrorCode"]) == (failure, code), (code, err)
    # the scanner's own failure is a SERVER_FAULT with the reason and no per-change errors
    d = wait(cat, start(cat, [change("AddDeliveryOptions", product, ami_version("a", "ami-0a5ca0000000000a7"))]))
    assert (d["Status"], d["FailureCode"], d["ChangeSet"][0]["ErrorDetailList"]) == ("FAILED", "SERVER_FAULT", [])
    assert "internal error" in d["FailureDescription"]
    ok = wait(cat, start(cat, [change("AddDeliveryOptions", product, package_version("1.0", "g-ok"))]))
    assert ok["Status"] == "SUCCEEDED", ok
    _, err = first_error(cat, product, package_version("1.0", "g-other"))
    assert err["ErrorCode"] == "DUPLICATE_VERSION_TITLE"
    _, err = first_error(cat, product, package_version("1.1", "g-ok"))
    assert err["ErrorCode"] == "DUPLICATE_PACKAGE_GROUP_NAME"
    # the Windows installer types are Windows's; a Linux package may not use .msi
    with pytest.raises(cat.exceptions.ValidationException) as e:
        start(cat, [change("AddDeliveryOptions", product, package_version("w", "g-w", ty=".msi"))])
    assert "Installer/Type" in str(e.value)


def aws_sample_change_set():
    """The change set of AWS's reference code "create a limited AMI product and a public offer
    with hourly-annual pricing" (14 changes, two entities, references between them), with its
    own ids: the seller 111111111111, its AMI and ingestion role."""
    product = "$CreateProductChange.Entity.Identifier"
    offer = "$CreateOfferChange.Entity.Identifier"

    def ami_change(change_type, details):
        return {"ChangeType": change_type, "Entity": {"Type": "AmiProduct@1.0", "Identifier": product}, "DetailsDocument": details}

    def offer_change(change_type, details):
        return {"ChangeType": change_type, "Entity": {"Type": "Offer@1.0", "Identifier": offer}, "DetailsDocument": details}

    rate = {"DimensionKey": "t2.micro", "Price": "0.15"}
    return [
        {"ChangeType": "CreateProduct", "ChangeName": "CreateProductChange", "Entity": {"Type": "AmiProduct@1.0"}, "DetailsDocument": {}},
        ami_change("UpdateInformation", {
            "ProductTitle": "Sample product", "ShortDescription": "Brief description", "LongDescription": "Detailed description",
            "Highlights": ["Sample highlight"], "SearchKeywords": ["Sample keyword"], "Categories": ["Operating Systems"],
            "LogoUrl": "https://s3.amazonaws.com/logos/sample.png", "VideoUrls": [], "AdditionalResources": [],
            "SupportDescription": "For support, contact support@example.com"}),
        ami_change("AddRegions", {"Regions": ["us-east-1"]}),
        ami_change("AddInstanceTypes", {"InstanceTypes": ["t2.micro"]}),
        ami_change("AddDeliveryOptions", {
            "Version": {"VersionTitle": "Test AMI Version1.0", "ReleaseNotes": "Test AMI Version"},
            "DeliveryOptions": [{"Details": {"AmiDeliveryOptionDetails": {
                "AmiSource": {"AmiId": "ami-11111111111111111", "AccessRoleArn": "arn:aws:iam::111111111111:role/AWSMarketplaceAmiIngestion",
                              "UserName": "ec2-user", "OperatingSystemName": "AMAZONLINUX", "OperatingSystemVersion": "10.0.14393",
                              "ScanningPort": 22},
                "UsageInstructions": "Test AMI Version", "RecommendedInstanceType": "t2.micro",
                "SecurityGroups": [{"IpProtocol": "tcp", "IpRanges": ["0.0.0.0/0"], "FromPort": 10, "ToPort": 22}]}}}]}),
        ami_change("AddDimensions", [{"Key": "t2.micro", "Description": "t2.micro", "Name": "t2.micro", "Types": ["Metered"], "Unit": "Hrs"}]),
        ami_change("UpdateTargeting", {"PositiveTargeting": {"BuyerAccounts": ["111111111111", "222222222222"]}}),
        ami_change("ReleaseProduct", {}),
        {"ChangeType": "CreateOffer", "ChangeName": "CreateOfferChange", "Entity": {"Type": "Offer@1.0"}, "DetailsDocument": {"ProductId": product}},
        offer_change("UpdateInformation", {"Name": "Test public offer", "Description": "Test public offer with hourly-annual pricing"}),
        offer_change("UpdatePricingTerms", {"PricingModel": "Usage", "Terms": [
            {"Type": "UsageBasedPricingTerm", "CurrencyCode": "USD", "RateCards": [{"RateCard": [rate]}]},
            {"Type": "ConfigurableUpfrontPricingTerm", "CurrencyCode": "USD", "RateCards": [{
                "Selector": {"Type": "Duration", "Value": "P365D"}, "RateCard": [{"DimensionKey": "t2.micro", "Price": "150"}],
                "Constraints": {"MultipleDimensionSelection": "Allowed", "QuantityConfiguration": "Allowed"}}]}]}),
        offer_change("UpdateLegalTerms", {"Terms": [{"Type": "LegalTerm", "Documents": [{"Type": "StandardEula", "Version": "2022-07-14"}]}]}),
        offer_change("UpdateSupportTerms", {"Terms": [{"Type": "SupportTerm", "RefundPolicy": "Absolutely no refund, period."}]}),
        offer_change("ReleaseOffer", {}),
    ]


def test_aws_reference_sample_creates_a_limited_product_and_its_public_offer(start_server, tmp_path):
    seller = ("111111111111", "AKIASAMPLESELLER001", "sample-secret")
    accounts = tmp_path / "accounts.json"
    reader = ("AKIASAMPLEREADER001", "reader-secret")
    accounts.write_text(json.dumps({"Accounts": [{"AccountId": seller[0], "Principals": [
        {"Name": "seller", "AccessKeys": [{"AccessKeyId": seller[1], "SecretAccessKey": seller[2]}]},
        {"Name": "reader", "Allow": ["aws-marketplace:Describe*", "aws-marketplace:List*"],
         "AccessKeys": [{"AccessKeyId": reader[0], "SecretAccessKey": reader[1]}]}]}]}))
    s = start_server("--in-memory", "--accounts", str(accounts), *FAST, *FAST_SETS)
    world = json.loads(urllib.request.urlopen(f"{s.endpoint}/_imagebuild/world").read())
    ubuntu = next(i for i in world["Images"] if i["ImageId"] == CLEAN and i["Region"] == "us-east-1")
    image = dict(ubuntu, ImageId="ami-11111111111111111", OwnerId=seller[0], OsUsers=["ec2-user"],
                 Os={"Name": "AMAZONLINUX", "Version": "2023"}, Name="Sample AMI")
    role = dict(next(r for r in world["Roles"] if r["Arn"] == ROLE), Arn="arn:aws:iam::111111111111:role/AWSMarketplaceAmiIngestion")
    control(s, "PATCH", "world", {"Images": [image], "Roles": [role]})
    cfg = botocore.config.Config(retries={"total_max_attempts": 1, "mode": "standard"})
    cat = boto3.client("marketplace-catalog", endpoint_url=s.endpoint, region_name="us-east-1",
                       aws_access_key_id=seller[1], aws_secret_access_key=seller[2], config=cfg)
    d = wait(cat, start(cat, aws_sample_change_set()))
    assert d["Status"] == "SUCCEEDED", [c["ErrorDetailList"] for c in d["ChangeSet"]]
    # AWS's sample code reads the new ids from the changes' Entity.Identifier, stripping @…
    product = d["ChangeSet"][0]["Entity"]["Identifier"].split("@")[0]
    offer = d["ChangeSet"][8]["Entity"]["Identifier"].split("@")[0]
    assert offer.startswith("offer-") and d["ChangeSet"][9]["Entity"]["Identifier"].split("@")[0] == offer
    doc = cat.describe_entity(Catalog="AWSMarketplace", EntityId=product)["DetailsDocument"]
    assert doc["Description"]["Visibility"] == "Limited" and doc["Description"]["ProductTitle"] == "Sample product"
    assert doc["Dimensions"][0]["Key"] == "t2.micro" and doc["Compatibility"]["AvailableInstanceTypes"] == ["t2.micro"]
    assert doc["Versions"][0]["Sources"][0]["Image"] == "ami-11111111111111111"
    assert doc["Targeting"]["PositiveTargeting"]["BuyerAccounts"][-2:] == ["111111111111", "222222222222"]
    o = cat.describe_entity(Catalog="AWSMarketplace", EntityId=offer)
    assert o["EntityType"] == "Offer@1.0" and o["DetailsDocument"]["ProductId"] == product
    assert o["DetailsDocument"]["State"] == "Released"
    offers = cat.list_entities(Catalog="AWSMarketplace", EntityType="Offer")["EntitySummaryList"]
    assert [e["EntityId"] for e in offers] == [offer]
    # a principal granted only Describe*/List* reads the seller's entities and may change none
    ro = boto3.client("marketplace-catalog", endpoint_url=s.endpoint, region_name="us-east-1",
                      aws_access_key_id=reader[0], aws_secret_access_key=reader[1], config=cfg)
    assert ro.describe_entity(Catalog="AWSMarketplace", EntityId=product)["EntityType"] == "AmiProduct@1.0"
    with pytest.raises(ro.exceptions.AccessDeniedException) as e:
        start(ro, [change("AddRegions", product, {"Regions": ["us-west-2"]})])
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "is not authorized to perform: aws-marketplace:StartChangeSet" in str(e.value)


def test_open_change_sets_are_a_quota(start_server):
    s = start_server("--in-memory", *FAST, *FAST_SETS, "--max-open-change-sets", "2")
    cat = catalog_client(s.endpoint)
    control(s, "POST", "transitions", {"Resource": "changeset", "Mode": "manual"})
    first, second = (start(cat, [create(f"Quota {i}")]) for i in range(2))
    with pytest.raises(cat.exceptions.ServiceQuotaExceededException) as e:
        start(cat, [create("One too many")])
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 402
    assert str(e.value).endswith("The maximum number of open requests per account has been exceeded.")
    cat.cancel_change_set(Catalog="AWSMarketplace", ChangeSetId=first)
    third = start(cat, [create("Room again")])
    assert control(s, "POST", "advance", {"ChangeSetId": second, "Steps": 2})["Status"] == "SUCCEEDED"
    assert control(s, "POST", "advance", {"ChangeSetId": third, "Steps": 2})["Status"] == "SUCCEEDED"
    assert len(cat.list_change_sets(Catalog="AWSMarketplace")["ChangeSetSummaryList"]) == 3
