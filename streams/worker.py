"""Run a worker in this process: create topics, open ClickHouse, start Faust."""

from __future__ import annotations

import asyncio
import gc
import logging
import logging.config
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, NoReturn

import faust
from faust.exceptions import ConsistencyError

from typostream.streams import recovery
from typostream.streams.app import ROLE_ALL, ROLE_DETECT, ROLE_STORE, WorkerApp, build_app, detect_group
from typostream.streams.config import Settings
from typostream.streams.libc import glibc_function
from typostream.streams.topics import ensure_topics

_watch: recovery.WatchState | None = None
log = logging.getLogger("typostream.worker")
ADOPT_RETRY_S = 15.0  # > the group session timeout (broker_session_timeout = 4 s)

LOG_FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s pid=%(process)d msg=%(message)r"


def logging_config(level: str) -> dict[str, Any]:
    """Structured (key=value) lines on stderr, quiet by default (warnings and errors only).

    Kafka client chatter is rate-limited (``KafkaNoiseFilter``): while the broker is down aiokafka
    logs ~80 connection errors a second.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"kv": {"format": LOG_FORMAT}},
        "filters": {"kafka_noise": {"()": f"{__name__}.KafkaNoiseFilter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "kv",
                "level": level.upper(),
                "filters": ["kafka_noise"],
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


class KafkaNoiseFilter(logging.Filter):
    """At most one line per ``interval_s`` from the Kafka client libraries (aiokafka, Faust's transport).

    The line that passes after a quiet spell tells how many were suppressed before it, so a broker
    outage reads as one line every few seconds instead of a flood. Only WARNING and ERROR lines
    are limited: CRITICAL, INFO and DEBUG always pass, and so does every other logger.
    """

    PREFIXES = ("aiokafka", "faust.transport", "typostream.streams.transport")

    def __init__(self, interval_s: float = 5.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not logging.WARNING <= record.levelno < logging.CRITICAL or not record.name.startswith(
            self.PREFIXES
        ):
            return True
        now = time.monotonic()
        with self._lock:
            if now < self._next_at:
                self._suppressed += 1
                return False
            self._next_at = now + self.interval_s
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            record.msg = (
                f"{record.getMessage()} ({suppressed} similar Kafka client lines suppressed before this)"
            )
            record.args = None
        return True


class Worker(faust.Worker):
    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        # Faust's terminal spinner lowers the root logger to DEBUG so it can spin on every record;
        # then each library debug() call builds a LogRecord (~7 % of CPU per event, measured).
        self.spinner = None
        logger.setLevel(level)


def _without_dataframes() -> None:
    """Keep pyarrow and pandas out of the worker: it never reads or writes a dataframe.

    chDB imports pyarrow when it is installed (only its Arrow result formats need it), and
    clickhouse-connect imports pandas on the first insert (to check whether the rows are a
    DataFrame: a ~0.8 s stall mid-stream, which the worker used to take at start instead). Together
    ~90 MB resident in the process that holds chDB (measured: pandas 52 MB anonymous + 45 MB of
    libraries, pyarrow 19 + 35 MB). chDB's ``import pyarrow`` is made to raise ImportError (a
    ``sys.modules`` entry of ``None``), which it reads as "not installed"; clickhouse-connect's
    lazily resolved ``options.pd`` is set to ``None`` before it looks, which it reads the same way.
    Must run before chDB is imported (a process that imported pyarrow already keeps it).
    """
    if "pyarrow" not in sys.modules:
        sys.modules["pyarrow"] = None  # type: ignore[assignment]
    from clickhouse_connect.driver import options

    if "pd" not in vars(options):
        options.pd = None
        options.pd_time_test = None


M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
MMAP_THRESHOLD_BYTES = 128 * 1024
CHDB_MALLOC_CONF = "dirty_decay_ms:1000,prof:false"


def _tune_allocators() -> None:
    """Allocator settings that keep the worker's resident memory near what it uses.

    * glibc: allocations from 128 KiB up are always mmapped (returned to the OS when freed).
      glibc's default raises that threshold to the largest block freed so far, so after the first
      fetch response or insert payload (~1 MB) such buffers come from the heap, and the heap keeps
      the holes they leave. Measured, 200k events through ``--processes 2``: detect processes peaked
      at 214 MB instead of 236-248, the store at 508 instead of 526.
    * chDB's jemalloc (``JE_MALLOC_CONF``, read when chDB loads; a value already set is kept):
      freed pages go back after 1 s instead of chDB's 5 s, and heap profiling, which samples
      allocations with their stacks and which nothing here reads, is off. The store then peaked at
      489 MB instead of 508, at the same CPU per event.

    Set before the first thread and before chDB is imported; a ``MALLOC_MMAP_THRESHOLD_`` in the
    environment (glibc's own variable) is left to glibc.
    """
    os.environ.setdefault("JE_MALLOC_CONF", CHDB_MALLOC_CONF)
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    mallopt = glibc_function("mallopt")
    if mallopt is not None:  # not glibc (musl, macOS): nothing to tune
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)


def prepare_worker(settings: Settings, role: str = ROLE_ALL, index: int = 0) -> WorkerApp:
    """Everything that can fail on configuration: topics, detector, advisories, sink schemas.

    ``role``/``index``: one process of ``--processes N`` (:func:`run_processes` starts them).
    """
    logging.config.dictConfig(logging_config(settings.log_level))
    _tune_allocators()
    _without_dataframes()
    asyncio.run(ensure_topics(settings))
    pipeline = build_app(settings, role=role, index=index)
    _recover_from_broker_loss(pipeline)
    for sink in pipeline.sinks:
        sink.ensure_schema()
    return pipeline


def _adopt_offsets(settings: Settings, into: str, source: str) -> None:
    """Best effort: never fails a start (a group with live members refuses an outside commit)."""
    try:
        moved = asyncio.run(asyncio.wait_for(adopt_input_offsets(settings, into, source), ADOPT_RETRY_S + 15))
    except Exception as exc:
        log.warning("could not compare the input offsets of groups %s and %s: %r", into, source, exc)
        return
    if moved:
        log.warning("group %s continues from the input offsets group %s committed: %s", into, source, moved)


async def adopt_input_offsets(settings: Settings, into: str, source: str) -> dict[int, int]:
    """Move group ``into``'s committed input offsets up to ``source``'s where those are further.

    A single-process worker (group ``app_id``) and the detect processes of ``--processes N`` (group
    ``app_id-detect``) read the same input topic. ``--processes N`` starts its detect group from the
    furthest offsets either group committed (each only commits what it processed), so going from
    one process to several neither loses nor replays input. The other way round is not done: the
    embedded broker refuses a commit from outside to a group that has had members (UnknownMemberId,
    even long after they left), so a single-process worker started after ``--processes N`` reads the
    input again from where it had stopped (at least once: the sinks skip stored ids, the table folds
    the same events to the same state). Returns the partitions moved and their new offsets.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import (
        CommitFailedError,
        IllegalGenerationError,
        RebalanceInProgressError,
        UnknownMemberIdError,
    )
    from aiokafka.structs import OffsetAndMetadata

    tps = [TopicPartition(settings.topic_input, p) for p in range(settings.partitions)]

    async def committed(group: str) -> dict[TopicPartition, int | None]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            return {tp: await consumer.committed(tp) for tp in tps}
        finally:
            await consumer.stop()

    theirs = await committed(source)
    if not any(offset for offset in theirs.values()):
        return {}
    ours = await committed(into)
    ahead = {tp: o for tp, o in theirs.items() if o is not None and o > (ours[tp] or 0)}
    if not ahead:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=into, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(ahead))
        # A group whose members just stopped still lists them until their session times out, and
        # refuses a commit from outside until then (UnknownMemberId): try again for a while.
        deadline = time.monotonic() + ADOPT_RETRY_S
        while True:
            try:
                await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in ahead.items()})
                break
            except (
                CommitFailedError,
                UnknownMemberIdError,
                IllegalGenerationError,
                RebalanceInProgressError,
            ):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
    finally:
        await consumer.stop()
    return {tp.partition: o for tp, o in ahead.items()}


def _recover_from_broker_loss(pipeline: WorkerApp) -> None:
    """Heal local state that is ahead of a broker that lost data, then watch for it while running."""
    global _watch
    if not pipeline.settings.recover_broker_loss:
        return
    recovery.recover_before_start(pipeline)
    _watch = recovery.watch_broker(pipeline)


def _freeze_startup_heap() -> None:
    """Keep what was built before Faust starts (the detector's indexes, advisories: ~680k objects)
    out of the cyclic GC. Each full collection walked all of it: 130 ms measured, a pause in the
    middle of the stream every so often (publish → threat p99) for objects that live as long as the
    process; ``gc.freeze`` moves them to a permanent generation. Objects made later are collected
    as usual."""
    gc.collect()
    gc.freeze()


def run_worker(pipeline: WorkerApp) -> None:
    """Blocks until SIGTERM/SIGINT; Faust then commits offsets and flushes tables before exiting."""
    settings = pipeline.settings
    _freeze_startup_heap()
    worker = Worker(
        pipeline.app,
        loglevel=settings.log_level.lower(),
        quiet=True,
        redirect_stdouts=False,
        logging_config=logging_config(settings.log_level),
    )
    try:
        worker.execute_from_commandline()
    finally:  # mode turns a crash into SystemExit(1) and keeps the reason on the worker
        _note_table_ahead_of_broker(settings, worker.crash_reason)
        _restart_after_broker_loss()
        _exit_promptly()


def _note_table_ahead_of_broker(settings: Settings, crash: BaseException | None) -> None:
    """A rebalance met a changelog that ends before the local table: the broker lost data."""
    if _watch is not None and isinstance(crash, ConsistencyError):
        reason = "a table changelog ends before the local table's offset (ConsistencyError)"
        recovery.log.warning("the broker lost its data (%s): restarting the worker", reason)
        recovery.mark_broker_loss(_watch, settings, reason)


def _restart_after_broker_loss() -> None:
    """The broker lost data while the worker ran: start afresh in this process (recovery runs first)."""
    if _watch is not None:
        recovery.restart_if_requested(_watch)


def _exit_promptly() -> None:
    """Faust has stopped (offsets committed, producer flushed, tables closed): exit now, skipping
    the interpreter's teardown. Left to it, a sink call stuck in a thread (``asyncio.to_thread``
    cannot be cancelled; a hung ClickHouse connection blocks up to its timeout) would hold the exit,
    and so does finalising everything the detector and drivers built (measured: 2-3 s of a 3.6-4.9 s
    SIGTERM-to-exit, 1.6 s without it). chDB's inserts are on disk when they return."""
    stop = sys.exc_info()[1]
    code = stop.code if isinstance(stop, SystemExit) else 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else int(code is not None))


# -- several processes -------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _die_with_supervisor() -> None:
    """``preexec_fn``: SIGKILL the child when the supervisor dies, so killing the supervisor is
    a crash of the whole worker (nothing committed on the way out), as with one process."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def run_processes(settings: Settings, processes: int) -> NoReturn:
    """``typostream worker --processes N``: one store process and N detect processes, supervised.

    The detect processes share the input partitions (group ``app_id-detect``; more processes than
    partitions leave some idle) and keep no state; the store process keeps the packages table, feeds
    the sinks (embedded chDB allows one writer process) and serves the API on ``web_port``; detect
    process ``i`` serves ``/metrics`` and the scan API on ``web_port + i``. SIGTERM/SIGINT is passed on
    to every process; when one exits by itself (a crash, a halt), the others are stopped and the
    supervisor exits with its code, so the service manager restarts the worker as a whole. A
    SIGKILL of the supervisor kills them all.
    """
    from typostream.streams.worker_process import settings_env

    logging.config.dictConfig(logging_config(settings.log_level))
    asyncio.run(ensure_topics(settings))
    _adopt_offsets(settings, into=detect_group(settings), source=settings.app_id)
    env = {**settings_env(settings), "TYPOSTREAM_WORKER_PROCESSES": "1"}
    roles = [(ROLE_STORE, 0)] + [(ROLE_DETECT, i) for i in range(1, processes + 1)]
    children: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
    stopping = False
    code = 0

    def stop_all(signum: int | None = None, frame: object = None) -> None:
        nonlocal stopping
        stopping = True
        for _, child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    for role, index in roles:
        argv = [
            sys.executable,
            "-m",
            "typostream.streams.cli",
            "worker",
            "--role",
            role,
            "--index",
            str(index),
        ]
        child = subprocess.Popen(argv, env=env, preexec_fn=_die_with_supervisor)
        children[child.pid] = (f"{role}-{index}" if role == ROLE_DETECT else role, child)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        name, _ = children.pop(pid, ("?", None))
        exit_code = os.waitstatus_to_exitcode(status)
        if not stopping:
            log.critical("worker process %s exited with code %s: stopping the others", name, exit_code)
            stop_all()
            code = exit_code if exit_code > 0 else 1
        elif exit_code != 0 and code == 0:
            code = exit_code if exit_code > 0 else 1
    logging.shutdown()
    os._exit(code)
