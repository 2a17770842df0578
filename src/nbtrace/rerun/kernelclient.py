"""An nbclient ``NotebookClient`` that tells the kernel which notebook cell it runs.

Why: JupyterLab sends each cell's id in the execute request's metadata (``cellId``), and
IPython hands it to ``pre_run_cell``, so nbtrace records which notebook cell produced each
executed source. nbclient does not send it; the rerun engine and the tests use this client so
replayed cells keep their original ids, as they would in JupyterLab.
"""

from __future__ import annotations

from typing import Any

from nbclient import NotebookClient


class CellIdNotebookClient(NotebookClient):
    """``NotebookClient`` whose execute requests carry ``metadata.cellId``."""

    _cell_id: str | None = None

    async def async_execute_cell(self, cell: Any, cell_index: int, *args: Any, **kw: Any) -> Any:
        self._cell_id = cell.get("id")
        self._wrap_execute()
        return await super().async_execute_cell(cell, cell_index, *args, **kw)

    def _wrap_execute(self) -> None:
        kc = self.kc
        if kc is None or getattr(kc, "_nbtrace_wrapped", False):
            return
        client = self

        def execute(
            code: str,
            silent: bool = False,
            store_history: bool = True,
            user_expressions: dict | None = None,
            allow_stdin: bool | None = None,
            stop_on_error: bool = True,
        ) -> str:
            content = {
                "code": code,
                "silent": silent,
                "store_history": store_history,
                "user_expressions": user_expressions or {},
                "allow_stdin": kc.allow_stdin if allow_stdin is None else allow_stdin,
                "stop_on_error": stop_on_error,
            }
            msg = kc.session.msg("execute_request", content)
            if client._cell_id:
                msg["metadata"]["cellId"] = client._cell_id
            kc.shell_channel.send(msg)
            return msg["header"]["msg_id"]

        kc.execute = execute
        kc._nbtrace_wrapped = True
