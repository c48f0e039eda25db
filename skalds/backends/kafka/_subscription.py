"""One subscription of the Kafka event bus: a consumer in a group and the thread that polls it."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from skalds.backends.kafka._client import Throttle, client_config
from skalds.errors import BackendUnavailable, ConfigError, SkaldsError
from skalds.ports.event_bus import Event, Handler, Subscription

if TYPE_CHECKING:
    from skalds.backends.kafka.event_bus import KafkaSettings

logger = logging.getLogger(__name__)

_POLL_S = 0.1  # how often the thread checks for close(); a message wakes it at once
_RECOVER_INTERVAL_S = 2.0  # at most this often: ask the bus to re-create missing topics
_MISSING_TOPIC_CODES = (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC)


class KafkaSubscription(Subscription):
    """A consumer of ``topics`` in consumer group ``group`` whose thread hands events to
    ``handler`` one at a time and commits each after its handler returned (at-least-once).

    Args:
        settings: the bus's settings.
        topics: full (prefixed) topic name -> the name the caller subscribed with.
        group: the caller's group name (the prefix is added here).
        handler: called on this subscription's thread.
        recover_topics: called (on this thread) when the broker says a topic is missing; it
            re-creates the topics. May raise ``SkaldsError``.
        on_closed: called once the subscription closed, to forget it.
        sole: the group's only member: take every partition directly, with no group join
            (commits still go to the group, so a restart resumes where it left off).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Mapping[str, str],
        group: str,
        handler: Handler,
        recover_topics: Callable[[], None],
        on_closed: Callable[[KafkaSubscription], None],
        sole: bool = False,
    ) -> None:
        self.group = group
        self.sole = sole
        self._topics = dict(topics)
        self._handler = handler
        self._recover_topics = recover_topics
        self._on_closed = on_closed
        self._session_timeout_s = settings.session_timeout_ms / 1000
        self._throttle = Throttle(logger)
        self._next_recover_at = 0.0
        self._assigned = threading.Event()
        self._stop = threading.Event()
        config = {
            **client_config(settings),
            "group.id": f"{settings.topic_prefix}{group}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "session.timeout.ms": settings.session_timeout_ms,
            "heartbeat.interval.ms": max(100, settings.session_timeout_ms // 3),
            "fetch.wait.max.ms": settings.fetch_wait_max_ms,
            "error_cb": self._on_client_error,
        }
        try:
            self._consumer = Consumer(config)
        except KafkaException as exc:
            raise ConfigError(f"invalid Kafka consumer settings: {exc}", key="kafka") from exc
        self._thread = threading.Thread(target=self._run, name=f"kafka-{group}", daemon=True)

    def start(self, timeout_s: float) -> None:
        """Join the group and start the thread; return once partitions are assigned.

        Raises:
            BackendUnavailable: no assignment within ``timeout_s`` (the consumer is closed).
        """
        started = time.monotonic()
        try:
            if self.sole:
                # No other member to share with: read every partition, from the group's
                # committed offsets (else the earliest), without a rebalance to wait for.
                self._consumer.assign(self._partitions(timeout_s))
                self._assigned.set()
            else:
                self._consumer.subscribe(list(self._topics), on_assign=self._on_assign, on_revoke=self._on_revoke)
        except (KafkaException, BackendUnavailable) as exc:
            self._consumer.close()
            raise BackendUnavailable(f"cannot subscribe group {self.group} to Kafka: {exc}") from exc
        self._thread.start()
        if not self._assigned.wait(timeout_s):
            self.close()
            raise BackendUnavailable(f"Kafka consumer group {self.group} got no partitions within {timeout_s:.1f}s")
        logger.info(
            "subscribed group %s to %s in %.2fs", self.group, sorted(self._topics.values()), time.monotonic() - started
        )

    def _partitions(self, timeout_s: float) -> list[TopicPartition]:
        """Every partition of the topics, as the cluster's metadata has them (the bus has
        created the topics; a broker that does not list them yet is asked again)."""
        deadline = time.monotonic() + timeout_s
        while True:
            meta = self._consumer.list_topics(timeout=max(0.1, deadline - time.monotonic())).topics
            ready = {t: meta[t] for t in self._topics if t in meta and meta[t].error is None and meta[t].partitions}
            if len(ready) == len(self._topics):
                return [TopicPartition(t, p) for t, info in ready.items() for p in sorted(info.partitions)]
            if time.monotonic() >= deadline:
                raise BackendUnavailable(
                    f"no partitions of {sorted(set(self._topics) - set(ready))} in {timeout_s:.1f}s"
                )
            time.sleep(0.05)

    def close(self) -> None:
        """Stop polling, let a handler call under way end, close the consumer (leaving the
        group). Idempotent; blocks until the thread stopped, unless called by the handler."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            # Closing leaves the group; with the broker gone that waits for librdkafka's timeouts.
            self._thread.join(timeout=max(10.0, 3 * self._session_timeout_s))
            if self._thread.is_alive():
                logger.warning("consumer thread of group %s did not stop in time", self.group)
        self._on_closed(self)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    msg = self._consumer.poll(_POLL_S)
                except (KafkaException, RuntimeError) as exc:  # keep the thread alive: librdkafka reconnects
                    self._throttle.log(logging.WARNING, "poll", "Kafka poll of group %s failed: %s", self.group, exc)
                    self._stop.wait(0.5)
                    continue
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    self._on_message_error(error)
                elif not self._stop.is_set():  # close() means no further deliveries
                    self._deliver(msg)
        finally:
            try:
                self._consumer.close()
            except (KafkaException, RuntimeError) as exc:
                logger.warning("closing the consumer of group %s failed: %s", self.group, exc)
            logger.info("subscription of group %s closed", self.group)

    def _deliver(self, msg: Message) -> None:
        event = self._decode(msg)
        if event is not None:
            try:
                self._handler(event)
            except Exception:  # a bad handler must not stop the subscription; the event counts as handled
                logger.exception("handler of group %s failed on %s key=%s", self.group, event.topic, event.key)
        try:
            self._consumer.commit(message=msg, asynchronous=True)
        except KafkaException as exc:
            # The offset is committed with the next event, or the event comes again: at-least-once.
            self._throttle.log(logging.WARNING, "commit", "commit of group %s failed: %s", self.group, exc)

    def _decode(self, msg: Message) -> Event | None:
        topic = msg.topic() or ""
        try:
            key = (msg.key() or b"").decode()
            value: Any = json.loads(msg.value() or b"null")
        except ValueError:  # includes UnicodeDecodeError
            key, value = "", None
        if not isinstance(value, dict):
            logger.warning(
                "skipping an event that is not a JSON object: %s [%s] offset %s", topic, msg.partition(), msg.offset()
            )
            return None
        return Event(self._topics.get(topic, topic), key, value)

    def _on_message_error(self, error: KafkaError) -> None:
        if error.code() in _MISSING_TOPIC_CODES:
            # The broker lost the topic (deleted, or restarted with empty storage): re-create it
            # so this consumer gets partitions again.
            now = time.monotonic()
            if now < self._next_recover_at:
                return
            self._next_recover_at = now + _RECOVER_INTERVAL_S
            logger.warning("group %s: %s; re-creating its topics", self.group, error.str())
            try:
                self._recover_topics()
            except SkaldsError as exc:
                logger.warning("group %s: cannot re-create topics yet: %s", self.group, exc)
            return
        self._throttle.log(logging.WARNING, f"msg:{error.code()}", "consumer of group %s: %s", self.group, error.str())

    def _on_client_error(self, error: KafkaError) -> None:
        level = logging.ERROR if error.fatal() else logging.WARNING
        self._throttle.log(level, f"client:{error.code()}", "Kafka consumer of group %s: %s", self.group, error.str())

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.debug("group %s assigned %d partitions", self.group, len(partitions))
        self._assigned.set()

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        logger.debug("group %s revoked %d partitions", self.group, len(partitions))
