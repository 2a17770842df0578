"""Jobs and sweeps on a server shared by several Jupyter identities.

The server's identity provider names the user from a request header (after the usual token
check), as JupyterHub's or a company's single sign-on would; jobs are real re-executions. With
jupyter_server's default authorizer each identity lists, reads and cancels only its own jobs and
sweeps; an authorizer that grants ``read``/``write`` on ``nbtrace.all_jobs`` widens that.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_core.utils import ensure_async
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, User

from nbtrace.server.handlers import ALL_JOBS
from nbtrace.store import open_store

from .conftest import check_openapi, fetch_json, post_json, synthetic_run


class HeaderIdentity(IdentityProvider):
    """The token-authenticated user, named by the ``X-Test-User`` header when it is set."""

    async def get_user(self, handler: Any) -> User | None:  # type: ignore[override]
        user = await ensure_async(super().get_user(handler))
        if user is None:
            return None
        name = handler.request.headers.get("X-Test-User")
        return User(username=name) if name else user


class Auditors(Authorizer):
    """Everything for everyone, except other identities' jobs: ``admin`` may see and cancel
    them, ``auditor`` may only see them."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        if resource == ALL_JOBS:
            return user.username == "admin" or (user.username == "auditor" and action == "read")
        return True


@pytest.fixture
def server_db(tmp_path: Path, jp_root_dir: Path) -> str:
    db = str(tmp_path / "shared.db")
    store = open_store(db)
    synthetic_run(store, "5ha7ed000001", params={"p": 1}, cwd=str(jp_root_dir))
    store.close()
    return db


def as_user(name: str, **kw: Any) -> dict[str, Any]:
    headers = dict(kw.pop("headers", {}) or {})
    headers["X-Test-User"] = name
    return {"headers": headers, **kw}


async def over(jp_fetch: Any, user: str, path: tuple[str, ...], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        code, data, _ = await fetch_json(jp_fetch, *path, **as_user(user))
        assert code == 200, data
        if data["state"] not in ("queued", "running"):
            return data
        assert time.monotonic() < deadline, data
        await asyncio.sleep(0.2)


async def start_both(jp_fetch: Any) -> tuple[str, str, list[str]]:
    """alice re-executes the run; bob sweeps it over two values; both end."""
    code, a, _ = await fetch_json(
        jp_fetch,
        "runs",
        "5ha7ed000001",
        "rerun",
        **as_user("alice", **post_json({"trust": True})),  # recorded by someone else
    )
    assert code == 202, a
    body = {"grid": {"p": [1, 2]}, "parallel": 2, "trust": True}
    code, s, resp = await fetch_json(
        jp_fetch, "runs", "5ha7ed000001", "sweep", **as_user("bob", **post_json(body))
    )
    assert code == 202, s
    check_openapi(resp, "POST", "/runs/5ha7ed000001/sweep", body=body)
    await over(jp_fetch, "alice", ("jobs", a["job"]))
    sweep = await over(jp_fetch, "bob", ("sweeps", s["sweep"]))
    assert sweep["owner"] == "bob" and len(sweep["jobs"]) == 2
    return a["job"], s["sweep"], s["jobs"]


@pytest.mark.parametrize("extra_config", [{"identity_provider_class": HeaderIdentity}])
async def test_each_identity_sees_and_cancels_only_its_own(jp_fetch: Any, server_db: str) -> None:
    job_a, sweep_b, jobs_b = await start_both(jp_fetch)

    code, mine, resp = await fetch_json(jp_fetch, "jobs", **as_user("alice"))
    check_openapi(resp, "GET", "/jobs")
    assert [j["id"] for j in mine["jobs"]] == [job_a] and mine["jobs"][0]["owner"] == "alice"
    code, theirs, _ = await fetch_json(jp_fetch, "jobs", **as_user("bob"))
    assert sorted(j["id"] for j in theirs["jobs"]) == sorted(jobs_b)
    assert all(j["sweep"] == sweep_b for j in theirs["jobs"])

    for user, path in (
        ("bob", ("jobs", job_a)),
        ("alice", ("jobs", jobs_b[0])),
        ("alice", ("sweeps", sweep_b)),
    ):
        code, data, _ = await fetch_json(jp_fetch, *path, **as_user(user))
        assert code == 404, (user, path, data)
        code, data, _ = await fetch_json(jp_fetch, *path, **as_user(user, method="DELETE"))
        assert code == 404, (user, path, data)
    code, data, resp = await fetch_json(jp_fetch, "sweeps", sweep_b, **as_user("bob"))
    assert code == 200 and data["state"] in ("done", "error")
    check_openapi(resp, "GET", f"/sweeps/{sweep_b}")
    # Recorded in the store with the job and the sweep: who started them.
    store = open_store(server_db)
    try:
        assert store.get_job(job_a)["owner"] == "alice"
        assert store.get_sweep(sweep_b)["owner"] == "bob"
        assert {store.get_job(j)["owner"] for j in jobs_b} == {"bob"}
    finally:
        store.close()


@pytest.mark.parametrize(
    "extra_config", [{"identity_provider_class": HeaderIdentity, "authorizer_class": Auditors}]
)
async def test_the_authorizer_can_grant_other_identities_jobs(jp_fetch: Any) -> None:
    job_a, sweep_b, jobs_b = await start_both(jp_fetch)

    code, listed, _ = await fetch_json(jp_fetch, "jobs", **as_user("admin"))
    assert {job_a, *jobs_b} <= {j["id"] for j in listed["jobs"]}
    code, listed, _ = await fetch_json(jp_fetch, "jobs", **as_user("alice"))
    assert [j["id"] for j in listed["jobs"]] == [job_a]

    code, data, _ = await fetch_json(jp_fetch, "jobs", job_a, **as_user("auditor"))
    assert code == 200 and data["owner"] == "alice"
    code, data, _ = await fetch_json(jp_fetch, "jobs", job_a, **as_user("auditor", method="DELETE"))
    assert code == 403 and "alice" in data["message"], data
    code, data, _ = await fetch_json(
        jp_fetch, "sweeps", sweep_b, **as_user("auditor", method="DELETE")
    )
    assert code == 403, data
    code, data, _ = await fetch_json(
        jp_fetch, "sweeps", sweep_b, **as_user("admin", method="DELETE")
    )
    assert code == 200 and data["id"] == sweep_b, data
