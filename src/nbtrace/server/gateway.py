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

from jupyter_client.jsonutil import extract_dates
from jupyter_server.gateway.gateway_client import GatewayClient
from jupyter_server.gateway.managers import ChannelQueue, GatewayKernelClient, HBChannelQueue

from ..rerun.hosts import KernelHost

#: Longest wait for a message before looking again whether the connection closed (seconds).
LOOK_S = 0.5


class _Quiet:
    """Channel-queue behaviour that waits for a message without polling, and names the
    channel on send.

    Why not jupyter_server's ``asyncio.sleep(0)`` loop (or a sleep between looks): the first
    keeps a core busy while a cell runs, the second adds its sleep to every message, and a cell
    is a chain of messages (request, busy, input, output, reply, idle). The router thread puts
    a message and wakes the coroutine waiting on the loop instead.

    Messages get their header's date as a ``datetime`` object, as jupyter_client's ``Session``
    gives them over ZMQ: nbclient reads the kernel's times from them for the executed
    notebook's timing metadata, and without them it takes the time the message arrived here
    (which adds the gateway's relay to every cell's time).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[call-arg]
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if isinstance(item, dict) and isinstance(item.get("header"), dict):
            item["header"] = extract_dates(item["header"])
        super().put(item, block, timeout)  # type: ignore[misc]
        for loop, fut in list(self._waiters):
            try:
                loop.call_soon_threadsafe(_wake, fut)
            except RuntimeError:  # the loop closed: nobody is waiting any more
                pass

    async def _async_get(self, timeout: float | None = None) -> Any:
        import queue
        import time

        end = None if timeout is None else time.monotonic() + timeout
        loop = asyncio.get_running_loop()
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            waiter = (loop, fut)
            self._waiters.add(waiter)
            try:
                # Looked at after the waiter is set: a put in between wakes it.
                return self.get(block=False)  # type: ignore[attr-defined]
            except queue.Empty:
                if self.response_router_finished:  # type: ignore[attr-defined]
                    raise RuntimeError("the gateway connection closed") from None
                left = LOOK_S if end is None else min(LOOK_S, end - time.monotonic())
                if left <= 0:
                    raise
                try:
                    await asyncio.wait_for(fut, left)
                except asyncio.TimeoutError:
                    pass
            finally:
                self._waiters.discard(waiter)

    def send(self, msg: dict[str, Any]) -> None:
        msg.setdefault("channel", self.channel_name)  # type: ignore[attr-defined]
        super().send(msg)  # type: ignore[misc]


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


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
        _ack_at_once(sock)
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


def _ack_at_once(sock: Any) -> None:
    """Acknowledge the gateway's TCP segments at once (Linux ``TCP_QUICKACK``, renewed after
    every message, as the kernel turns it off again by itself).

    Why: a gateway's websocket (tornado's, without ``set_nodelay``) sends with Nagle's
    algorithm, so each small message after the first of a burst waits for the previous one's
    ACK, and this side delays ACKs by up to 40 ms: a cell's reply then arrives tens of
    milliseconds late, on every cell of a replay.
    """
    import socket

    quickack = getattr(socket, "TCP_QUICKACK", None)
    raw = getattr(sock, "sock", None)
    if quickack is None or raw is None:
        return

    def set_quickack() -> None:
        try:
            raw.setsockopt(socket.IPPROTO_TCP, quickack, 1)
        except OSError:
            pass

    recv = sock.recv

    def recv_acking() -> Any:
        try:
            return recv()
        finally:
            set_quickack()

    set_quickack()
    sock.recv = recv_acking


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
