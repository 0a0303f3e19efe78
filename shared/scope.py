"""Which function instance is running: its environment and everything built from it.

In Lambda one process is one function instance and no scope is ever entered: the process scope serves,
and its environment is the process environment (read by ``shared.settings`` only). The local stack and
the tests host every function in one process: they ``host`` each function's scope (its environment
exactly as the template gives it), and its handler then always runs inside it, with its own settings,
clients and built dependencies. In strict mode (the local stack and the tests) code that needs a
function's settings or dependencies outside any function's scope fails at once instead of reading the
process's environment.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from typing import Any, TypeVar

T = TypeVar("T")


class ScopeError(RuntimeError):
    """A function's settings or dependencies were asked for outside any function's scope."""


class FunctionScope:
    """One function instance: kept for the instance's life, entered for each invocation."""

    __slots__ = ("name", "environ", "built", "on_client", "__weakref__")

    def __init__(
        self,
        name: str,
        environ: Mapping[str, str] | None = None,
        *,
        on_client: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.name = name
        #: the function's environment; None: the process's own (the Lambda runtime)
        self.environ = None if environ is None else dict(environ)
        #: settings, clients and dependencies built in this scope, by key
        self.built: dict[Hashable, Any] = {}
        #: called with (service, client) for each AWS client built in this scope (local IAM checks)
        self.on_client = on_client
        _scopes.add(self)

    @contextmanager
    def active(self) -> Iterator[FunctionScope]:
        """Run the body as this function (per thread: concurrent invocations each enter their own)."""
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    def wrap(self, handler: Callable[..., T]) -> Callable[..., T]:
        """``handler`` invoked inside this scope, as the local stack and the tests invoke functions."""

        @wraps(handler)
        def invoke(*args: Any, **kwargs: Any) -> T:
            with self.active():
                return handler(*args, **kwargs)

        return invoke

    def __repr__(self) -> str:
        return f"FunctionScope({self.name!r})"


_active: ContextVar[FunctionScope | None] = ContextVar("lifecycle_function", default=None)
_scopes: weakref.WeakSet[FunctionScope] = weakref.WeakSet()
PROCESS = FunctionScope("process")
_strict = False
#: handler ("package.module.function") -> the scope it runs in; empty in Lambda
_hosted: dict[str, FunctionScope] = {}


def host(handler: str, scope: FunctionScope) -> None:
    """Run the handler named ``handler`` (as the wiring names it) inside ``scope`` from now on."""
    _hosted[handler] = scope


def hosted(handler: str) -> FunctionScope | None:
    return _hosted.get(handler)


def unhost_all() -> None:
    _hosted.clear()


def current() -> FunctionScope:
    """The running function's scope; in strict mode, an error outside every function's scope."""
    scope = _active.get()
    if scope is not None:
        return scope
    if _strict:
        raise ScopeError(
            "a function's settings or dependencies were asked for outside any function scope; "
            "run it as the function does (tests: invoke(handler, event) or function_scope(name))"
        )
    return PROCESS


def current_or_process() -> FunctionScope:
    """The running function's scope, else the process's (tools and test harnesses build clients there)."""
    return _active.get() or PROCESS


def strict(on: bool = True) -> bool:
    """Refuse settings and dependencies outside a function scope (the local stack and the tests).

    Returns the mode it replaces, for a caller that must put it back (a local stack started in a test)."""
    global _strict
    before, _strict = _strict, on
    return before


def per_function(build: Callable[[], T]) -> Callable[[], T]:
    """Like ``functools.cache`` for a factory without arguments, with one value per function scope.

    Built once even when a function's first invocations arrive together (the local stack serves them on
    threads): what it builds may hold the instance's state, such as its rate-limit counts."""
    lock = threading.RLock()

    @wraps(build)
    def cached() -> T:
        built = current().built
        try:
            return built[cached]
        except KeyError:
            with lock:
                if cached not in built:
                    built[cached] = build()
                return built[cached]

    return cached


def reset() -> None:
    """Forget what every scope built (each function instance starts cold)."""
    for scope in list(_scopes):
        scope.built.clear()
