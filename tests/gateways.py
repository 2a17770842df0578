"""Real processes for the gateway tests: a ``jupyter kernelgateway`` and a ``jupyter server
--gateway-url`` on free loopback ports with tokens, an HTTP client for them, the process tree.

Why subprocesses rather than pytest-jupyter's in-process server: jupyter_server's
``GatewayClient`` is a process-wide singleton; configuring it in the test process would send
every later in-process server's kernels to a gateway that is gone.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Service:
    """A started HTTP service: its process, URL and token."""

    proc: subprocess.Popen[bytes]
    url: str
    token: str
    log: Path

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """``(status, parsed JSON or None)``; HTTP errors are returned, not raised."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"token {token or self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw = resp.read()
                code = resp.status
        except urllib.error.HTTPError as exc:
            raw, code = exc.read(), exc.code
        return code, (json.loads(raw) if raw else None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def _wait_up(svc: Service, path: str, deadline_s: float = 90.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if svc.proc.poll() is not None:
            raise RuntimeError(f"{svc.url} exited:\n{svc.tail()}")
        try:
            code, _ = svc.request("GET", path)
            if code == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    svc.stop()
    raise RuntimeError(f"{svc.url} did not come up:\n{svc.tail()}")


def start_gateway(workdir: Path, wrap: list[str] | None = None) -> Service:
    """``jupyter kernelgateway`` on a free loopback port with a token (kernels listable).

    ``wrap`` prefixes the command (e.g. ``unshare`` to give the gateway its own view of the
    file system, as a gateway on another machine would have)."""
    port, token = free_port(), secrets.token_hex(8)
    log = workdir / f"gateway-{port}.log"
    cmd = [
        str(BIN / "jupyter"),
        "kernelgateway",
        "--KernelGatewayApp.ip=127.0.0.1",
        f"--KernelGatewayApp.port={port}",
        f"--KernelGatewayApp.auth_token={token}",
        "--JupyterWebsocketPersonality.list_kernels=True",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACE_", "JPY_"))}
    proc = subprocess.Popen(  # noqa: S603 - our own venv's jupyter
        (wrap or []) + cmd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(workdir),
        start_new_session=True,
    )
    svc = Service(proc, f"http://127.0.0.1:{port}", token, log)
    _wait_up(svc, "/api/kernelspecs")
    return svc


def start_server(
    workdir: Path,
    root: Path,
    db: str,
    gateway: Service | None,
    nbtrace: dict[str, Any] | None = None,
) -> Service:
    """``jupyter server`` with nbtrace on ``db``, kernels on ``gateway`` (when given)."""
    port, token = free_port(), secrets.token_hex(8)
    log = workdir / f"server-{port}.log"
    config = workdir / f"server-{port}_config.py"
    lines = [
        "c.ServerApp.jpserver_extensions = {'nbtrace': True}",
        f"c.NBTrace.db_path = {db!r}",
    ]
    for k, v in (nbtrace or {}).items():
        lines.append(f"c.NBTrace.{k} = {v!r}")
    config.write_text("\n".join(lines) + "\n")
    cmd = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--config={config}",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--no-browser",
        "--allow-root",
        f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    if gateway is not None:
        cmd += [f"--gateway-url={gateway.url}", f"--GatewayClient.auth_token={gateway.token}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NBTRACE_", "JPY_"))}
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter
        cmd,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(workdir),
        start_new_session=True,
    )
    svc = Service(proc, f"http://127.0.0.1:{port}", token, log)
    _wait_up(svc, "/api/status")
    return svc


# ----------------------------------------------------------------------------- process tree
def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def kernel_processes() -> dict[int, int]:
    """``{pid: parent pid}`` of every ipykernel process on this machine (from /proc)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and "ipykernel" in _cmdline(int(entry)):
            ppid = _ppid(int(entry))
            if ppid is not None:
                out[int(entry)] = ppid
    return out


def descends_from(pid: int, ancestor: int) -> bool:
    seen = 0
    while pid and pid != 1 and seen < 64:
        if pid == ancestor:
            return True
        pid = _ppid(pid) or 0
        seen += 1
    return False


@dataclass
class Sampler:
    """Samples, in two threads, the gateway's kernel list (HTTP) and the machine's kernel
    processes (/proc): a slow HTTP answer on a busy machine never delays the process samples."""

    gateway: Service
    interval: float = 0.05
    max_kernels: int = 0
    samples: int = 0
    kernel_pids: dict[int, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> "Sampler":
        for target in (self._kernels, self._processes):
            t = threading.Thread(target=target, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(90)

    def _kernels(self) -> None:
        while not self._stop.is_set():
            try:
                code, kernels = self.gateway.request("GET", "/api/kernels")
            except OSError:
                code, kernels = 0, None
            if code == 200 and isinstance(kernels, list):
                self.max_kernels = max(self.max_kernels, len(kernels))
                self.samples += 1
            self._stop.wait(self.interval)

    def _processes(self) -> None:
        while not self._stop.is_set():
            self.kernel_pids.update(kernel_processes())
            self._stop.wait(0.02)


def wait_for(check: Any, timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``check()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
