"""Seed-compatible client objects (``KafkaProxy``, ``MongoProxy``), built on the adapters."""
