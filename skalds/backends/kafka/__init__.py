"""Kafka backend: the event bus on a Kafka-protocol cluster (confluent-kafka)."""

from skalds.backends.kafka._topics import TopicRegistry
from skalds.backends.kafka.event_bus import KafkaEventBus, KafkaSettings

__all__ = ["KafkaEventBus", "KafkaSettings", "TopicRegistry"]
