"""The Prometheus exposition after a known workload, with exact counts; its own listener;
start-up refusals; scrapes under load."""

import concurrent.futures
import json
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import (BIN, CONTROL_TOKEN, FAST, GOOD_FO, LINUX_AMI, ROLE, control, free_port, make_client, make_scan_client,
                      wait_scans, wait_terminal)


def samples(text):
    """{'name{labels}': value} of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def scrape(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("application/openmetrics-text")
        text = r.read().decode()
    assert text.endswith("# EOF\n")
    return text


@pytest.fixture
def observed(start_server):
    port = free_port()
    s = start_server("--in-memory", *FAST, "--ingest-seconds", "0", "--scan-seconds", "0",
                     "--control-token", CONTROL_TOKEN, "--metrics-status-seconds", "0",
                     "--metrics-listen", f"127.0.0.1:{port}")
    s.metrics_url = f"http://127.0.0.1:{port}/metrics"
    return s


def test_a_known_workload_reads_back_exactly(observed):
    c = make_client(observed.endpoint)
    ids = [c.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=LINUX_AMI,
                         DestinationImageName=f"metrics image {i}")["BuildId"] for i in range(2)]
    with pytest.raises(c.exceptions.InvalidDestinationImageNameException):
        c.start_build(FulfillmentOptionIds=[GOOD_FO], SourceImageId=LINUX_AMI, DestinationImageName="x")
    for i in ids:
        assert wait_terminal(c, i)["Status"] == "Succeeded"
    polls = samples(scrape(observed.metrics_url))['imagebuild_http_requests_total{service="AWSMPImageBuilding",operation="DescribeBuilds",status="200",error_code=""}']
    scans = make_scan_client(observed.endpoint)
    scan_id = scans.start_scans(Images=[{"SourceImageId": LINUX_AMI, "OsUserName": "ec2-user",
                                         "AccessRoleArn": ROLE}])["Scans"][0]["ScanId"]
    scan_status = wait_scans(scans, [scan_id])[scan_id]["Status"]
    big = urllib.request.Request(observed.endpoint + "/", data=b"{" + b" " * (2 * 1024 * 1024) + b"}", method="POST",
                                 headers={"X-Amz-Target": "AWSMPImageBuilding.DescribeBuilds",
                                          "Content-Type": "application/x-amz-json-1.1"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(big, timeout=10)
    assert e.value.code == 413

    m = samples(scrape(observed.metrics_url))
    ib = 'service="AWSMPImageBuilding"'
    assert m[f'imagebuild_http_requests_total{{{ib},operation="StartBuild",status="200",error_code=""}}'] == 2
    assert m[f'imagebuild_http_requests_total{{{ib},operation="StartBuild",status="400",error_code="InvalidDestinationImageNameException"}}'] == 1
    assert m[f'imagebuild_http_request_duration_seconds_count{{{ib},operation="StartBuild"}}'] == 3
    assert m[f'imagebuild_http_requests_total{{{ib},operation="DescribeBuilds",status="200",error_code=""}}'] == polls
    assert m['imagebuild_http_requests_total{service="AWSMPAmiScanning",operation="StartScans",status="200",error_code=""}'] == 1
    assert m['imagebuild_http_rejected_total{reason="body_too_large"}'] == 1
    assert m["imagebuild_http_requests_in_flight"] == 0
    assert m[f"imagebuild_http_response_bytes_total{{{ib}}}"] > 0
    assert m['imagebuild_transitions_total{resource="build",from="new",to="InProgress"}'] == 2
    assert m['imagebuild_transitions_total{resource="build",from="InProgress",to="Succeeded"}'] == 2
    assert m['imagebuild_transitions_total{resource="scan",from="new",to="Ingesting"}'] == 1
    assert m['imagebuild_resources{resource="build",status="Succeeded"}'] == 2
    assert m['imagebuild_resources{resource="build",status="InProgress"}'] == 0
    assert m[f'imagebuild_resources{{resource="scan",status="{scan_status}"}}'] == 1
    assert m[f'imagebuild_transitions_total{{resource="scan",from="Scanning",to="{scan_status}"}}'] == 1
    assert m['imagebuild_resources{resource="changeset",status="PREPARING"}'] == 0
    assert m['imagebuild_worker_step_seconds_count{resource="build"}'] >= 2
    assert m['imagebuild_store_call_seconds_count{call="create_build"}'] == 2
    assert m["imagebuild_store_sqlite_group_commit_writes_count"] >= 1
    assert m["imagebuild_process_resident_memory_bytes"] > 1e6
    assert m["imagebuild_process_open_fds"] > 3
    assert any(k.startswith("imagebuild_build_info{") for k in m)
    # The same exposition on the main port, under the reserved prefix.
    main = samples(scrape(observed.endpoint + "/_imagebuild/metrics"))
    assert main['imagebuild_transitions_total{resource="build",from="InProgress",to="Succeeded"}'] == 2
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(observed.metrics_url.replace("/metrics", "/other"), timeout=10)
    assert e.value.code == 404


def test_control_paths_are_labelled_without_ids(observed):
    with pytest.raises(urllib.error.HTTPError) as e:  # an unsigned log URL: refused, as S3 would
        urllib.request.urlopen(observed.endpoint + "/_imagebuild/logs/b-123/stdout?X=1", timeout=10)
    assert e.value.code == 403
    m = samples(scrape(observed.metrics_url))
    keys = [k for k in m if k.startswith("imagebuild_http_requests_total{service=\"control\"")]
    assert keys and all("b-123" not in k for k in keys), keys
    assert m['imagebuild_http_requests_total{service="control",operation="logs",status="403",error_code=""}'] == 1


def test_scrapes_during_load_do_not_hold_up_requests(observed):
    c = make_client(observed.endpoint)

    def poll(_):
        return len(c.describe_builds(MaxResults=5)["Builds"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        scrapes = [pool.submit(scrape, observed.metrics_url) for _ in range(20)]
        calls = list(pool.map(poll, range(200)))
        assert all(s.result(timeout=30).endswith("# EOF\n") for s in scrapes)
    assert calls == [0] * 200
    m = samples(scrape(observed.metrics_url))
    assert m['imagebuild_http_requests_total{service="AWSMPImageBuilding",operation="DescribeBuilds",status="200",error_code=""}'] == 200


def run_bin(*args):
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=30)


def test_bad_start_up_options_stop_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = run_bin("serve", "--listen", "127.0.0.1:0", "--in-memory", "--metrics-listen", f"127.0.0.1:{port}")
    assert p.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in p.stderr and "listening on" not in p.stderr
    p = run_bin("serve", "--listen", "127.0.0.1:0", "--in-memory", "--log-format", "yaml")
    assert p.returncode == 2 and "invalid value 'yaml' for '--log-format" in p.stderr
    bad = tmp_path / "world.json"
    bad.write_text(json.dumps({"Images": [{"ImageId": "ami-1", "Platform": "BeOS"}]}))
    p = run_bin("serve", "--listen", "127.0.0.1:0", "--in-memory", "--world", str(bad))
    assert p.returncode != 0 and "Images[0]" in p.stderr and "listening on" not in p.stderr


def test_version_names_the_commit():
    p = run_bin("--version")
    assert p.returncode == 0
    out = p.stdout.strip()
    assert out.startswith("imagebuild ") and "(" in out and out.endswith(")"), out


def test_change_set_transitions_are_counted_once_whoever_steps_them(start_server):
    """The worker steps one set; the control plane's advance steps another: each transition once."""
    import boto3
    import botocore.config
    import time
    s = start_server("--in-memory", *FAST, "--control-token", CONTROL_TOKEN, "--change-set-seconds", "3600")
    catalog = boto3.client("marketplace-catalog", endpoint_url=s.endpoint, region_name="us-east-1",
                           aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
                           aws_secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                           config=botocore.config.Config(retries={"total_max_attempts": 1}))

    def create(title):
        return catalog.start_change_set(Catalog="AWSMarketplace", ChangeSet=[{
            "ChangeType": "CreateProduct", "Entity": {"Type": "AmiProduct@1.0"},
            "DetailsDocument": {"ProductTitle": title}}])["ChangeSetId"]

    advanced = create("Advanced")
    control(s, "POST", "advance", {"ChangeSetId": advanced, "Steps": 2})
    control(s, "POST", "transitions", {"Resource": "changeset", "Mode": "immediate"})
    worked = create("Worked")
    deadline = time.time() + 20
    while catalog.describe_change_set(Catalog="AWSMarketplace", ChangeSetId=worked)["Status"] != "SUCCEEDED":
        assert time.time() < deadline
        time.sleep(0.05)
    m = samples(scrape(s.endpoint + "/_imagebuild/metrics"))
    t = 'imagebuild_transitions_total{resource="changeset",'
    assert m[t + 'from="new",to="PREPARING"}'] == 2
    assert m[t + 'from="PREPARING",to="APPLYING"}'] == 2
    assert m[t + 'from="APPLYING",to="SUCCEEDED"}'] == 2
    assert m['imagebuild_worker_step_seconds_count{resource="changeset"}'] == 4
