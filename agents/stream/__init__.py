"""The Faust agents: thin loops of parse → pure domain logic → send.

Each module has one ``register(ctx, ...)`` taking the :class:`~.context.StreamContext` and exactly
the services it uses; the composition root (``streams/app.py``) calls them.

- ``validate``: raw input → validated events, or the DLQ
- ``detect``:   events → threats, analysed events, the packages table
- ``enrich``:   events → registry metadata → content findings → threats (opt-in)
- ``sink``:     analysed events / threats → every configured :class:`Sink`
"""
