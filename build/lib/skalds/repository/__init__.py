"""Seed path ``skalds.repository.repository``: ``TaskRepository``."""
