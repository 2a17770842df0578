"""The REST API without re-execution: runs, metrics, compare, artifacts, edits, auth, errors.

Given a store with real runs (one kernel, shared by the module) and synthetic ones, when a
client calls each endpoint, then the answer has the documented shape (validated against
``openapi.yaml``), strict JSON, the right status, and nothing runs without authentication.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.auth import Authorizer

from nbtrace.store import open_store

from .conftest import (
    check_openapi,
    copy_db,
    fetch_json,
    post_json,
    run_notebook,
    strict_loads,
    synthetic_run,
)

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
ACTIVE = {
    "page.html": b"<html><script>alert(document.cookie)</script></html>",
    "pic.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "doc.xml": b"<?xml version='1.0'?><a/>",
    "code.js": b"alert(1)",
}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Two real runs (one kernel) plus synthetic ones with artifacts."""
    d = tmp_path_factory.mktemp("api")
    db = str(d / "runs.db")
    work = d / "work"
    work.mkdir()
    (work / "plot.png").write_bytes(PNG)
    run_notebook(
        [
            "%load_ext nbtrace",
            "import nbtrace\n"
            "%track_run first --tag model=enet\n"
            "%log_param alpha=0.5 l1_ratio=0.1\n"
            "for s in range(3):\n"
            "    nbtrace.log_metric('train/loss', 1.0 / (s + 1), step=s)\n"
            "%log_metric mse=3000.5\n"
            "%log_metric nan_metric=float('nan')\n"
            "nbtrace.log_artifact('plot.png')\n"
            "%end_run",
            "%track_run second\n%log_param alpha=0.2 l1_ratio=0.1\n"
            "%log_metric mse=2500.0\n%end_run",
        ],
        db,
        work,
    )
    store = open_store(db)
    runs, _ = store.list_runs(sort="started_at")
    ids = {r["name"]: r["id"] for r in runs}
    arts = dict(ACTIVE)
    arts.update({"plots/a.png": PNG, "data.csv": b"a,b\n1,2\n", "model.pkl": b"\x80\x04N.",
                 "r\u00e9sum\u00e9 \"q\".txt": b"hello"})
    ids["arts"] = synthetic_run(store, "a1b2c3d4e5f6", name="arts", artifacts=arts,
                                metrics={"inf_metric": float("inf")})
    ids["live"] = synthetic_run(store, "b1b2c3d4e5f6", name="live", end=False)
    store.close()
    return {"db": db, "ids": ids, "work": work}


@pytest.fixture
def server_db(base: dict[str, Any], tmp_path: Path) -> str:
    """Each test gets its own copy of the module's store (tests edit and delete)."""
    return copy_db(base["db"], str(tmp_path / "server-runs.db"))


# ----------------------------------------------------------------------------- runs
async def test_list_runs_shape_filter_sort_page(jp_fetch: Any, base: dict[str, Any]) -> None:
    code, data, resp = await fetch_json(jp_fetch, "runs")
    assert code == 200
    check_openapi(resp, "GET", "/runs")
    assert data["total"] == 4
    assert {r["name"] for r in data["runs"]} == {"first", "second", "arts", "live"}

    q = {"filter": "params.alpha > 0.3 and metrics.mse < 3001", "sort": "-metrics.mse"}
    code, data, resp = await fetch_json(jp_fetch, "runs", params=q)
    check_openapi(resp, "GET", "/runs", q)
    assert code == 200 and [r["name"] for r in data["runs"]] == ["first"]
    assert data["total"] == 1
    first = data["runs"][0]
    assert first["params"] == {"alpha": 0.5, "l1_ratio": 0.1}
    assert first["metrics"]["nan_metric"] == "NaN"  # strict JSON spelling
    assert first["tags"] == {"model": "enet"}

    code, data, _ = await fetch_json(jp_fetch, "runs", params={"sort": "started_at", "limit": "1",
                                                                "offset": "1"})
    assert code == 200 and data["total"] == 4 and [r["name"] for r in data["runs"]] == ["second"]


@pytest.mark.parametrize("limit", ["1001", "-1", "ten", "1e3"])
async def test_list_runs_bad_paging(jp_fetch: Any, limit: str) -> None:
    code, data, resp = await fetch_json(jp_fetch, "runs", params={"limit": limit})
    assert code == 400 and "limit" in data["message"]
    check_openapi(resp, "GET", "/runs")


async def test_bad_filter_names_the_position(jp_fetch: Any) -> None:
    code, data, resp = await fetch_json(jp_fetch, "runs", params={"filter": "params.alpha >"})
    assert code == 400
    assert "position" in data["message"]
    assert "Traceback" not in resp.body.decode()
    code, data, _ = await fetch_json(jp_fetch, "runs", params={"sort": "metrics."})
    assert code == 400 and "position" in data["message"]


async def test_get_run_whole_and_by_prefix(jp_fetch: Any, base: dict[str, Any]) -> None:
    rid = base["ids"]["first"]
    code, run, resp = await fetch_json(jp_fetch, "runs", rid[:6], params={"series": "1"})
    assert code == 200
    check_openapi(resp, "GET", f"/runs/{rid[:6]}", {"series": "1"})
    assert run["id"] == rid and run["status"] == "finished"
    assert run["metrics"]["nan_metric"] == "NaN"
    assert [p["value"] for p in run["series"]["train/loss"]] == [1.0, 0.5, 1 / 3]
    assert run["cells"] and all(c["sha256"] for c in run["cells"])
    assert run["artifacts"][0]["name"] == "plot.png"
    assert "packages" in run["environment"]
    strict_loads(resp.body.decode())  # no bare NaN anywhere


async def test_unknown_run_is_404(jp_fetch: Any) -> None:
    for parts in (("runs", "ffffffffffff"), ("runs", "ffffffffffff", "metrics", "x"),
                  ("runs", "ffffffffffff", "artifacts", "x"), ("runs", "ffffffffffff", "drift")):
        code, data, resp = await fetch_json(jp_fetch, *parts)
        assert code == 404, parts
        assert "ffffffffffff" in data["message"]
    code, data, resp = await fetch_json(jp_fetch, "runs", "ffffffffffff", method="DELETE")
    assert code == 404
    check_openapi(resp, "DELETE", "/runs/ffffffffffff")


async def test_metric_series_with_encoded_key(jp_fetch: Any, base: dict[str, Any]) -> None:
    rid = base["ids"]["first"]
    resp = await jp_fetch("nbtrace", "api", "runs", rid, "metrics", "train%2Floss",
                          raise_error=False)
    # jp_fetch escapes '%' itself; the server must decode exactly once
    assert resp.code == 404
    code, series, resp = await fetch_json(jp_fetch, "runs", rid, "metrics", "train/loss")
    assert code == 200
    check_openapi(resp, "GET", f"/runs/{rid}/metrics/train%2Floss")
    assert [(p["step"], p["value"]) for p in series] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    code, series, _ = await fetch_json(jp_fetch, "runs", rid, "metrics", "nan_metric")
    assert code == 200 and series[0]["value"] == "NaN"
    code, data, _ = await fetch_json(jp_fetch, "runs", rid, "metrics", "nope")
    assert code == 404


async def test_metric_key_url_decoded(jp_fetch: Any, http_server_client: Any,
                                      jp_auth_header: dict[str, str], jp_base_url: str,
                                      base: dict[str, Any]) -> None:
    rid = base["ids"]["first"]
    url = f"{jp_base_url}nbtrace/api/runs/{rid}/metrics/train%2Floss"
    resp = await http_server_client.fetch(url, headers=jp_auth_header, raise_error=False)
    assert resp.code == 200 and len(strict_loads(resp.body.decode())) == 3


async def test_compare(jp_fetch: Any, base: dict[str, Any]) -> None:
    a, b = base["ids"]["first"], base["ids"]["second"]
    q = {"ids": f"{a},{b[:5]}"}
    code, cmp, resp = await fetch_json(jp_fetch, "compare", params=q)
    assert code == 200
    check_openapi(resp, "GET", "/compare", q)
    alpha = next(p for p in cmp["params"] if p["key"] == "alpha")
    assert alpha["differs"] and alpha["values"] == {a: 0.5, b: 0.2}
    assert next(m for m in cmp["metrics"] if m["key"] == "mse")["best"] == b
    code, data, _ = await fetch_json(jp_fetch, "compare", params={"ids": a})
    assert code == 400
    code, data, _ = await fetch_json(jp_fetch, "compare", params={"ids": f"{a},ffffffffffff"})
    assert code == 404


# ----------------------------------------------------------------------------- edits
def _patch(body: Any, ctype: str = "application/json") -> dict[str, Any]:
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return {"method": "PATCH", "body": raw, "headers": {"Content-Type": ctype}}


async def test_patch_run(jp_fetch: Any, base: dict[str, Any]) -> None:
    rid = base["ids"]["second"]
    body = {"name": "renamed", "tags": {"team": "a", "model": None}, "note": "looks good"}
    code, run, resp = await fetch_json(jp_fetch, "runs", rid, **_patch(body))
    assert code == 200
    check_openapi(resp, "PATCH", f"/runs/{rid}", body=body)
    assert run["name"] == "renamed" and run["tags"] == {"team": "a"} and run["note"] == "looks good"
    code, run, _ = await fetch_json(jp_fetch, "runs", rid, **_patch({"tags": {"team": None}}))
    assert code == 200 and run["tags"] == {} and run["name"] == "renamed"


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        ("[1, 2]", "application/json", 400),
        ('"name"', "application/json", 400),
        ("{not json", "application/json", 400),
        ("[" * 100_000, "application/json", 400),
        (b'{"name": "\xff"}', "application/json; charset=utf-8", 400),
        ({"colour": "red"}, "application/json", 400),
        ({"name": ""}, "application/json", 400),
        ({"tags": ["a"]}, "application/json", 400),
        ({"note": 5}, "application/json", 400),
        ({"name": "x"}, "text/plain", 415),
        ({"name": "x"}, "application/x-www-form-urlencoded", 415),
    ],
)
async def test_patch_rejects_bad_bodies(jp_fetch: Any, base: dict[str, Any], body: Any,
                                        ctype: str, status: int) -> None:
    rid = base["ids"]["second"]
    code, data, resp = await fetch_json(jp_fetch, "runs", rid, **_patch(body, ctype))
    assert code == status, data
    assert isinstance(data["message"], str) and data["message"]
    code, run, _ = await fetch_json(jp_fetch, "runs", rid)
    assert run["name"] == "second"


async def test_delete_run(jp_fetch: Any, base: dict[str, Any]) -> None:
    rid = base["ids"]["second"]
    resp = await jp_fetch("nbtrace", "api", "runs", rid, method="DELETE")
    assert resp.code == 204 and not resp.body
    check_openapi(resp, "DELETE", f"/runs/{rid}")
    code, data, _ = await fetch_json(jp_fetch, "runs", rid)
    assert code == 404
    code, data, _ = await fetch_json(jp_fetch, "runs")
    assert data["total"] == 3
    code, data, _ = await fetch_json(jp_fetch, "runs", base["ids"]["live"], method="DELETE")
    assert code == 409 and "still running" in data["message"]


# ----------------------------------------------------------------------------- artifacts
async def test_artifact_types_and_headers(jp_fetch: Any, base: dict[str, Any]) -> None:
    rid = base["ids"]["arts"]
    resp = await jp_fetch("nbtrace", "api", "runs", rid, "artifacts", "plots/a.png")
    assert resp.body == PNG
    assert resp.headers["Content-Type"] == "image/png"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    check_openapi(resp, "GET", f"/runs/{rid}/artifacts/plots%2Fa.png")

    for name, data in ACTIVE.items():
        resp = await jp_fetch("nbtrace", "api", "runs", rid, "artifacts", name)
        assert resp.body == data, name
        assert resp.headers["Content-Type"].startswith("text/plain"), name
        assert resp.headers["Content-Disposition"].startswith("attachment"), name
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in resp.headers["Content-Security-Policy"]

    resp = await jp_fetch("nbtrace", "api", "runs", rid, "artifacts", "model.pkl")
    assert resp.headers["Content-Disposition"].startswith("attachment")
    resp = await jp_fetch("nbtrace", "api", "runs", rid, "artifacts", "data.csv")
    assert resp.headers["Content-Type"].startswith("text/csv")
    resp = await jp_fetch("nbtrace", "api", "runs", rid, "artifacts", "r\u00e9sum\u00e9 \"q\".txt")
    assert resp.body == b"hello"
    first = base["ids"]["first"]
    resp = await jp_fetch("nbtrace", "api", "runs", first, "artifacts", "plot.png")
    assert resp.body == PNG


@pytest.mark.parametrize(
    "name",
    [
        "../../../../etc/passwd",
        "..%2f..%2f..%2fetc%2fpasswd",
        "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "%2E%2E/%2E%2E/etc/passwd",
        "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "plots/../plots/a.png",
        "..%5c..%5cetc%5cpasswd",
        "link/passwd",
        "../root-other/secret.txt",
        "secret.txt",
    ],
)
async def test_artifact_names_never_reach_the_filesystem(
    http_server_client: Any, jp_auth_header: dict[str, str], jp_base_url: str,
    jp_root_dir: Path, base: dict[str, Any], name: str,
) -> None:
    # Files an escape would find: in the root, through a symlink, in a sibling folder.
    (jp_root_dir / "secret.txt").write_text("root secret")
    (jp_root_dir / "link").symlink_to("/etc")
    other = jp_root_dir.parent / (jp_root_dir.name + "-other")
    other.mkdir(exist_ok=True)
    (other / "secret.txt").write_text("sibling secret")
    rid = base["ids"]["arts"]
    url = f"{jp_base_url}nbtrace/api/runs/{rid}/artifacts/{name}"
    resp = await http_server_client.fetch(url, headers=jp_auth_header, raise_error=False)
    assert resp.code in (400, 404), (name, resp.code)
    body = resp.body.decode("utf-8", "replace")
    assert "root:x:" not in body and "root secret" not in body and "sibling secret" not in body
    assert strict_loads(body)["message"]


# ----------------------------------------------------------------------------- jobs (no kernel)
async def test_jobs_empty_and_unknown(jp_fetch: Any) -> None:
    code, data, resp = await fetch_json(jp_fetch, "jobs")
    assert code == 200 and data == {"jobs": []}
    check_openapi(resp, "GET", "/jobs")
    for method in ("GET", "DELETE"):
        code, data, resp = await fetch_json(jp_fetch, "jobs", "0123abcd", method=method)
        assert code == 404, method
        check_openapi(resp, method, "/jobs/0123abcd")


async def test_rerun_request_validation(jp_fetch: Any, base: dict[str, Any]) -> None:
    rid = base["ids"]["first"]
    cases = [
        ({"overrides": {"x": 1}}, 400, "unknown parameter 'x' (the run has: alpha, l1_ratio)"),
        ({"overrides": {"alpha": {"a": 1}}}, 400, "JSON scalar or list"),
        ({"overrides": [1]}, 400, "overrides must be an object"),
        ({"overrides": {}, "kernel": "x"}, 400, "unknown field"),
        ({"kernel_name": 3}, 400, "kernel_name"),
        ([1], 400, "JSON object"),
    ]
    for body, status, text in cases:
        code, data, resp = await fetch_json(jp_fetch, "runs", rid, "rerun", **post_json(body))
        assert code == status, (body, data)
        assert text in data["message"], (body, data)
        check_openapi(resp, "POST", f"/runs/{rid}/rerun")
    code, data, _ = await fetch_json(jp_fetch, "runs", "ffffffffffff", "rerun",
                                     **post_json({}))
    assert code == 404
    code, data, _ = await fetch_json(jp_fetch, "runs", base["ids"]["live"], "rerun",
                                     **post_json({}))
    assert code == 409 and "still running" in data["message"]
    code, data, _ = await fetch_json(jp_fetch, "jobs")
    assert data["jobs"] == []  # nothing was queued


@pytest.fixture
def stale_jobs(server_db: str) -> None:
    """Jobs left queued/running by a server process that no longer exists, and a done one."""
    store = open_store(server_db)
    now = time.time()
    for jid, state, server in (("aaaa1111", "running", {"host": None, "pid": 2**22 + 7}),
                               ("bbbb2222", "queued", None),
                               ("cccc3333", "done", None)):
        store.save_job({"id": jid, "run_id": "x", "state": state, "created_at": now,
                        "updated_at": now, "request": {"server": server} if server else {}})
    store.close()


async def test_stale_jobs_are_marked_error_at_start(stale_jobs: None, jp_fetch: Any) -> None:
    # When a server starts on that store, then the unfinished jobs read as errors
    code, job, resp = await fetch_json(jp_fetch, "jobs", "aaaa1111")
    assert code == 200 and job["state"] == "error"
    assert job["error"] == "the server restarted before the job finished"
    check_openapi(resp, "GET", "/jobs/aaaa1111")
    code, data, _ = await fetch_json(jp_fetch, "jobs")
    states = {j["id"]: j["state"] for j in data["jobs"]}
    assert states == {"aaaa1111": "error", "bbbb2222": "error", "cccc3333": "done"}


# ----------------------------------------------------------------------------- authentication
def _nbtrace_routes(app: Any) -> list[tuple[str, type]]:
    """Every (regex, handler) the web app routes under /nbtrace/api (introspected)."""
    found = []

    def walk(router: Any) -> None:
        for rule in getattr(router, "rules", []):
            target = rule.target
            if hasattr(target, "rules"):
                walk(target)
                continue
            regex = getattr(rule.matcher, "regex", None)
            if regex is not None and "nbtrace/api" in regex.pattern:
                found.append((regex.pattern, target))

    walk(app.web_app.default_router)
    walk(app.web_app.wildcard_router)
    return found


def _sample_url(pattern: str) -> str:
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: {"key": "mse", "name": "plot.png"}.get(
        m.group(1), "abc123"), pattern)
    return url.rstrip("$")


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


async def test_every_route_and_method_requires_authentication(
    jp_serverapp: Any, http_server_client: Any, server_db: str,
) -> None:
    from nbtrace.server.routes import ROUTES

    routes = _nbtrace_routes(jp_serverapp)
    assert len(routes) == len(ROUTES) >= 9
    before = len(open_store(server_db).list_jobs())
    for pattern, _handler in routes:
        url = _sample_url(pattern)
        for method in METHODS:
            body = "{}" if method in ("POST", "PUT", "PATCH") else None
            resp = await http_server_client.fetch(
                url, method=method, body=body, raise_error=False, allow_nonstandard_methods=True,
                headers={"Content-Type": "application/json"},
            )
            assert resp.code in (401, 403), (method, url, resp.code)
    store = open_store(server_db)
    assert len(store.list_jobs()) == before
    assert store.list_runs()[1] == 4  # nothing was deleted


class DenyNBTrace(Authorizer):
    """Authenticated, but not authorized for nbtrace (and allowed everything else)."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "nbtrace"


class NoKernels(Authorizer):
    """Allowed nbtrace, but not to execute kernels."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not (resource == "kernels" and action == "execute")


@pytest.mark.parametrize("extra_config", [{"authorizer_class": DenyNBTrace}])
async def test_every_route_and_method_requires_authorization(
    jp_serverapp: Any, http_server_client: Any, jp_auth_header: dict[str, str],
) -> None:
    for pattern, _handler in _nbtrace_routes(jp_serverapp):
        url = _sample_url(pattern)
        for method in ("GET", "POST", "PATCH", "DELETE"):
            body = "{}" if method in ("POST", "PATCH") else None
            resp = await http_server_client.fetch(
                url, method=method, body=body, raise_error=False,
                headers=dict(jp_auth_header, **{"Content-Type": "application/json"}),
            )
            if resp.code == 405:
                continue  # the route has no such verb
            assert resp.code == 403, (method, url, resp.code)


@pytest.mark.parametrize("extra_config", [{"authorizer_class": NoKernels}])
async def test_rerun_needs_kernel_execute_permission(jp_fetch: Any, base: dict[str, Any]) -> None:
    code, data, _ = await fetch_json(jp_fetch, "runs")
    assert code == 200
    code, data, _ = await fetch_json(jp_fetch, "runs", base["ids"]["first"], "rerun",
                                     **post_json({}))
    assert code == 403 and "kernel" in data["message"]
    code, data, _ = await fetch_json(jp_fetch, "jobs")
    assert data["jobs"] == []


async def _cookie_session(jp_fetch: Any) -> dict[str, str]:
    """Log in with the token once; return the cookies a browser would then send."""
    resp = await jp_fetch("nbtrace", "api", "runs")
    cookies: dict[str, str] = {}
    for header in resp.headers.get_list("Set-Cookie"):
        name, _, rest = header.partition("=")
        cookies[name] = rest.split(";", 1)[0]
    assert any(n.startswith("username-") for n in cookies), cookies
    return cookies


async def test_state_changes_need_the_xsrf_token(jp_fetch: Any, base: dict[str, Any],
                                                 server_db: str) -> None:
    cookies = await _cookie_session(jp_fetch)
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items() if k.startswith("username-"))
    rid = base["ids"]["first"]
    no_token = {"Authorization": "", "Cookie": cookie, "Content-Type": "application/json"}
    # a GET with the cookie works (cookie sessions are real) ...
    resp = await jp_fetch("nbtrace", "api", "runs", rid, headers=dict(no_token))
    assert resp.code == 200
    # ... but no state change without the XSRF token
    for method, parts, body in (
        ("PATCH", ("runs", rid), '{"name": "x"}'),
        ("DELETE", ("runs", rid), None),
        ("POST", ("runs", rid, "rerun"), "{}"),
        ("DELETE", ("jobs", "abcd1234"), None),
    ):
        resp = await jp_fetch("nbtrace", "api", *parts, method=method, body=body,
                              headers=dict(no_token), raise_error=False,
                              allow_nonstandard_methods=True)
        assert resp.code == 403, (method, parts, resp.code)
    store = open_store(server_db)
    assert store.get_run(rid)["name"] == "first" and store.list_jobs() == []
    # with the XSRF cookie echoed in a header (what JupyterLab does) it is accepted
    xsrf = "0123456789abcdef"
    headers = dict(no_token, Cookie=f"{cookie}; _xsrf={xsrf}", **{"X-XSRFToken": xsrf})
    resp = await jp_fetch("nbtrace", "api", "runs", rid, method="PATCH",
                          body='{"note": "ok"}', headers=headers, raise_error=False)
    assert resp.code == 200


async def test_cross_origin_text_plain_post_starts_nothing(
    jp_fetch: Any, base: dict[str, Any], server_db: str,
) -> None:
    rid = base["ids"]["first"]
    cookies = await _cookie_session(jp_fetch)
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    # What a malicious page can send: a "simple" request, text/plain, cookies, no custom header
    resp = await jp_fetch("nbtrace", "api", "runs", rid, "rerun", method="POST",
                          body='{"overrides": {}}', raise_error=False,
                          headers={"Authorization": "", "Cookie": cookie,
                                   "Content-Type": "text/plain", "Origin": "http://evil.example"})
    assert resp.code in (403, 404)
    # Even a token-authenticated (XSRF-exempt) text/plain POST is refused before anything runs
    resp = await jp_fetch("nbtrace", "api", "runs", rid, "rerun", method="POST",
                          body='{"overrides": {}}', raise_error=False,
                          headers={"Content-Type": "text/plain"})
    assert resp.code == 415
    assert open_store(server_db).list_jobs() == []


async def test_errors_are_json_messages_without_internals(jp_fetch: Any) -> None:
    code, data, resp = await fetch_json(jp_fetch, "runs", params={"filter": "(" * 500})
    assert code == 400 and set(data) == {"message"}
    assert resp.headers["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("server_db", ["/dev/null/nbtrace/runs.db"])
async def test_store_unavailable_is_503(jp_fetch: Any) -> None:
    code, data, _ = await fetch_json(jp_fetch, "runs")
    assert code == 503 and "store" in data["message"]


def test_extension_is_declared() -> None:
    import nbtrace
    import nbtrace.server as ext

    assert nbtrace._jupyter_server_extension_points() == [{"module": "nbtrace.server"}]
    assert callable(ext._load_jupyter_server_extension)
    cfg = json.loads((Path(__file__).parents[2] / "jupyter-config" / "server-config"
                      / "nbtrace.json").read_text())
    assert cfg == {"ServerApp": {"jpserver_extensions": {"nbtrace": True}}}

