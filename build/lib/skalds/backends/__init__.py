"""Adapters behind the ports, and the one place that builds them from config."""
