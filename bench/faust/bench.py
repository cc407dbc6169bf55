#!/usr/bin/env python3
"""Throughput benchmark of Faust's in-memory ``faust.channels.Channel``.

Baseline for effect-faust. Runs on faust-streaming's in-memory channel
(``app.channel()``): no Kafka, no worker. The app is never started, so no
broker connection is ever attempted.

How a subscriber works in Faust (faust/channels.py, faust-streaming 0.15.3):

    def clone(self, *, is_iterator=None, **kwargs):
        ...
        if is_it:
            (self._root or self)._subscribers.add(cast(Channel, subchannel))
        subchannel.queue            # creates FlowControlQueue(maxsize)

    async def put(self, value):
        root = self._root if self._root is not None else self
        for subscriber in root._subscribers:
            await subscriber.queue.put(value)

    def __aiter__(self):
        return self if self.is_iterator else self.clone(is_iterator=True)

    async def __anext__(self):
        ...
        return await self.queue.get()

``send(value=...)`` -> ``_send_now`` -> ``publish_message`` builds a
FutureMessage/PendingMessage, turns it into an Event, ``await self.put(event)``
and resolves the future with a RecordMetadata.  ``app.stream(channel)`` calls
``aiter(channel)``, i.e. ``channel.clone(is_iterator=True)``.

So a subscriber = an iterator clone of the root channel, each with its own
bounded queue (``maxsize``, default ``stream_buffer_maxsize`` = 4096).  ``put``
awaits each subscriber queue in turn, so a full queue blocks the producer
(back-pressure) until that subscriber's consumer task drains it.  With no
subscribers, ``put`` loops over an empty set: the message is dropped.
``_subscribers`` is a WeakSet, so we keep strong references to the clones,
and use a fresh root channel per round so stale clones of a previous round
can never block the producer.

The per-subscriber queue is a ``FlowControlQueue`` whose ``put`` first awaits
``app.flow_control.acquire()``; the app's FlowControlEvent starts *suspended*
and is resumed by the app when the worker starts.  As we don't start the
worker, we call ``app.flow_control.resume()`` ourselves (the Stream iterator
also skips events while flow control is inactive).

Scenarios (``<producer>-<subscribers>``):
  send-K    producer: ``await channel.send(value=i)``; K consumers, each
            ``async for event in clone`` (clone = channel.clone(is_iterator=True))
  put-K     producer: ``await channel.put(i)`` (raw fan-out, no Event built)
  stream-K  producer: ``await channel.send(value=i)``; K consumers, each
            ``async for value in app.stream(channel)`` (full Stream machinery)

Throughput = N / wall time from just before the first send until every
subscriber has received all N messages (messages *published* per second,
independent of K).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import sys
import time
from importlib.metadata import version as pkg_version

import faust

MAXSIZE = 4096
DEFAULT_SCENARIOS = "send-1,send-4,send-16,put-1,put-4,put-16,stream-1"
ALL_SCENARIOS = (
    "send-1,send-4,send-16,put-1,put-4,put-16,stream-1,stream-4,stream-16"
)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_app() -> faust.App:
    # faust-streaming 0.15.3 has no "memory://" transport (only aiokafka,
    # confluent, kafka); the transport is only instantiated lazily, and only
    # Stream iteration touches it (to build the, never started, consumer).
    # The app is never started, so this URL is never connected to.
    app = faust.App(
        "bench",
        broker="kafka://127.0.0.1:1",
        loop=asyncio.get_running_loop(),
        stream_buffer_maxsize=MAXSIZE,
    )
    app.flow_control.resume()
    return app


async def run_once(app: faust.App, kind: str, subs: int, n: int) -> float:
    """One round; returns wall-clock seconds."""
    channel = app.channel(maxsize=MAXSIZE)  # fresh root => no stale subscribers

    # Subscribe BEFORE sending: Channel.put drops messages with no subscribers.
    if kind == "stream":
        iterables = [app.stream(channel) for _ in range(subs)]
    else:
        iterables = [channel.clone(is_iterator=True) for _ in range(subs)]
    assert channel.subscriber_count == subs, channel.subscriber_count
    for it in iterables:
        clone = it.channel if kind == "stream" else it
        assert clone.is_iterator and clone.queue.maxsize == MAXSIZE

    async def consume_clone(clone) -> tuple[int, object]:
        count = 0
        last = None
        async for event in clone:
            count += 1
            if count == n:
                last = event
                break
        return count, last

    async def consume_stream(stream) -> tuple[int, object]:
        count = 0
        last = None
        agen = stream.__aiter__()
        async for value in agen:
            count += 1
            if count == n:
                last = value
                break
        return count, (last, agen)

    async def produce_send() -> None:
        send = channel.send
        for i in range(n):
            await send(value=i)

    async def produce_put() -> None:
        put = channel.put
        for i in range(n):
            await put(i)

    consume = consume_stream if kind == "stream" else consume_clone
    produce = produce_put if kind == "put" else produce_send

    consumers = [asyncio.create_task(consume(it)) for it in iterables]
    await asyncio.sleep(0)  # let consumers start and block on their queues
    t0 = time.perf_counter()
    producer = asyncio.create_task(produce())
    results = await asyncio.gather(*consumers)
    t1 = time.perf_counter()
    await producer

    # verify: every subscriber got all N messages, in order
    for count, last in results:
        if kind == "stream":
            last, agen = last
            await agen.aclose()
            value = last
        elif kind == "put":
            value = last
        else:
            value = last.value
        if count != n or value != n - 1:
            raise RuntimeError(f"{kind}-{subs}: got count={count} last={value!r}, want {n}/{n - 1}")
    del iterables, consumers, results
    return t1 - t0


async def amain(args: argparse.Namespace) -> dict:
    app = make_app()
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    out: dict = {}
    for name in scenarios:
        kind, _, k = name.partition("-")
        if kind not in ("send", "put", "stream") or not k.isdigit():
            raise SystemExit(f"bad scenario {name!r}")
        subs = int(k)
        if args.warmup:
            wn = min(args.n, 10_000)
            dt = await run_once(app, kind, subs, wn)
            log(f"[{name}] warmup n={wn}: {dt:.3f}s")
        rounds = []
        seconds = []
        for r in range(args.rounds):
            gc.collect()
            dt = await run_once(app, kind, subs, args.n)
            rate = args.n / dt
            rounds.append(round(rate, 1))
            seconds.append(round(dt, 4))
            log(f"[{name}] round {r + 1}/{args.rounds} n={args.n}: {dt:.3f}s  {rate:,.0f} msg/s")
        med = statistics.median(rounds)
        log(f"[{name}] median {med:,.0f} msg/s")
        out[name] = {
            "n": args.n,
            "subscribers": subs,
            "medianMsgPerSec": med,
            "rounds": rounds,
            "roundSeconds": seconds,
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="messages per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", action="store_true", help="small warm-up round per scenario")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument(
        "--scenarios",
        default=DEFAULT_SCENARIOS,
        help=f"comma list (default {DEFAULT_SCENARIOS}; 'all' = {ALL_SCENARIOS})",
    )
    args = p.parse_args()
    if args.scenarios == "all":
        args.scenarios = ALL_SCENARIOS
    if args.n < 1 or args.rounds < 1:
        raise SystemExit("--n and --rounds must be >= 1")

    from faust import streams as _streams

    cython = _streams._CStreamIterator is not None
    log(
        f"faust-streaming {pkg_version('faust-streaming')}, Python {platform.python_version()}, "
        f"maxsize={MAXSIZE}, cython stream iterator={cython}, n={args.n}, rounds={args.rounds}"
    )
    t0 = time.perf_counter()
    scenarios = asyncio.run(amain(args))
    total = time.perf_counter() - t0
    log(f"total wall time {total:.1f}s")
    result = {
        "faustVersion": pkg_version("faust-streaming"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "maxsize": MAXSIZE,
        "cythonStreamIterator": cython,
        "noCython": bool(os.environ.get("NO_CYTHON")),
        "totalSeconds": round(total, 2),
        "scenarios": scenarios,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for name, s in scenarios.items():
            print(f"{name:10s} median {s['medianMsgPerSec']:>12,.0f} msg/s  rounds {s['rounds']}")


if __name__ == "__main__":
    main()
