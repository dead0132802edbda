"""`imagebuild world check FILE`: start-up's checks offline, every problem with its path."""

import json
import subprocess

from conftest import BIN


def check(path):
    return subprocess.run([str(BIN), "world", "check", str(path)], capture_output=True, text=True, timeout=60)


def test_every_problem_is_printed_with_its_path(tmp_path):
    world = {
        "Images": [
            {"ImageId": "ami-nothex", "OwnerId": "123456789012", "Region": "us-east-1", "Platform": "Linux"},
            {"ImageId": "ami-0123456789abcdef0", "OwnerId": "12", "Region": "mars-1", "Platform": "Linux"},
        ],
        "Exemptions": [{"ExemptionId": "e", "ProductId": "prod-x", "ControlId": "NOPE"}],
    }
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(world))
    p = check(bad)
    assert p.returncode == 1, p
    lines = p.stdout.splitlines()
    for field in ("Images[0].ImageId", "Images[1].OwnerId", "Images[1].Region", "Exemptions[0].ControlId"):
        assert any(f"at {field}:" in line for line in lines), (field, lines)
    assert f"{len(lines)} problem(s)" in p.stderr
    # the same file stops start-up, with the first of them
    s = subprocess.run([str(BIN), "serve", "--listen", "127.0.0.1:0", "--in-memory", "--world", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert s.returncode != 0 and "Images[0].ImageId" in s.stderr


def test_a_good_world_a_shape_error_and_a_missing_file(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"SnsTopics": ["arn:aws:sns:us-east-1:123456789012:t"]}))
    p = check(good)
    assert p.returncode == 0 and "no problems" in p.stdout
    shape = tmp_path / "shape.json"
    shape.write_text(json.dumps({"Images": [{"ImageId": "ami-0123456789abcdef0", "OwnerId": "123456789012",
                                             "Region": "us-east-1", "Platform": "BeOS"}]}))
    p = check(shape)
    assert p.returncode == 1 and "Images[0].Platform" in p.stdout
    p = check(tmp_path / "missing.json")
    assert p.returncode == 1 and "cannot read world file" in p.stdout
