"""Kernel hosts from jupyter_server's managers: the server's own, or a gateway's for the CLI.

:func:`server_host` wraps the running server's kernel manager (a ``GatewayMappingKernelManager``
when the server was started with ``--gateway-url``); :func:`gateway_host` builds jupyter_server's
gateway client and managers for ``nbtrace rerun --gateway-url`` (no server running), on a loop
thread of its own.

Why a kernel client of our own for gateway kernels: jupyter_server's ``GatewayKernelClient``
(2.x) opens its websocket without the gateway's authorization header, so a gateway with a token
refuses it (401), and its channel queues poll with ``asyncio.sleep(0)``, which keeps a core
busy for as long as a cell runs. :class:`NBTraceGatewayKernelClient` is that client with the
headers of ``GatewayClient.load_connection_args()`` and queues that wait without spinning.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import ChannelQueue, GatewayKernelClient, HBChannelQueue

from ..rerun.hosts import KernelHost

#: Longest wait between two looks at an empty channel queue (seconds).
POLL_MAX_S = 0.005


class _Quiet:
    """Channel-queue behaviour that sleeps while empty and names the channel on send."""

    async def _async_get(self, timeout: float | None = None) -> Any:
        import queue
        import time

        end = None if timeout is None else time.monotonic() + timeout
        pause = 0.001
        while True:
            try:
                return self.get(block=False)  # type: ignore[attr-defined]
            except queue.Empty:
                if self.response_router_finished:  # type: ignore[attr-defined]
                    raise RuntimeError("the gateway connection closed") from None
                if end is not None and time.monotonic() > end:
                    raise
                await asyncio.sleep(pause)
                pause = min(POLL_MAX_S, pause * 2)

    def send(self, msg: dict[str, Any]) -> None:
        msg.setdefault("channel", self.channel_name)  # type: ignore[attr-defined]
        super().send(msg)  # type: ignore[misc]


class _QuietQueue(_Quiet, ChannelQueue):
    pass


class _QuietHBQueue(_Quiet, HBChannelQueue):
    pass


class NBTraceGatewayKernelClient(GatewayKernelClient):
    """``GatewayKernelClient`` that authenticates its websocket and does not spin."""

    async def start_channels(
        self,
        shell: bool = True,
        iopub: bool = True,
        stdin: bool = True,
        hb: bool = True,
        control: bool = True,
    ) -> None:
        import websocket
        from jupyter_client.asynchronous.client import AsyncKernelClient
        from jupyter_server.utils import url_escape, url_path_join

        gw = GatewayClient.instance()
        ws_url = url_path_join(
            gw.ws_url or "", gw.kernels_endpoint, url_escape(self.kernel_id), "channels"
        )
        headers = gw.load_connection_args().get("headers") or {}
        ssl_options = {
            "ca_certs": gw.ca_certs,
            "certfile": gw.client_cert,
            "keyfile": gw.client_key,
        }
        sock = await asyncio.to_thread(
            websocket.create_connection,
            ws_url,
            timeout=gw.KERNEL_LAUNCH_TIMEOUT,
            enable_multithread=True,
            sslopt=ssl_options,
            header=[f"{k}: {v}" for k, v in headers.items()],
        )
        self.channel_socket = sock
        self._channel_queues = {}
        for name in ("shell", "iopub", "stdin", "control"):
            q = _QuietQueue(name, sock, self.log)
            setattr(self, f"_{name}_channel", q)
            self._channel_queues[name] = q
        self._hb_channel = _QuietHBQueue("hb", sock, self.log)
        self._channel_queues["hb"] = self._hb_channel
        started = AsyncKernelClient.start_channels(
            self, shell=shell, iopub=iopub, stdin=stdin, hb=hb, control=control
        )
        if asyncio.iscoroutine(started):
            await started
        self.response_router = threading.Thread(
            target=self._route_responses, name="nbtrace-gateway-ws", daemon=True
        )
        self.response_router.start()


def gateway_client_for(km: Any) -> NBTraceGatewayKernelClient:
    """A client for the gateway kernel managed by ``km`` (a ``GatewayKernelManager``)."""
    kw: dict[str, Any] = dict(km.get_connection_info(session=True))
    kw.update(connection_file=km.connection_file, parent=km, kernel_id=km.kernel_id)
    return NBTraceGatewayKernelClient(**kw)


def is_gateway(kernel_manager: Any) -> bool:
    from jupyter_server.gateway.managers import GatewayMappingKernelManager

    return isinstance(kernel_manager, GatewayMappingKernelManager)


def server_host(serverapp: Any, loop: asyncio.AbstractEventLoop) -> KernelHost | None:
    """The server's kernel manager as a host (None when the server has none)."""
    km = getattr(serverapp, "kernel_manager", None)
    ksm = getattr(serverapp, "kernel_spec_manager", None)
    if km is None or ksm is None:
        return None
    remote = is_gateway(km)
    return KernelHost(
        kernel_manager=km,
        kernel_spec_manager=ksm,
        loop=loop,
        remote=remote,
        root_dir=str(serverapp.root_dir) if getattr(serverapp, "root_dir", None) else None,
        client_factory=gateway_client_for if remote else None,
        name=f"gateway {GatewayClient.instance().url}" if remote else "server",
    )


def gateway_host(url: str, token: str | None = None) -> tuple[KernelHost, Any]:
    """A host on the gateway at ``url`` for the CLI, and a function that stops its loop.

    The managers are jupyter_server's (``GatewayClient``, ``GatewayMappingKernelManager``,
    ``GatewayKernelSpecManager``), configured as ``jupyter server --gateway-url`` would.
    """
    from jupyter_server.gateway.managers import (
        GatewayKernelSpecManager,
        GatewayMappingKernelManager,
    )
    from traitlets import Unicode
    from traitlets.config import Configurable

    class CliParent(Configurable):
        base_url = Unicode("/")
        kernel_manager: Any = None

    kwargs: dict[str, Any] = {"url": url}
    if token:
        kwargs["auth_token"] = token
    GatewayClient.clear_instance()
    GatewayClient.instance(**kwargs)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="nbtrace-gateway-loop", daemon=True)
    thread.start()

    async def build() -> tuple[Any, Any]:
        parent = CliParent()
        km = GatewayMappingKernelManager(parent=parent, root_dir=os.getcwd())
        parent.kernel_manager = km
        return km, GatewayKernelSpecManager(parent=parent)

    km, ksm = asyncio.run_coroutine_threadsafe(build(), loop).result(60)
    host = KernelHost(
        kernel_manager=km,
        kernel_spec_manager=ksm,
        loop=loop,
        remote=True,
        client_factory=gateway_client_for,
        name=f"gateway {url}",
    )

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return host, stop
