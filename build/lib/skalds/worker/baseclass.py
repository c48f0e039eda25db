"""``BaseTaskWorker``: the class users subclass, with the seed's decorated hooks.

A worker goes through ``initialize(data)`` then the hooks marked ``run_before_handler``,
``run_main_handler`` and ``run_after_handler`` in that order; ``release_handler`` runs last
whatever happened; ``update_event_handler`` receives new attachments while the task runs;
``error_handler`` sees the exception that ended it. The same class runs alone
(``w.initialize(data); w.start()``, as in the seed) or supervised by a Skalds node.
"""

from __future__ import annotations

import logging
import threading
import time
import typing
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from skalds.errors import ConfigError
from skalds.worker.protocol import StopCause

logger = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])

_HOOK_ATTR = "__skalds_hook__"
HOOKS = ("before", "main", "after", "release", "update", "error")


def _marker(kind: str) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        setattr(fn, _HOOK_ATTR, kind)
        return fn

    mark.__name__ = f"run_{kind}_handler"
    return mark


run_before_handler = _marker("before")
run_before_handler.__doc__ = "Mark the method that prepares the task (runs once, before main)."
run_main_handler = _marker("main")
run_main_handler.__doc__ = "Mark the task's main loop. Returning from it finishes the task."
run_after_handler = _marker("after")
run_after_handler.__doc__ = "Mark the method that runs after main returned normally."
release_handler = _marker("release")
release_handler.__doc__ = "Mark the clean-up method; it runs last whether the task finished, failed or was cancelled."
update_event_handler = _marker("update")
update_event_handler.__doc__ = "Mark the method that receives new, validated attachments while the task runs."
error_handler = _marker("error")
error_handler.__doc__ = "Mark the method called with the exception that ended the task."


class TaskStopped(BaseException):
    """Raised inside the worker's main thread when it must stop now (SIGTERM after a
    cancel's grace period). A ``BaseException`` so that ``except Exception`` in user code
    does not swallow it."""


class WorkerControl:
    """The flags and reporters a worker shares with whatever runs it.

    Standalone runs use this default; the process runtime passes one wired to its pipe.
    """

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self.running_event = threading.Event()  # set = not paused
        self.running_event.set()
        self.stop_cause: StopCause | None = None
        self.progress: float | None = None
        self.message: str | None = None

    def request_stop(self, cause: StopCause) -> None:
        """Set the stop flag (and end any pause), remembering the first reason."""
        if self.stop_cause is None:
            self.stop_cause = cause
        self.stop_event.set()
        self.running_event.set()

    def report(self, progress: float | None, message: str | None) -> None:
        """Keep the latest progress; the runtime sends it with the next heartbeat."""
        self.progress = progress
        self.message = message


class BaseTaskWorker(Generic[T]):
    """Base of every task worker. ``T`` is the pydantic model of the task's attachments."""

    #: Filled per subclass from its hooks; see :meth:`__init_subclass__`.
    _hooks: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        hooks: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                kind = getattr(value, _HOOK_ATTR, None)
                if kind is not None:
                    hooks[kind] = name
        cls._hooks = hooks

    def __init__(self) -> None:
        #: Set by the node that runs the task: its id, the epoch of this run (it grows each
        #: time the task is placed), the node's id and how many retries the task consumed.
        self.task_id: str | None = None
        self.epoch: int = 0
        self.node_id: str | None = None
        self.attempt: int = 0
        self.data: T | None = None
        self._control = WorkerControl()

    # ---- what users override -------------------------------------------------------
    def initialize(self, data: T) -> None:
        """Take the task's attachments. The default keeps them as ``self.data``."""
        self.data = data

    # ---- what users call from their hooks ------------------------------------------
    def should_stop(self) -> bool:
        """True once the task was cancelled (or the node shuts down): leave main soon."""
        return self._control.stop_event.is_set()

    def is_paused(self) -> bool:
        """True while the task is paused."""
        return not self._control.running_event.is_set()

    def wait_if_paused(self, timeout_s: float | None = None) -> bool:
        """Block while the task is paused (cooperative pause). Returns False if the task
        must stop, True when it may go on."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self._control.running_event.is_set() and not self.should_stop():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            self._control.running_event.wait(0.2 if left is None else min(0.2, left))
        return not self.should_stop()

    def sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once on cancel. Returns False if the task
        must stop."""
        return not self._control.stop_event.wait(seconds)

    def report_progress(self, progress: float | None = None, message: str | None = None) -> None:
        """Publish progress (a fraction 0..1, or None) and a short status message; it
        reaches the API with the next heartbeat."""
        self._control.report(progress, message)

    # ---- plumbing ------------------------------------------------------------------
    @classmethod
    def data_model(cls) -> type[BaseModel]:
        """The attachments model ``T`` this class was declared with."""
        for klass in cls.__mro__:
            for base in getattr(klass, "__orig_bases__", ()):
                if typing.get_origin(base) is BaseTaskWorker:
                    (arg,) = typing.get_args(base)
                    if isinstance(arg, type) and issubclass(arg, BaseModel):
                        return arg
        raise ConfigError(f"{cls.__qualname__} must subclass BaseTaskWorker[SomePydanticModel]")

    def call_hook(self, kind: str, *args: Any) -> bool:
        """Call the method marked with hook ``kind``; False if the class has none."""
        name = self._hooks.get(kind)
        if name is None:
            return False
        getattr(self, name)(*args)
        return True

    def apply_update(self, attachments: dict[str, Any] | BaseModel) -> BaseModel:
        """Validate new attachments against ``T`` and hand them to the update handler."""
        data = attachments if isinstance(attachments, BaseModel) else self.data_model().model_validate(attachments)
        self.call_hook("update", data)
        return data

    def run_lifecycle(self) -> None:
        """before → main → after, then release; the error hook sees what was raised."""
        try:
            self.call_hook("before")
            self.call_hook("main")
            self.call_hook("after")
        except BaseException as exc:
            if not isinstance(exc, (TaskStopped, KeyboardInterrupt)):
                try:
                    self.call_hook("error", exc)
                except Exception:
                    logger.exception("error handler of %s failed", type(self).__name__)
            raise
        finally:
            self.call_hook("release")

    def start(self) -> None:
        """Run this worker in the current process until main returns, as the seed did.
        Ctrl-C stops it and still runs the release handler."""
        if not logging.getLogger().handlers:
            from skalds.utils.logging import configure_logging

            configure_logging("INFO")
        try:
            self.run_lifecycle()
        except KeyboardInterrupt:
            self._control.request_stop(StopCause.REQUESTED)
            logger.info("%s interrupted", type(self).__name__)
