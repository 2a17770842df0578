"""Pure pieces of the re-execution engine and the handlers (no server, no kernel)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from nbtrace.errors import UsageError
from nbtrace.rerun.drift import environment_drift, format_drift
from nbtrace.rerun.replay import build_notebook, is_within, validate_overrides
from nbtrace.rerun.verdict import compare_metrics, make_verdict
from nbtrace.server.handlers import artifact_headers, bad_artifact_name


@pytest.mark.parametrize(
    ("original", "new", "status"),
    [
        ({"a": 1.0, "b": math.nan}, {"a": 1.0, "b": math.nan}, "reproduced"),
        ({"a": math.inf}, {"a": math.inf}, "reproduced"),
        ({"a": 1.0}, {"a": 1.0 + 1e-12}, "within_tolerance"),
        ({"a": 1.0}, {"a": 1.001}, "diverged"),
        ({"a": 1.0, "b": 2.0}, {"a": 1.0}, "diverged"),
        ({"a": 1.0}, {"a": 1.0, "b": 2.0}, "diverged"),
        ({"a": math.nan}, {"a": 1.0}, "diverged"),
        ({"a": math.inf}, {"a": -math.inf}, "diverged"),
        ({}, {}, "reproduced"),
    ],
)
def test_metric_statuses(original: dict, new: dict, status: str) -> None:
    assert compare_metrics(original, new)[0] == status


def test_tolerance_is_relative_and_configurable() -> None:
    status, metrics = compare_metrics({"m": 100.0}, {"m": 100.5}, tolerance=0.01)
    assert status == "within_tolerance"
    assert metrics["m"] == {"original": 100.0, "new": 100.5, "delta": 0.5,
                            "status": "within_tolerance"}
    assert compare_metrics({"m": 100.0}, {"m": 102.0}, tolerance=0.01)[0] == "diverged"
    assert compare_metrics({"m": 0.0}, {"m": 1e-300}, tolerance=0.01)[0] == "diverged"


def test_missing_metric_has_no_delta() -> None:
    _, metrics = compare_metrics({"a": 1.0}, {})
    assert metrics["a"] == {"original": 1.0, "new": None, "delta": None, "status": "diverged"}


def test_failed_verdict_shape() -> None:
    original = {"id": "abc", "metrics": {"m": 1.0}, "environment": {}}
    v = make_verdict(original, None, ["h1"], error="cell seq 4: ValueError: boom",
                     failed_cell={"seq": 4})
    assert v["status"] == "failed" and v["error"].startswith("cell seq 4")
    assert set(v) >= {"status", "metrics", "environment_diff", "code_matches", "error",
                      "tolerance", "overrides"}
    assert make_verdict(original, None, [])["error"] == "the replay never started the run"


def test_code_matches_compares_hashes_up_to_last_seq() -> None:
    cells = [{"seq": 1, "sha256": "h1"}, {"seq": 2, "sha256": "h2"}, {"seq": 3, "sha256": "x"}]
    new = {"metrics": {}, "environment": {}, "position": {"last_seq": 2}, "cells": cells}
    assert make_verdict({"metrics": {}}, new, ["h1", "h2"])["code_matches"] is True
    assert make_verdict({"metrics": {}}, new, ["h1", "h3"])["code_matches"] is False


def test_overrides_validation() -> None:
    run = {"params": {"alpha": 0.5, "l1_ratio": 0.1}}
    assert validate_overrides(run, {"alpha": [1, 2.5, None]}) == {"alpha": [1, 2.5, None]}
    with pytest.raises(UsageError, match=r"unknown parameter 'x' \(the run has: alpha, l1_ratio\)"):
        validate_overrides(run, {"x": 1})
    with pytest.raises(UsageError, match="JSON scalar or list"):
        validate_overrides(run, {"alpha": {"nested": 1}})
    with pytest.raises(UsageError, match="must be an object"):
        validate_overrides(run, [("alpha", 1)])


def test_replay_notebook_positions_tags_and_ids() -> None:
    from nbtrace.hashing import sha256_text as h

    run = {
        "id": "r1",
        "position": {"start_seq": 5, "cell_index": 2, "last_seq": 6},
        "cells": [
            {"seq": 1, "source": "%load_ext nbtrace", "cell_id": None, "error": False,
             "sha256": h("%load_ext nbtrace")},
            {"seq": 3, "source": "1/0", "cell_id": "c1", "error": True, "sha256": h("1/0")},
            {"seq": 5, "source": "x = 1", "cell_id": "c1", "error": False, "sha256": h("x = 1")},
            {"seq": 6, "source": "y = 2", "cell_id": "bad id!", "error": False,
             "sha256": h("y = 2")},
        ],
    }
    nb, seqs, target_seq, target_index = build_notebook(run)
    assert seqs == [1, 3, 5, 6] and target_seq == 3 and target_index == 2
    assert nb.cells[1].metadata["tags"] == ["raises-exception"]
    assert "tags" not in nb.cells[2].metadata
    assert nb.cells[1]["id"] == "c1" and nb.cells[2]["id"] == "c1-2"  # ids stay unique
    assert nb.cells[3]["id"] != "bad id!"
    with pytest.raises(UsageError, match="no recorded code position"):
        build_notebook({"id": "r2", "position": {}, "cells": []})


def test_is_within(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "root-other").mkdir()
    (root / "out").symlink_to(tmp_path / "root-other")
    assert is_within(str(root / "sub"), str(root))
    assert is_within(str(root), str(root))
    assert not is_within(str(tmp_path / "root-other"), str(root))
    assert not is_within(str(root / "sub" / ".." / ".." / "root-other"), str(root))
    assert not is_within(str(root / "out"), str(root))
    assert not is_within("/etc", str(root))


@pytest.mark.parametrize(
    ("name", "bad"),
    [("a.png", False), ("plots/a.png", False), ("..", True), ("../x", True), ("a/../b", True),
     ("/etc/passwd", True), ("a\\..\\b", True), ("a\x00b", True), ("C:x", True), ("", True),
     ("./a", True), ("..a", False)],
)
def test_bad_artifact_names(name: str, bad: bool) -> None:
    assert bad_artifact_name(name) is bad


@pytest.mark.parametrize(
    ("name", "ctype", "attachment"),
    [
        ("a.png", "image/png", False),
        ("a.csv", "text/csv", False),
        ("a.html", "text/plain; charset=utf-8", True),
        ("a.htm", "text/plain; charset=utf-8", True),
        ("a.svg", "text/plain; charset=utf-8", True),
        ("a.xml", "text/plain; charset=utf-8", True),
        ("a.xhtml", "text/plain; charset=utf-8", True),
        ("a.js", "text/plain; charset=utf-8", True),
        ("a.mjs", "text/plain; charset=utf-8", True),
        ("a.pdf", "application/pdf", True),
        ("model", "application/octet-stream", True),
    ],
)
def test_artifact_headers(name: str, ctype: str, attachment: bool) -> None:
    h = artifact_headers(name)
    assert h["Content-Type"] == ctype
    assert h["Content-Disposition"].startswith("attachment") is attachment
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["Content-Security-Policy"] == "sandbox; default-src 'none'"


def test_artifact_disposition_cannot_inject_headers() -> None:
    h = artifact_headers('evil"; x=1\r\nSet-Cookie: a=b.html')
    assert "\r" not in h["Content-Disposition"] and "\n" not in h["Content-Disposition"]


def test_drift_lines() -> None:
    recorded = {"python": "3.11.7", "platform": "Linux-a",
                "packages": {"numpy": "1.26.4", "pandas": "2.2.0", "old": "1.0"}}
    current = {"python": "3.12.1", "platform": "Linux-a", "executable": "/x/python",
               "packages": {"numpy": "2.1.0", "pandas": "2.2.0", "new": "0.1"}, "nbtrace": True}
    d = environment_drift(recorded, current, "python3")
    assert d["python"] == {"recorded": "3.11.7", "current": "3.12.1"} and d["platform"] is None
    assert d["packages"] == {
        "changed": [{"name": "numpy", "recorded": "1.26.4", "current": "2.1.0"}],
        "added": [{"name": "new", "current": "0.1"}],
        "removed": [{"name": "old", "recorded": "1.0"}],
    }
    lines = format_drift(d)
    assert "numpy 1.26.4 → 2.1.0" in lines and "python 3.11.7 → 3.12.1" in lines


def test_every_route_is_in_openapi_and_back() -> None:
    """The route table and ``openapi.yaml`` describe the same paths and verbs."""
    import re

    import yaml

    from nbtrace.server.routes import ROUTES

    spec = yaml.safe_load((Path(__file__).parents[2] / "openapi.yaml").read_text())
    documented = {
        (path, verb.upper())
        for path, item in spec["paths"].items()
        for verb in item
        if verb in ("get", "post", "put", "patch", "delete")
    }
    routed = set()
    for pattern, handler in ROUTES:
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)
        for verb in ("get", "post", "put", "patch", "delete"):
            if verb in vars(handler):
                routed.add((path, verb.upper()))
    assert routed == documented


def test_rerun_user_name_from_jupyter_identity() -> None:
    import getpass
    from types import SimpleNamespace

    from nbtrace.server.handlers import jupyter_user_name

    assert jupyter_user_name(SimpleNamespace(username="ana")) == "ana"
    anon = SimpleNamespace(username="b925a162058b437c8ee85453fe80b1b4")
    assert jupyter_user_name(anon) == getpass.getuser()
