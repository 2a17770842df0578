"""IPython adapter: magics and cell events, translated to :class:`~nbtrace.tracker.Tracker`.

Why thin: everything here parses a line, calls the tracker and turns an
:class:`~nbtrace.errors.NBTraceError` into IPython's ``UsageError`` (one red line, no
traceback). The docstrings are the ``%magic?`` help.
"""

from __future__ import annotations

import ast
import io
import shlex
import tokenize
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class

from . import api
from .errors import NBTraceError, one_line

_IDENT_ERR = "expected NAME=EXPR or NAME"


def split_assignments(line: str) -> list[str]:
    """Split ``a=1 b=f(x, y) * 2 c`` into ``["a=1", "b=f(x, y) * 2", "c"]``.

    A new piece starts at top level (outside brackets and strings) where ``NAME =`` begins,
    or after a bare ``NAME``; anything else, spaces included, continues the expression. So
    ``x = 'a' * 3`` is one assignment and ``alpha beta`` two names.
    """
    try:
        toks = [
            t
            for t in tokenize.generate_tokens(io.StringIO(line).readline)
            if t.type not in _SKIP and t.start[0] == 1
        ]
    except (tokenize.TokenError, SyntaxError, IndentationError) as exc:
        raise UsageError(f"cannot parse {one_line(line, 80)!r}: {one_line(exc, 80)}") from None
    pieces: list[str] = []
    depth = 0
    start = 0
    has_eq = False
    for i, tok in enumerate(toks):
        if i > 0 and depth == 0 and tok.type == tokenize.NAME and tok.start[1] > toks[i - 1].end[1]:
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            starts_assign = nxt is not None and nxt.type == tokenize.OP and nxt.string == "="
            if starts_assign or not has_eq:
                pieces.append(line[toks[start].start[1] : toks[i - 1].end[1]])
                start, has_eq = i, False
        if tok.string in ("(", "[", "{"):
            depth += 1
        elif tok.string in (")", "]", "}"):
            depth -= 1
        elif depth == 0 and tok.type == tokenize.OP and tok.string == "=":
            has_eq = True
    if toks:
        pieces.append(line[toks[start].start[1] : toks[-1].end[1]])
    return pieces


_SKIP = (
    tokenize.NEWLINE,
    tokenize.NL,
    tokenize.ENDMARKER,
    tokenize.INDENT,
    tokenize.DEDENT,
    tokenize.COMMENT,
)


def parse_assignment(piece: str) -> tuple[str, str | None]:
    """``"alpha=0.5"`` → ``("alpha", "0.5")``; ``"alpha"`` → ``("alpha", None)``."""
    name, sep, expr = piece.partition("=")
    name = name.strip()
    if sep and expr.startswith("="):  # "a==b" is a comparison, not an assignment
        raise UsageError(f"{_IDENT_ERR}, got {one_line(piece, 80)!r}")
    if not name.isidentifier():
        raise UsageError(f"{one_line(name, 60)!r} is not a valid variable name ({_IDENT_ERR})")
    if sep and not expr.strip():
        raise UsageError(f"missing expression after '{name}='")
    return name, (expr.strip() if sep else None)


def _split_options(line: str, options: set[str]) -> tuple[str, dict[str, list[str]]]:
    """Pull ``--opt VALUE`` pairs (values may be expressions without spaces) off ``line``."""
    found: dict[str, list[str]] = {}
    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"cannot parse the line: {exc}") from None
    rest: list[str] = []
    i = 0
    while i < len(words):
        w = words[i]
        opt, eq, val = w.partition("=")
        if opt in options:
            if not eq:
                if i + 1 >= len(words):
                    raise UsageError(f"{opt} needs a value")
                i += 1
                val = words[i]
            found.setdefault(opt, []).append(val)
        elif w.startswith("--"):
            raise UsageError(
                f"unknown option {one_line(w, 40)} (known: {', '.join(sorted(options))})"
            )
        else:
            rest.append(w)
        i += 1
    return " ".join(rest), found


def _step_expr(line: str) -> tuple[str, str | None]:
    """Split ``--step EXPR`` (or ``--step=EXPR``) off a %log_metric line."""
    marker = "--step"
    idx = line.find(marker)
    if idx < 0:
        return line, None
    head, tail = line[:idx], line[idx + len(marker) :]
    tail = tail[1:] if tail.startswith("=") else tail
    expr = tail.strip()
    if not expr:
        raise UsageError("--step needs a value")
    return head, expr


@magics_class
class TrackMagics(Magics):
    """nbtrace's magics."""

    def _ns(self) -> dict[str, Any]:
        return self.shell.user_ns

    def _eval(self, expr: str, what: str) -> Any:
        try:
            return eval(compile(expr, f"<{what}>", "eval"), self._ns())  # noqa: S307
        except SyntaxError as exc:
            raise UsageError(f"invalid expression for {what}: {one_line(exc.msg, 80)}") from None
        except Exception as exc:  # noqa: BLE001 - the user's expression failed: one line
            raise UsageError(f"{what}: {type(exc).__name__}: {one_line(exc, 160)}") from None

    def _run_args(self, line: str) -> tuple[str, str | None, dict[str, str]]:
        rest, opts = _split_options(line, {"--experiment", "--tag"})
        name = rest.strip()
        if not name:
            raise UsageError("usage: %track_run NAME [--experiment E] [--tag K=V ...]")
        tags = {}
        for kv in opts.get("--tag", []):
            k, eq, v = kv.partition("=")
            if not eq or not k:
                raise UsageError(f"--tag takes K=V, got {one_line(kv, 60)!r}")
            tags[k] = v
        experiment = opts.get("--experiment", [None])[-1]
        return name, experiment, tags

    @line_cell_magic
    def track_run(self, line: str, cell: str | None = None) -> Any:
        """Start a tracked run: ``%track_run NAME [--experiment E] [--tag K=V ...]``.

        As a line magic the run stays active until ``%end_run`` or the next ``%track_run``.
        As a cell magic (``%%track_run NAME``) the cell body is one run: finished on
        success, ``failed`` on an exception (which is re-raised).
        """
        name, experiment, tags = self._run_args(line)
        try:
            api.start_run(name, experiment=experiment, tags=tags)
        except NBTraceError as exc:
            raise UsageError(str(exc)) from None
        if cell is None:
            return None
        try:
            result = self._run_body(cell)
        except BaseException:
            api.end_run(status="failed")
            raise
        api.end_run()
        return result

    def _run_body(self, cell: str) -> Any:
        """Execute a cell body in the user namespace; the last expression is the result."""
        code = self.shell.transform_cell(cell)
        tree = ast.parse(code)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        ns = self._ns()
        exec(compile(tree, "<track_run>", "exec"), ns)  # noqa: S102
        if last is not None:
            return eval(compile(last, "<track_run>", "eval"), ns)  # noqa: S307
        return None

    @line_magic
    def end_run(self, line: str) -> None:
        """End the active run: ``%end_run [--status failed]``."""
        rest, opts = _split_options(line, {"--status"})
        if rest.strip():
            raise UsageError("usage: %end_run [--status finished|failed]")
        try:
            api.end_run(status=opts.get("--status", ["finished"])[-1])
        except NBTraceError as exc:
            raise UsageError(str(exc)) from None

    @line_magic
    def log_param(self, line: str) -> None:
        """Log parameters: ``%log_param NAME=EXPR [NAME=EXPR ...]`` or ``%log_param NAME``.

        ``NAME=EXPR`` evaluates EXPR in the notebook, assigns NAME and logs it. When the run is
        being re-executed with an override for NAME, the override is assigned instead: this is
        how a past run is replayed with edited parameters. ``NAME`` alone logs a variable.
        """
        pieces = split_assignments(line)
        if not pieces:
            raise UsageError("usage: %log_param NAME=EXPR [NAME=EXPR ...] or %log_param NAME")
        parsed = [parse_assignment(p) for p in pieces]
        tracker = api.tracker()
        ns = self._ns()
        values: dict[str, Any] = {}
        for name, expr in parsed:
            has, over = tracker.override(name)
            if has:
                values[name] = over
            elif expr is None:
                if name not in ns:
                    raise UsageError(f"name {name!r} is not defined")
                values[name] = ns[name]
            else:
                values[name] = self._eval(expr, f"param {name}")
        try:
            for name, value in values.items():
                ns[name] = tracker.log_param(name, value)
        except NBTraceError as exc:
            raise UsageError(str(exc)) from None

    @line_magic
    def log_metric(self, line: str) -> None:
        """Log metrics: ``%log_metric NAME=EXPR [NAME=EXPR ...] [--step N]``."""
        head, step_expr = _step_expr(line)
        pieces = split_assignments(head)
        if not pieces:
            raise UsageError("usage: %log_metric NAME=EXPR [NAME=EXPR ...] [--step N]")
        step = self._eval(step_expr, "--step") if step_expr else None
        ns = self._ns()
        values: dict[str, Any] = {}
        for name, expr in (parse_assignment(p) for p in pieces):
            if expr is None:
                if name not in ns:
                    raise UsageError(f"name {name!r} is not defined")
                values[name] = ns[name]
            else:
                values[name] = self._eval(expr, f"metric {name}")
        try:
            api.log_metrics(values, step=step)
        except NBTraceError as exc:
            raise UsageError(str(exc)) from None


class CellEvents:
    """Feeds IPython's cell events to the tracker."""

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def pre_run_cell(self, info: Any) -> None:
        try:
            t = api.tracker()
            if t.capturing_outputs:
                wrap_streams(t)
            t.cell_started(
                info.raw_cell, getattr(info, "cell_id", None), _current_count(self.shell, False)
            )
        except NBTraceError as exc:
            print(f"nbtrace: {exc}")

    def post_run_cell(self, result: Any) -> None:
        try:
            api.tracker().cell_finished(error=not result.success)
        except NBTraceError as exc:
            print(f"nbtrace: {exc}")


_events: CellEvents | None = None


def _current_count(shell: Any, stored: bool) -> int | None:
    """The running cell's execution count, from the input history.

    Why not ``shell.execution_count``: ipykernel 7 increments it before ``pre_run_cell``
    while IPython's terminal does not. The history holds ``['', cell 1, ...]``; the running
    cell is already stored (``stored``) once its code executes, not yet at ``pre_run_cell``.
    """
    hist = getattr(shell.history_manager, "input_hist_raw", None)
    if hist is None:
        return None
    return len(hist) - 1 if stored else len(hist)


def load(shell: Any) -> None:
    """Register magics and events; record the cells that ran before loading."""
    global _events
    hist = list(getattr(shell.history_manager, "input_hist_raw", []) or [])
    try:
        # Fresh only when this is the kernel's first cell: later, random generators may
        # already carry the user's own seeds or draws (then they are left alone).
        tracker = api.tracker(fresh=len(hist) <= 2)
    except NBTraceError as exc:
        raise UsageError(f"nbtrace cannot start: {exc}") from None
    tracker.extension_loaded = True
    shell.register_magics(TrackMagics)
    shell.set_custom_exc((NBTraceError,), _show_nbtrace_error)
    if _events is None:
        _events = CellEvents(shell)
        # input_hist_raw[0] is empty; the last entry is the cell running %load_ext now.
        earlier = [(i, src) for i, src in enumerate(hist[1:-1], start=1)]
        tracker.record_history(earlier)
        current = hist[-1] if len(hist) > 1 else "%load_ext nbtrace"
        tracker.cell_started(current, None, _current_count(shell, True))
        tracker.warn_credentials([src for _, src in earlier] + [current])
        shell.events.register("pre_run_cell", _events.pre_run_cell)
        shell.events.register("post_run_cell", _events.post_run_cell)
        tracker.capturing_outputs = install_output_hooks(shell, tracker)


def wrap_streams(tracker: Any) -> bool:
    """Shadow ``write`` of ipykernel's stdout/stderr with one that also feeds the tracker.

    Called at every cell's start: IPython 9 wraps ``write`` itself for the span of each cell
    and puts back what it found, which drops a wrapper installed in an earlier cell.
    """
    import sys

    installed = False
    for name, stream in (("stdout", sys.stdout), ("stderr", sys.stderr)):
        write = getattr(stream, "write", None)
        if write is None or not hasattr(stream, "session"):
            continue
        if getattr(write, "_nbtrace", False):
            installed = True
            continue

        def hooked(text: Any, *args: Any, _write: Any = write, _name: str = name) -> Any:
            if isinstance(text, str):
                tracker.output_stream(_name, text)
            return _write(text, *args)

        hooked._nbtrace = True  # type: ignore[attr-defined]
        try:
            stream.write = hooked
            installed = True
        except (AttributeError, TypeError):
            pass
    return installed


def install_output_hooks(shell: Any, tracker: Any) -> bool:
    """Feed what cells display to the tracker: stream writes, display_data, execute_result.

    Each hook is an append (no formatting or hashing on the user's thread). Instance
    attributes shadow the methods, so unloading can restore them; False when the shell has
    neither an ipykernel stream nor a display publisher (then no outputs are recorded, which
    the verdict treats as unknown, not empty).
    """
    installed = wrap_streams(tracker)
    pub = getattr(shell, "display_pub", None)
    if pub is not None and not getattr(pub.publish, "_nbtrace", False):
        original = pub.publish

        def publish(data: Any, *args: Any, **kwargs: Any) -> Any:
            tracker.output_data(data if isinstance(data, dict) else {})
            return original(data, *args, **kwargs)

        publish._nbtrace = True  # type: ignore[attr-defined]
        pub.publish = publish
        installed = True
    hook = getattr(shell, "displayhook", None)
    wfd = getattr(hook, "write_format_data", None)
    if wfd is not None and not getattr(wfd, "_nbtrace", False):

        def write_format_data(format_dict: Any, md_dict: Any = None) -> Any:
            tracker.output_data(format_dict if isinstance(format_dict, dict) else {})
            return wfd(format_dict, md_dict)

        write_format_data._nbtrace = True  # type: ignore[attr-defined]
        hook.write_format_data = write_format_data
    return installed


def _show_nbtrace_error(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
) -> None:
    """Show an nbtrace error from the Python API as one line, like a ``UsageError``."""
    shell._showtraceback(etype, value, [f"{etype.__name__}: {one_line(value, 500)}"])


def unload(shell: Any) -> None:
    """Unregister events and write everything pending."""
    global _events
    shell.set_custom_exc((), None)
    if _events is not None:
        for name in ("pre_run_cell", "post_run_cell"):
            try:
                shell.events.unregister(name, getattr(_events, name))
            except ValueError:
                pass
        _events = None
    api.tracker().stop_outputs()
    api.flush()
