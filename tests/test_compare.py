"""Comparison logic (pure functions over recorded cells and environments)."""

from __future__ import annotations

from nbtrace.compare import code_diff, environment_diff, metric_goal


def _cell(seq: int, source: str) -> dict:
    import hashlib

    return {"seq": seq, "sha256": hashlib.sha256(source.encode()).hexdigest(), "source": source}


def test_code_diff_keeps_lines_apart_without_trailing_newline() -> None:
    a = [_cell(1, "import x"), _cell(2, "alpha = 0.5\nfit(alpha)")]
    b = [_cell(1, "import x"), _cell(2, "alpha = 2.0\nfit(alpha)"), _cell(3, "print(1)")]
    ops = code_diff(a, b)
    assert [o["op"] for o in ops] == ["equal", "changed", "added"]
    lines = ops[1]["diff"].splitlines()
    assert "-alpha = 0.5" in lines and "+alpha = 2.0" in lines
    assert not any(line.startswith("-") and "+" in line[1:2] for line in lines)
    assert ops[2]["diff"].splitlines()[-1] == "+print(1)"


def test_metric_goal_and_environment_diff() -> None:
    assert metric_goal("R2") == "max" and metric_goal("val_accuracy") == "max"
    assert metric_goal("MSE") == "min" and metric_goal("loss") == "min"
    d = environment_diff(
        {"python": "3.11.7", "packages": {"numpy": "1.26.4", "old": "1"}},
        {"python": "3.11.7", "packages": {"numpy": "2.1.0", "new": "2"}},
    )
    assert d["packages"]["changed"] == [{"name": "numpy", "old": "1.26.4", "new": "2.1.0"}]
    assert d["packages"]["added"] == [{"name": "new", "version": "2"}]
    assert d["packages"]["removed"] == [{"name": "old", "version": "1"}]
    assert d["python"] is None and d["differs"] is True
