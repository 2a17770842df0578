"""IPython adapter: magics and cell events, translated to :class:`~nbtrace.tracker.Tracker`.

Why thin: everything here parses a line, calls the tracker and turns an
:class:`~nbtrace.errors.NBTraceError` into IPython's ``UsageError`` (one red line, no
traceback). The docstrings are the ``%magic?`` help; ``%track_run`` and ``%end_run`` declare
their options with IPython's ``magic_arguments``, which adds them to that help. The
``NAME=EXPR`` magics (``%log_param``, ``%log_metric``) parse Python expressions, which an
argument parser cannot split, so they keep a tokenizer of their own.
"""

from __future__ import annotations

import argparse
import ast
import io
import logging
import re
import shlex
import tokenize
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from . import api
from .errors import NBTraceError, one_line

_IDENT_ERR = "expected NAME=EXPR or NAME"
_TRACK_RUN_USAGE = "usage: %track_run NAME [--experiment E] [--tag K=V ...] [--nested]"
_END_RUN_USAGE = "usage: %end_run [--status finished|failed]"

log = logging.getLogger(__name__)


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


def parse_options(magic: Any, line: str, usage: str) -> argparse.Namespace:
    """``line`` parsed by ``magic``'s ``magic_arguments`` parser; one-line ``UsageError`` errors.

    Words are split like a shell's (quotes group), options and words may come in any order,
    and an option is never abbreviated. The messages are nbtrace's own: ``unknown option
    --x (known: ...)``, ``--opt needs a value``, else ``usage``.
    """
    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f"cannot parse the line: {exc}") from None
    parser = magic.parser
    try:
        args, extra = parser.parse_known_intermixed_args(words)
    except UsageError as exc:
        needs = re.match(r"argument (\S+): expected one argument", str(exc))
        raise UsageError(f"{needs.group(1)} needs a value" if needs else usage) from None
    if extra and extra[0].startswith("-"):
        known = sorted(o for a in parser._actions for o in a.option_strings)
        raise UsageError(f"unknown option {one_line(extra[0], 40)} (known: {', '.join(known)})")
    if extra:
        raise UsageError(usage)
    return args


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

    def _run_args(self, line: str) -> tuple[str, str | None, dict[str, str], bool]:
        args = parse_options(self.track_run, line, _TRACK_RUN_USAGE)
        name = " ".join(args.name).strip()
        if not name:
            raise UsageError(_TRACK_RUN_USAGE)
        tags = {}
        for kv in args.tag:
            k, eq, v = kv.partition("=")
            if not eq or not k:
                raise UsageError(f"--tag takes K=V, got {one_line(kv, 60)!r}")
            tags[k] = v
        return name, args.experiment, tags, args.nested

    @magic_arguments()
    @argument("name", nargs="*", metavar="NAME", help="the run's name (words are joined)")
    @argument("--experiment", metavar="E", help="the experiment the run belongs to")
    @argument("--tag", action="append", default=[], metavar="K=V",
              help="a tag of the run (repeat for more)")
    @argument("--nested", action="store_true",
              help="start the run inside the active one, which stays open")
    @line_cell_magic
    def track_run(self, line: str, cell: str | None = None) -> Any:
        """Start a tracked run: ``%track_run NAME [--experiment E] [--tag K=V ...] [--nested]``.

        As a line magic the run stays active until ``%end_run`` or the next ``%track_run``.
        As a cell magic (``%%track_run NAME``) the cell body is one run: finished on
        success, ``failed`` on an exception (which is re-raised). ``--nested`` starts the run
        inside the active one (which stays open and is active again once this one ends).
        """
        name, experiment, tags, nested = self._run_args(line)
        try:
            api.start_run(name, experiment=experiment, tags=tags, nested=nested)
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

    @magic_arguments()
    @argument("--status", default="finished", metavar="finished|failed",
              help="how the run ended (default: finished)")
    @line_magic
    def end_run(self, line: str) -> None:
        """End the active run: ``%end_run [--status failed]``."""
        args = parse_options(self.end_run, line, _END_RUN_USAGE)
        try:
            api.end_run(status=args.status)
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


# An option is written out in full: ``--exp`` is an unknown option, not ``--experiment``.
for _magic in (TrackMagics.track_run, TrackMagics.end_run):
    _magic.parser.allow_abbrev = False


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
    install_error_display(shell)
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
        except (AttributeError, TypeError) as exc:  # a stream that takes no attribute
            log.debug("nbtrace: cannot hook %s.write: %s", name, exc)
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


#: The shell's custom exception handling before ours (``custom_exceptions``, ``CustomTB``),
#: and ``CustomTB`` once ours is installed (to know at unload whether it is still ours).
_previous_exc: tuple[tuple[type, ...], Any] | None = None
_our_exc: Any = None


def install_error_display(shell: Any) -> None:
    """Show :class:`NBTraceError` from the Python API as one line, keeping the shell's own.

    Why chained: IPython holds one custom exception handler per shell
    (``set_custom_exc``); another extension's (or the user's) must keep handling its
    exceptions while nbtrace is loaded, and get back the shell to itself when it unloads.
    """
    global _previous_exc, _our_exc
    if _our_exc is not None and shell.CustomTB is _our_exc:
        return  # loaded again: ours is in place already
    types = tuple(getattr(shell, "custom_exceptions", ()) or ())
    previous = getattr(shell, "CustomTB", None) if types else None

    def handler(shell: Any, etype: type, value: BaseException, tb: Any,
                tb_offset: Any = None) -> Any:
        if previous is None or issubclass(etype, NBTraceError):
            return _show_nbtrace_error(shell, etype, value, tb, tb_offset)
        return previous(etype, value, tb, tb_offset=tb_offset)

    _previous_exc = (types, previous)
    shell.set_custom_exc(types + (NBTraceError,), handler)
    _our_exc = shell.CustomTB


def remove_error_display(shell: Any) -> None:
    """Give the shell back the custom exception handling it had before ours.

    When something replaced ours meanwhile, its handler stays.
    """
    global _previous_exc, _our_exc
    if _our_exc is not None and shell.CustomTB is _our_exc and _previous_exc is not None:
        types, previous = _previous_exc
        if previous is None:
            shell.set_custom_exc((), None)
        else:  # as it was: set_custom_exc would wrap the already wrapped handler again
            shell.custom_exceptions, shell.CustomTB = types, previous
    _previous_exc = _our_exc = None


def unload(shell: Any) -> None:
    """Unregister events, give back the shell's exception handling, write everything pending."""
    global _events
    remove_error_display(shell)
    if _events is not None:
        for name in ("pre_run_cell", "post_run_cell"):
            try:
                shell.events.unregister(name, getattr(_events, name))
            except ValueError:  # not registered (another unload did it)
                log.debug("nbtrace: %s was not registered", name)
        _events = None
    api.tracker().stop_outputs()
    api.flush()
