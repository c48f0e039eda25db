"""Seed path for ``SkaldConfig``."""
