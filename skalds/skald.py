"""Seed path ``skalds.skald``: ``Skald``, the seed's name of :class:`skalds.app.Skalds`."""

from skalds.app import Skald, Skalds

__all__ = ["Skald", "Skalds"]
