"""Seed import paths for the records (``skalds.model.task``, ``skalds.model.event``)."""
