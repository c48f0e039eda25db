"""Seed path ``skalds.config._enum``: the enums of the seed's configuration classes.

Values are the seed's. Unlike the seed, every enum here also takes a value or a member name in
any case (``"monitor"``, ``"Edge"``, ``"least_tasks"``): older seed versions and its docs used
lowercase values, and a mode from ``.env`` should not silently mean nothing.
"""

from __future__ import annotations

import enum
from typing import Any


class _SeedEnum(enum.StrEnum):
    """A string enum that matches values and member names case-insensitively."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            folded = value.strip().casefold()
            for member in cls:
                if folded in (member.value.casefold(), member.name.casefold()):
                    return member
        return None

    @classmethod
    def list(cls) -> list[str]:
        """The values, as the seed's enums offered them."""
        return [member.value for member in cls]


class LogLevelEnum(_SeedEnum):
    """Log levels by the seed's (loguru's) names; TRACE logs as DEBUG, SUCCESS as INFO."""

    TRACE = "TRACE"
    DEBUG = "DEBUG"
    INFO = "INFO"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class SkaldEnvEnum(_SeedEnum):
    """The seed's deployment environment (it only changed the detail of its 500 answers)."""

    DEV = "DEV"
    PRODUCTION = "PRODUCTION"


class SkaldModeEnum(_SeedEnum):
    """What a Skald runs: assigned tasks (node), its YAML's tasks (edge), or the YAML's first
    task in this process (single_process)."""

    EDGE = "edge"
    NODE = "node"
    SINGLE_PROCESS = "single_process"


class SystemControllerModeEnum(_SeedEnum):
    """The seed's controller modes (API only / + monitor / + dispatcher). Skalds' controller
    always runs all three parts, whatever the mode says."""

    CONTROLLER = "CONTROLLER"
    MONITOR = "MONITOR"
    DISPATCHER = "DISPATCHER"


class DispatcherStrategyEnum(_SeedEnum):
    """The seed's dispatch strategies, each mapped onto a policy of ``conf/dispatch/``."""

    LEAST_TASKS = "LEAST_TASKS"
    ROUND_ROBIN = "ROUND_ROBIN"
    RANDOM = "RANDOM"

    @property
    def policy(self) -> str:
        """The name of the Skalds dispatch policy (``dispatch=<policy>``) this strategy means."""
        return {"LEAST_TASKS": "least_loaded", "ROUND_ROBIN": "round_robin", "RANDOM": "random"}[self.value]


__all__ = ["DispatcherStrategyEnum", "LogLevelEnum", "SkaldEnvEnum", "SkaldModeEnum", "SystemControllerModeEnum"]
