"""Every topic typostream reads or writes, declared in one place.

Topics are created explicitly with the configured partition count before a worker starts:
brokers that auto-create (Tansu does, with 4 partitions) would otherwise pick their own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from typostream.agents.stream.context import Topics
from typostream.streams.codecs import CODEC_NAME
from typostream.streams.config import Settings

PACKAGES_TABLE = "packages"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str]


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """The input, internal, output and DLQ topics, plus the packages table's changelog."""
    n = settings.partitions
    plain: dict[str, str] = {}
    return [
        TopicSpec(settings.topic_input, n, plain),
        # No longer written (validation and detection run in one agent); still created, so a consumer
        # of an older version's topic finds it.
        TopicSpec(settings.topic_events, n, plain),
        TopicSpec(settings.topic_analysed, n, plain),
        TopicSpec(settings.topic_threats, n, plain),
        TopicSpec(settings.topic_dlq, n, plain),
        TopicSpec(changelog_topic(settings), n, {"cleanup.policy": "compact"}),
    ]


def changelog_topic(settings: Settings) -> str:
    return f"{settings.app_id}-{PACKAGES_TABLE}-changelog"


async def ensure_topics(settings: Settings, timeout_s: float = 15.0) -> list[str]:
    """Create missing topics; return the names created. Existing topics are left alone."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000)
    await asyncio.wait_for(admin.start(), timeout_s)
    created: list[str] = []
    try:
        existing = set(await admin.list_topics())
        for spec in topic_specs(settings):
            if spec.name in existing:
                continue
            new = NewTopic(spec.name, spec.partitions, settings.replication_factor, topic_configs=spec.config)
            try:
                await admin.create_topics([new])
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    return created


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    def topic(name: str, values: str) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer=values, partitions=settings.partitions)

    return Topics(
        # Raw bytes: the detect agent must see exactly what was published to dead-letter it intact.
        input=topic(settings.topic_input, "raw"),
        # JSON, read as raw bytes and decoded by the agents (agents/stream/batches.py json_value);
        # the agents produce them with orjson (agents/stream/outbox.py).
        analysed=topic(settings.topic_analysed, "raw"),
        threats=topic(settings.topic_threats, "raw"),
        dlq=topic(settings.topic_dlq, CODEC_NAME),
    )
