"""The README documents every magic, API call and CLI verb (and each verb has --help)."""

from __future__ import annotations

import re

from kernels import ROOT
from nbtrace import _API
from nbtrace.cli import VERBS
from nbtrace.magics import TrackMagics

README = (ROOT / "README.md").read_text()


def test_every_magic_documented() -> None:
    magics = TrackMagics.magics["line"].keys() | TrackMagics.magics["cell"].keys()
    assert {"track_run", "end_run", "log_param", "log_metric"} <= magics
    for name in magics:
        assert f"%{name}" in README, name
    assert "%%track_run" in README


def test_every_cli_verb_documented() -> None:
    for verb in VERBS:
        assert re.search(rf"nbtrace {verb}\b", README), verb


def test_every_api_call_documented() -> None:
    for name in _API:
        assert f"nbtrace.{name}" in README or f"`{name}" in README, name


def test_two_setup_commands() -> None:
    assert "./scripts/start" in README and "./scripts/test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test" in ci
