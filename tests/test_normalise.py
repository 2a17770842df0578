"""Artifacts that differ in bytes but not in meaning (MLflow's MLmodel, zip containers)."""

from __future__ import annotations

import io
import json
import zipfile

from nbtrace.rerun.normalise import equivalent
from nbtrace.rerun.verdict import make_verdict

MLMODEL = """artifact_path: /tmp/{run}/artifacts
flavors:
  sklearn:
    pickled_model: model.skops
    sklearn_version: {sk}
mlflow_version: 3.17.2
model_id: m-{run}
model_size_bytes: {size}
model_uuid: m-{run}
run_id: {run}
utc_time_created: '2026-12-01 23:36:{sec}'
"""


def mlmodel(run: str, sk: str = "1.9.1", sec: str = "59.1", size: int = 7764) -> bytes:
    return MLMODEL.format(run=run, sk=sk, sec=sec, size=size).encode()


def skops_like(arrays: dict[int, bytes], when: tuple[int, ...], swap: bool = False) -> bytes:
    """A zip as skops writes one: members named by id(), a schema.json naming them."""
    buf = io.BytesIO()
    ids = list(arrays)
    refs = list(reversed(ids)) if swap else ids
    with zipfile.ZipFile(buf, "w") as z:
        for i in ids:
            z.writestr(zipfile.ZipInfo(f"{i}.npy", when), arrays[i])
        schema = {"coef_": f"{refs[0]}.npy", "intercept_": f"{refs[1]}.npy"}
        z.writestr(zipfile.ZipInfo("schema.json", when), json.dumps(schema))
    return buf.getvalue()


def test_mlmodel_run_ids_and_times_are_ignored() -> None:
    assert equivalent("models/model/MLmodel", mlmodel("aaa"), mlmodel("bbb", sec="12.7"))


def test_mlmodel_other_fields_still_count() -> None:
    assert not equivalent("models/model/MLmodel", mlmodel("aaa"), mlmodel("bbb", sk="1.8.0"))


def test_zip_member_times_and_id_names_are_ignored() -> None:
    a = skops_like({140170982144784: b"coef", 140170982747504: b"icpt"}, (2026, 12, 1, 1, 2, 4))
    b = skops_like({139000000000001: b"coef", 139000000000999: b"icpt"}, (2026, 12, 2, 9, 8, 6))
    assert a != b
    assert equivalent("models/model/model.skops", a, b)


def test_zip_content_change_is_a_difference() -> None:
    when = (2026, 12, 1, 1, 2, 4)
    a = skops_like({140170982144784: b"coef", 140170982747504: b"icpt"}, when)
    b = skops_like({140170982144784: b"COEF", 140170982747504: b"icpt"}, when)
    assert not equivalent("models/model/model.skops", a, b)


def test_zip_members_referenced_in_another_place_is_a_difference() -> None:
    """Same members, but the schema now loads coef_ from the intercept's array."""
    when = (2026, 12, 1, 1, 2, 4)
    a = skops_like({140170982144784: b"coef", 140170982747504: b"icpt"}, when)
    b = skops_like({140170982144784: b"coef", 140170982747504: b"icpt"}, when, swap=True)
    assert not equivalent("models/model/model.skops", a, b)


def test_malformed_zip_and_plain_files_compare_by_bytes() -> None:
    assert not equivalent("model.skops", b"PK\x03\x04garbage", b"PK\x03\x04garbagf")
    assert not equivalent("notes.txt", b"run 1", b"run 2")
    assert equivalent("notes.txt", b"same", b"same")


def _run(run_id: str, sha: str) -> dict:
    return {"id": run_id, "metrics": {}, "params": {}, "cells": [],
            "artifacts": [{"name": "models/model/MLmodel", "sha256": sha, "size": 300}]}


def test_verdict_lists_normalised_artifacts_apart_from_differences() -> None:
    files = {("r1", "models/model/MLmodel"): mlmodel("r1"),
             ("r2", "models/model/MLmodel"): mlmodel("r2")}
    v = make_verdict(_run("r1", "a" * 64), _run("r2", "b" * 64), [],
                     artifact=lambda run, name: files[(run, name)])
    assert v["artifacts"] == {} and v["artifacts_normalised"] == ["models/model/MLmodel"]
    # without a way to read the bytes, the byte difference stands
    v = make_verdict(_run("r1", "a" * 64), _run("r2", "b" * 64), [])
    assert set(v["artifacts"]) == {"models/model/MLmodel"} and v["status"] == "diverged"


def _schema_zip(schema: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("schema.json", schema)
    return buf.getvalue()


def test_skops_object_ids_are_renumbered_but_sharing_counts() -> None:
    a = _schema_zip('{"a": {"__id__": 140001}, "b": {"__id__": 140002}, "c": {"__id__": 140001}}')
    b = _schema_zip('{"a": {"__id__": 990007}, "b": {"__id__": 990003}, "c": {"__id__": 990007}}')
    # the same ids, but "c" is no longer the object "a" is
    c = _schema_zip('{"a": {"__id__": 990007}, "b": {"__id__": 990003}, "c": {"__id__": 990003}}')
    assert equivalent("model.skops", a, b)
    assert not equivalent("model.skops", a, c)
    # a plain number in a JSON member is never masked
    assert not equivalent("m.zip", _schema_zip('{"n": 1234567}'), _schema_zip('{"n": 7654321}'))
