"""Topic layout (names, partition counts, configs) of a broker: kept across a memory broker restart.

A memory broker comes back without topics, and Tansu then *accepts* produce requests for the
topics that vanished (a client with cached metadata keeps sending) without serving those records
later; the first produce after the topic is created again even fails with ``UnknownError`` on
the offsets those phantom batches took. Recreating the layout right after the restart closes that
window: the records are still gone, the topics are not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TopicLayout:
    name: str
    partitions: int
    configs: dict[str, str]


async def snapshot(bootstrap: str) -> list[TopicLayout]:
    """Every topic with its partition count and explicitly set configs."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(_TIMEOUT_S * 1000))
    await asyncio.wait_for(admin.start(), _TIMEOUT_S)
    try:
        names = sorted(await admin.list_topics())
        if not names:
            return []
        described = {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(names)}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        configs: dict[str, dict[str, str]] = {name: {} for name in names}
        for response in await admin.describe_configs(resources):
            for error_code, _msg, _type, name, entries in response.resources:
                if error_code == 0 and name in configs:
                    configs[name] = {e[0]: e[1] for e in entries if e[1] is not None and not e[2]}
        return [
            TopicLayout(name, described.get(name, 1), configs[name]) for name in names if described.get(name)
        ]
    finally:
        await admin.close()


async def restore(bootstrap: str, layout: list[TopicLayout]) -> list[str]:
    """Create the topics of ``layout`` that are missing; return their names."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(_TIMEOUT_S * 1000))
    await asyncio.wait_for(admin.start(), _TIMEOUT_S)
    created = []
    try:
        existing = set(await admin.list_topics())
        for topic in layout:
            if topic.name in existing:
                continue
            try:
                await admin.create_topics(
                    [NewTopic(topic.name, topic.partitions, 1, topic_configs=topic.configs)]
                )
                created.append(topic.name)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
    return created
