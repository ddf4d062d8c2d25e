"""The Faust agents: thin loops of parse → pure domain logic → send.

Each module has one ``register(ctx, ...)`` taking the :class:`~.context.StreamContext` and exactly
the services it uses; the composition root (``streams/app.py``) calls them.

- ``detect``:   raw input → validation → detection → threats and analysed events, or the DLQ
- ``packages``: analysed events (keyed by package) → the packages table
- ``enrich``:   analysed events → registry metadata → content findings → threats (opt-in)
- ``sink``:     analysed events / threats → every configured :class:`Sink`

``outbox`` queues a batch's records on the producer and awaits them together; ``dlq`` says what
an agent does with a message it cannot process, and when it cannot even dead-letter one.
"""
