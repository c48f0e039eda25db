"""Topics of the Kafka event bus: created on demand, remembered, re-created when lost."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from skalds.backends.kafka._client import client_config
from skalds.errors import BackendUnavailable, ConfigError

if TYPE_CHECKING:
    from skalds.backends.kafka.event_bus import KafkaSettings

logger = logging.getLogger(__name__)

_LEGAL_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")
_ADMIN_TIMEOUT_S = 10.0


class TopicRegistry:
    """Creates the bus's topics with the configured partitions and replication, once each.

    Thread-safe; creation is serialized, which is fine because it happens once per topic.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._admin = AdminClient(client_config(settings))
        self._lock = threading.Lock()
        self._known: set[str] = set()  # full names that exist, as far as we know
        self._lost: set[str] = set()  # full names we knew, then saw missing

    def full_name(self, topic: str) -> str:
        """The broker's name of ``topic``: the prefix plus the name.

        Raises:
            ConfigError: the result is not a legal Kafka topic name.
        """
        name = f"{self._settings.topic_prefix}{topic}"
        if not _LEGAL_NAME.fullmatch(name) or name in (".", ".."):
            raise ConfigError(
                f"kafka topic {name!r} (prefix + topic) is not a legal Kafka topic name: "
                "use 1-249 of A-Z a-z 0-9 . _ -",
                key="kafka.topic_prefix",
            )
        return name

    def known(self) -> set[str]:
        """The full names this registry created or found existing."""
        with self._lock:
            return set(self._known)

    def ensure(self, names: Iterable[str]) -> set[str]:
        """Make sure the topics (full names) exist; blocks up to ~10 s on the broker.

        Returns:
            The names that were known before, then lost, and have now been re-created (the
            broker lost its data): producers may hold stale state about them.

        Raises:
            BackendUnavailable: the broker cannot be reached or refused to create a topic.
        """
        with self._lock:
            missing = sorted(set(names) - self._known)
            if not missing:
                return set()
            specs = [NewTopic(n, self._settings.partitions, self._settings.replication_factor) for n in missing]
            try:
                futures = self._admin.create_topics(
                    specs, operation_timeout=_ADMIN_TIMEOUT_S, request_timeout=_ADMIN_TIMEOUT_S
                )
            except KafkaException as exc:
                raise BackendUnavailable(f"cannot create Kafka topics {missing}: {exc}") from exc
            recreated = set()
            for name, future in futures.items():
                try:
                    future.result(timeout=_ADMIN_TIMEOUT_S + 5)
                    logger.info("created Kafka topic %s (%d partitions)", name, self._settings.partitions)
                    if name in self._lost:
                        recreated.add(name)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise BackendUnavailable(f"cannot create Kafka topic {name}: {exc}") from exc
                except TimeoutError as exc:
                    raise BackendUnavailable(f"cannot create Kafka topic {name}: no answer") from exc
                self._known.add(name)
                self._lost.discard(name)
            return recreated

    def delete(self, names: Iterable[str]) -> None:
        """Delete topics (full names); blocks up to ~10 s on the broker. A topic that does not
        exist is not an error.

        Raises:
            BackendUnavailable: the broker cannot be reached or refused to delete a topic.
        """
        with self._lock:
            wanted = sorted(set(names))
            if not wanted:
                return
            try:
                futures = self._admin.delete_topics(
                    wanted, operation_timeout=_ADMIN_TIMEOUT_S, request_timeout=_ADMIN_TIMEOUT_S
                )
            except KafkaException as exc:
                raise BackendUnavailable(f"cannot delete Kafka topics {wanted}: {exc}") from exc
            for name, future in futures.items():
                try:
                    future.result(timeout=_ADMIN_TIMEOUT_S + 5)
                    logger.info("deleted Kafka topic %s", name)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                        raise BackendUnavailable(f"cannot delete Kafka topic {name}: {exc}") from exc
                except TimeoutError as exc:
                    raise BackendUnavailable(f"cannot delete Kafka topic {name}: no answer") from exc
                self._known.discard(name)

    def forget(self, names: Iterable[str]) -> set[str]:
        """Mark topics (full names) as missing, so the next ``ensure`` creates them again.

        Returns:
            The names that had been known.
        """
        with self._lock:
            dropped = self._known & set(names)
            self._known -= dropped
            self._lost |= dropped
            return dropped

    def existing(self, timeout_s: float) -> set[str]:
        """The topic names the broker reports right now.

        Raises:
            BackendUnavailable: no answer within ``timeout_s``.
        """
        try:
            return set(self._admin.list_topics(timeout=timeout_s).topics)
        except KafkaException as exc:
            raise BackendUnavailable(f"Kafka metadata request failed: {exc}") from exc

    def poll(self) -> None:
        """Serve the admin client's log callbacks (call now and then)."""
        self._admin.poll(0)
