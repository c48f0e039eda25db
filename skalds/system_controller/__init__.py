"""Seed path ``skalds.system_controller``: ``SystemController``, the seed's controller process."""

from skalds.system_controller.controller import SystemController

__all__ = ["SystemController"]
