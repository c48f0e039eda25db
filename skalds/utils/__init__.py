"""Seed-compatible helpers."""
