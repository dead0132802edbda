"""The Add AMI workflow through the real aws CLI, with the companion model installed by
`aws configure add-model --service-name marketplaceamiscanning`."""

import json

from conftest import ROLE, loads

CLEAN = "ami-0a1b2c3d4e5f60718"       # Ubuntu, passes every control (OS user ubuntu)
VULNERABLE = "ami-0a5ca0000000000a1"  # CVEs, password SSH, baked keys, secrets
EXEMPTED = "ami-0a5ca0000000000a2"    # one CVE, exempted for prod-demoseller1
PORT_2222 = "ami-0a5ca0000000000a5"


def image(ami, user="ec2-user", role=ROLE, **extra):
    spec = f"SourceImageId={ami},AccessRoleArn={role},OsUserName={user}"
    for k, v in extra.items():
        spec += f",{k}={v}"
    return spec


def test_walkthrough_start_wait_describe_findings(scan_cli):
    out = loads(scan_cli("start-scans", "--images", image(CLEAN, "ubuntu"), image(VULNERABLE)))
    ids = [s["ScanId"] for s in out["Scans"]]
    assert [s["SourceImageId"] for s in out["Scans"]] == [CLEAN, VULNERABLE]
    assert {s["Status"] for s in out["Scans"]} == {"Ingesting"}
    scan_cli("wait", "scan-completed", "--scan-ids", *ids)
    by_id = {s["ScanId"]: s for s in loads(scan_cli("describe-scans", "--scan-ids", *ids))["Scans"]}
    clean, vuln = by_id[ids[0]], by_id[ids[1]]
    assert clean["Status"] == "Succeeded" and clean["FindingCounts"]["High"] == 0
    assert clean["ScanningPort"] == 22 and clean["Latest"] is True and clean["Attempt"] == 1
    assert vuln["Status"] == "IssuesFound"
    assert vuln["FindingCounts"] == {"Critical": 1, "High": 5, "Medium": 0, "Low": 0, "Informational": 0, "Exempted": 0}
    f = loads(scan_cli("describe-scan-findings", "--scan-id", ids[1]))
    assert f["Status"] == "IssuesFound"
    controls = {c["ControlId"]: c["Result"] for c in f["Controls"]}
    assert controls["SSH_PASSWORD_AUTHENTICATION"] == "FAIL" and controls["MALWARE"] == "PASS"
    ssh = next(x for x in f["Findings"] if x["ControlId"] == "SSH_PASSWORD_AUTHENTICATION")
    assert "PasswordAuthentication no" in ssh["Remediation"]
    assert {"Name": "FILE_PATH", "Value": "/etc/ssh/sshd_config"} in ssh["Scope"]
    cve = next(x for x in f["Findings"] if x["ControlId"] == "KNOWN_VULNERABILITY")
    assert cve["Vulnerability"]["CveId"] == "CVE-2023-38545" and cve["Severity"] == "CRITICAL"
    crit = loads(scan_cli("describe-scan-findings", "--scan-id", ids[1], "--filters", "Name=severity,Values=critical"))
    assert [x["Code"] for x in crit["Findings"]] == ["VULNERABLE_PACKAGE"]
    p = scan_cli("wait", "scan-succeeded", "--scan-ids", ids[1], check=False)
    assert p.returncode != 0 and "Waiter ScanSucceeded failed" in p.stderr


def test_26_amis_are_refused_and_nothing_is_created(scan_cli):
    amis = [f"ami-{i:08x}" for i in range(26)]
    p = scan_cli("start-scans", "--images", *[image(a) for a in amis], check=False)
    assert p.returncode != 0
    assert "(ImageLimitExceededException)" in p.stderr
    assert "at most 25 AMIs in one request; this request has 26" in p.stderr
    assert loads(scan_cli("describe-scans"))["Scans"] == []


def test_invalid_role_then_resubmitted_with_a_good_role_passes(scan_cli):
    bad = "arn:aws:iam::123456789012:role/NotCreatedYet"
    first = loads(scan_cli("start-scans", "--images", image(CLEAN, "ubuntu", role=bad)))["Scans"][0]["ScanId"]
    scan_cli("wait", "scan-completed", "--scan-ids", first)
    failed = loads(scan_cli("describe-scans", "--scan-ids", first))["Scans"][0]
    assert failed["Status"] == "IngestionFailed"
    assert failed["ErrorDetail"]["Code"] == "AccessRoleNotFound"
    assert "AWSMarketplaceAmiIngestion" in failed["ErrorDetail"]["Message"]
    assert loads(scan_cli("describe-scan-findings", "--scan-id", first))["Controls"] == []
    again = loads(scan_cli("resubmit-scan", "--scan-id", first, "--access-role-arn", ROLE))
    assert again["PreviousScanId"] == first and again["Attempt"] == 2 and again["Status"] == "Ingesting"
    scan_cli("wait", "scan-succeeded", "--scan-ids", again["ScanId"])
    chain = loads(scan_cli("describe-scans", "--filters", f"Name=image-id,Values={CLEAN}"))["Scans"]
    assert [(s["Attempt"], s["Latest"]) for s in chain] == [(2, True), (1, False)]
    assert chain[0]["AccessRoleArn"] == ROLE and chain[0]["OsUserName"] == "ubuntu"
    latest = loads(scan_cli("describe-scans", "--filters", "Name=latest-only,Values=true"))["Scans"]
    assert [s["ScanId"] for s in latest] == [again["ScanId"]]
    # the first attempt is no longer the latest: it cannot be resubmitted
    p = scan_cli("resubmit-scan", "--scan-id", first, check=False)
    assert "(InvalidScanIdException)" in p.stderr and f"Resubmit its latest scan, {again['ScanId']}" in p.stderr


def test_port_fixed_by_resubmitting_with_the_port_sshd_listens_on(scan_cli):
    sid = loads(scan_cli("start-scans", "--images", image(PORT_2222)))["Scans"][0]["ScanId"]
    scan_cli("wait", "scan-completed", "--scan-ids", sid)
    s = loads(scan_cli("describe-scans", "--scan-ids", sid))["Scans"][0]
    assert (s["Status"], s["ErrorDetail"]["Code"]) == ("Failed", "ScanningPortUnreachable")
    controls = loads(scan_cli("describe-scan-findings", "--scan-id", sid))["Controls"]
    assert controls and {c["Result"] for c in controls} == {"NOT_EXECUTED"}
    new = loads(scan_cli("resubmit-scan", "--scan-id", sid, "--scanning-port", "2222"))["ScanId"]
    scan_cli("wait", "scan-succeeded", "--scan-ids", new)


def test_exemptions_are_hidden_unless_asked_for(scan_cli):
    out = loads(scan_cli("start-scans", "--images", image(EXEMPTED, ProductId="prod-demoseller1"), image(VULNERABLE)))
    with_product, _ = [s["ScanId"] for s in out["Scans"]]
    scan_cli("wait", "scan-completed", "--scan-ids", with_product)
    s = loads(scan_cli("describe-scans", "--scan-ids", with_product))["Scans"][0]
    assert s["Status"] == "Succeeded" and s["FindingCounts"]["Exempted"] == 1 and s["ProductId"] == "prod-demoseller1"
    hidden = loads(scan_cli("describe-scan-findings", "--scan-id", with_product))
    assert hidden["Findings"] == []
    assert {"ControlId": "KNOWN_VULNERABILITY", "Title": "No package has a known vulnerability (CVE)",
            "Result": "EXEMPTION_PASS"} in hidden["Controls"]
    shown = loads(scan_cli("describe-scan-findings", "--scan-id", with_product, "--include-exempted"))["Findings"]
    assert [(f["Result"], f["ExemptionId"], f["Vulnerability"]["CveId"]) for f in shown] == [
        ("EXEMPTION_PASS", "ex-demo-openssl", "CVE-2023-0286")]
    # a resubmission keeps the product unless it names another one
    new = loads(scan_cli("resubmit-scan", "--scan-id", with_product))["ScanId"]
    scan_cli("wait", "scan-completed", "--scan-ids", new)
    again = loads(scan_cli("describe-scans", "--scan-ids", new))["Scans"][0]
    assert (again["Status"], again["ProductId"], again["Attempt"]) == ("Succeeded", "prod-demoseller1", 2)
    # a product the caller does not own is refused up front
    p = scan_cli("start-scans", "--images", image(CLEAN, "ubuntu", ProductId="prod-abcd1234efgh5"), check=False)
    assert "(InvalidProductIdException)" in p.stderr and "Images[0].ProductId" in p.stderr


def test_paging_across_three_pages(scan_cli):
    amis = ["ami-0a5ca0000000000a8", "ami-0a5ca0000000000a9", "ami-0a5ca0000000000aa", "ami-0a5ca0000000000ab",
            "ami-0a5ca0000000000ac", "ami-0d1b2c3d4e5f60718", "ami-01a2b3c4d5e6f7081"]
    ids = [s["ScanId"] for s in loads(scan_cli("start-scans", "--images", *[image(a) for a in amis]))["Scans"]]
    everything = loads(scan_cli("describe-scans", "--page-size", "3"))["Scans"]
    assert sorted(s["ScanId"] for s in everything) == sorted(ids)
    seen, token, pages = [], None, 0
    while True:
        args = ["describe-scans", "--max-items", "3", "--page-size", "3"]
        if token:
            args += ["--starting-token", token]
        page = loads(scan_cli(*args))
        pages += 1
        seen += [s["ScanId"] for s in page["Scans"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3 and seen == [s["ScanId"] for s in everything]
    p = scan_cli("describe-scans", "--max-results", "3", "--next-token", "garbage", check=False)
    assert "(InvalidNextTokenException)" in p.stderr


def test_idempotent_start_and_resubmission(scan_cli):
    a = loads(scan_cli("start-scans", "--images", image(PORT_2222), "--client-token", "scan-tok-1"))
    b = loads(scan_cli("start-scans", "--images", image(PORT_2222), "--client-token", "scan-tok-1"))
    # a replay names the same scans (with their current status, as EC2's idempotent calls do)
    assert [s["ScanId"] for s in a["Scans"]] == [s["ScanId"] for s in b["Scans"]]
    p = scan_cli("start-scans", "--images", image(PORT_2222, user="other"), "--client-token", "scan-tok-1", check=False)
    assert "(IdempotentParameterMismatchException)" in p.stderr
    sid = a["Scans"][0]["ScanId"]
    scan_cli("wait", "scan-completed", "--scan-ids", sid)
    r1 = loads(scan_cli("resubmit-scan", "--scan-id", sid, "--scanning-port", "2222", "--client-token", "re-1"))
    r2 = loads(scan_cli("resubmit-scan", "--scan-id", sid, "--scanning-port", "2222", "--client-token", "re-1"))
    assert (r1["ScanId"], r1["Attempt"]) == (r2["ScanId"], r2["Attempt"])
    p = scan_cli("resubmit-scan", "--scan-id", sid, "--scanning-port", "22", "--client-token", "re-1", check=False)
    assert "(IdempotentParameterMismatchException)" in p.stderr
    assert len(loads(scan_cli("describe-scans"))["Scans"]) == 2


def test_bad_input_names_the_field_and_creates_nothing(scan_cli):
    cases = [
        ([image(CLEAN, role="arn:aws:iam::123456789012:user/Bob")], "InvalidAccessRoleArnException", "Images[0].AccessRoleArn"),
        ([image(CLEAN, "ubuntu"), image(VULNERABLE, role="arn:aws:iam::111122223333:role/R")], "InvalidAccessRoleArnException", "Images[1].AccessRoleArn: the role arn:aws:iam::111122223333:role/R belongs to account 111122223333"),
        ([image(CLEAN, "ubuntu", ScanningPort="0")], "InvalidScanningPortException", "Images[0].ScanningPort: 0"),
        ([image(CLEAN, "ubuntu", ScanningPort="65536")], "InvalidScanningPortException", "from 1 to 65535"),
        ([image(CLEAN, "1root")], "InvalidOsUserNameException", "Images[0].OsUserName: '1root'"),
        ([f"SourceImageId={CLEAN},AccessRoleArn={ROLE}"], "InvalidOsUserNameException", "required for Linux AMIs"),
        ([image(CLEAN, "ubuntu"), image(CLEAN, "ubuntu")], "InvalidSourceImageIdException", "Images[1].SourceImageId: the AMI ami-0a1b2c3d4e5f60718 is already in Images[0]"),
        ([image("ami-0f1b2c3d4e5f60718")], "InvalidSourceImageIdException", "does not exist in us-east-1"),
        ([image("ami-xyz")], "InvalidSourceImageIdException", "is not a valid AMI ID"),
    ]
    for images, code, text in cases:
        p = scan_cli("start-scans", "--images", *images, check=False)
        assert f"({code})" in p.stderr, (images, p.stderr)
        assert text in p.stderr, (images, p.stderr)
    p = scan_cli("start-scans", "--images", image(CLEAN, "ubuntu"), "--sns-topic-arn",
                 "arn:aws:sns:us-east-1:123456789012:nope", check=False)
    assert "(InvalidSnsTopicArnException)" in p.stderr
    assert loads(scan_cli("describe-scans"))["Scans"] == []
    for op in (["describe-scan-findings", "--scan-id", "00000000-0000-0000-0000-000000000000"],
               ["resubmit-scan", "--scan-id", "nope"]):
        p = scan_cli(*op, check=False)
        assert "(InvalidScanIdException)" in p.stderr and "does not exist" in p.stderr
    p = scan_cli("describe-scans", "--filters", "Name=status,Values=IssuesFound", check=False)
    assert "(InvalidFilterException)" in p.stderr and "issues-found" in p.stderr
    p = scan_cli("describe-scans", "--scan-ids", *[f"id-{i}" for i in range(51)], check=False)
    assert "(InvalidScanIdException)" in p.stderr
    p = scan_cli("describe-scan-findings", "--scan-id", "x", "--max-results", "101", check=False)
    assert "(InvalidMaxResultsException)" in p.stderr


def test_a_scan_in_progress_blocks_a_new_one_and_its_resubmission(aws_home, start_server):
    import subprocess
    from conftest import CONTROL_TOKEN, FAST, aws_bin, cli_env
    slow = start_server("--in-memory", *FAST, "--ingest-seconds", "3600", "--control-token", CONTROL_TOKEN)

    def run(*args):
        return subprocess.run([aws_bin(), "marketplaceamiscanning", *args, "--endpoint-url", slow.endpoint],
                              env=cli_env(aws_home), capture_output=True, text=True, timeout=60)
    out = json.loads(run("start-scans", "--images", image(CLEAN, "ubuntu")).stdout)
    sid = out["Scans"][0]["ScanId"]
    p = run("start-scans", "--images", image(CLEAN, "ubuntu"))
    assert "(ScanInProgressException)" in p.stderr and sid in p.stderr
    p = run("resubmit-scan", "--scan-id", sid)
    assert "(ScanInProgressException)" in p.stderr
    assert len(json.loads(run("describe-scans").stdout)["Scans"]) == 1
