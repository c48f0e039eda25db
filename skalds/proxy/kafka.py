"""Seed path ``skalds.proxy.kafka``: ``KafkaTopic``, ``KafkaConfig``, ``KafkaProxy``, ``KafkaAdmin``.

``KafkaProxy.produce(topic, key, value)`` publishes through the same ``KafkaEventBus`` Skalds
uses, so an event a seed script produces (``TaskEvent(...).model_dump_json()`` on
``task.assign``) is read by the dispatcher like any other.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from skalds.core.events import Topic
from skalds.errors import ValidationFailed


class KafkaTopic:
    """The topic names, as the seed spelled them."""

    TASK_ASSIGN = Topic.TASK_ASSIGN.value
    TASK_CANCEL = Topic.TASK_CANCEL.value
    TASK_UPDATE_ATTACHMENT = Topic.TASK_UPDATE_ATTACHMENT.value
    TASK_WORKER_UPDATE = Topic.TASKWORKER_UPDATE.value
    TASK_CONTROL = Topic.TASK_CONTROL.value


class KafkaConfig:
    """Where Kafka is (the seed's constructor arguments)."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = 9092,
        consume_topic_list: list[str] | None = None,
        consume_group_id: str = "skalds",
        username: str = "",
        password: str = "",
        topic_prefix: str = "",
        security_protocol: str | None = None,
        sasl_mechanism: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.consume_topic_list = consume_topic_list or []
        self.consume_group_id = consume_group_id
        self.username = username
        self.password = password
        self.topic_prefix = topic_prefix
        # Unlike the seed, SASL is never guessed from the host name: say so explicitly.
        self.security_protocol = security_protocol or ("SASL_SSL" if sasl_mechanism else "PLAINTEXT")
        self.sasl_mechanism = sasl_mechanism

    def settings(self) -> Any:
        """The :class:`~skalds.backends.kafka.KafkaSettings` for this config."""
        from skalds.backends.kafka import KafkaSettings

        return KafkaSettings(
            bootstrap_servers=f"{self.host}:{self.port}",
            topic_prefix=self.topic_prefix,
            security_protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            username=self.username or None,
            password=self.password or None,
        )


class KafkaProxy:
    """A Kafka producer with the seed's ``produce`` signature."""

    def __init__(self, kafka_config: KafkaConfig | None = None, is_block: bool = True) -> None:
        from skalds.backends.kafka import KafkaEventBus

        self.config = kafka_config or KafkaConfig()
        self.host, self.port = self.config.host, self.config.port
        self.bus = KafkaEventBus(self.config.settings())

    def produce(self, topic_name: str, key: str, value: str | bytes | dict[str, Any]) -> None:
        """Publish one event. ``value`` is JSON text (as ``model_dump_json()`` gives) or a dict.

        Raises:
            ValidationFailed: ``value`` is not a JSON object.
            BackendUnavailable: the event could not be queued.
        """
        if isinstance(value, bytes | str):
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ValidationFailed(f"value for {topic_name} is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise ValidationFailed(f"value for {topic_name} must be a JSON object")
        self.bus.publish(topic_name, key, value)
        self.bus.flush()

    def close(self) -> None:
        """Flush and close the producer."""
        self.bus.close()


class KafkaAdmin:
    """Create and delete topics (the seed's ``KafkaAdmin``), through the topic registry the
    event bus uses; topic names get ``KafkaConfig.topic_prefix`` as the bus's do. Skalds creates
    the topics it needs by itself, so scripts need this only for topics of their own."""

    def __init__(self, kafka_config: KafkaConfig | None = None) -> None:
        from skalds.backends.kafka import TopicRegistry

        self.config = kafka_config or KafkaConfig()
        self.host, self.port = self.config.host, self.config.port
        self._settings = self.config.settings()
        self._registry = TopicRegistry(self._settings)

    def create_topic(self, topic_name: str, partitions: int = 6, replication_factor: int | None = None) -> None:
        """Create a topic unless it exists (the seed's defaults: 6 partitions, replicas from
        ``KAFKA_REPLICATION_FACTOR``, else 3). Blocks up to ~10 s.

        Raises:
            ConfigError: an illegal topic name, or partitions / replicas below 1.
            BackendUnavailable: the broker cannot be reached or refused.
        """
        from skalds.backends.kafka import TopicRegistry
        from skalds.config.systemconfig import SystemConfig

        replicas = replication_factor if replication_factor is not None else SystemConfig.KAFKA_REPLICATION_FACTOR
        settings = dataclasses.replace(self._settings, partitions=partitions, replication_factor=replicas)
        registry = TopicRegistry(settings)
        registry.ensure([registry.full_name(topic_name)])

    def delete_topic(self, topic_name: str) -> None:
        """Delete a topic (no error if there is none). Blocks up to ~10 s.

        Raises:
            BackendUnavailable: the broker cannot be reached or refused.
        """
        self._registry.delete([self._registry.full_name(topic_name)])

    def disconnect(self) -> None:
        """Kept for the seed's scripts: the admin client holds no connection to close."""
