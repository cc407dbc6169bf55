#!/usr/bin/env python3
"""Faust itself on Kafka: the baseline of scenario 7's "vs Faust" pairs.

One run per invocation (the Node harness in ``bench/groups/faust-kafka.ts``
drives warm-up and rounds, alternating with effect-faust's ``Topic``):

  produce  a fresh faust.App (fresh id) in producer-only mode; the topic is
           declared and one record sent and awaited before the timer starts;
           then ``await topic.send(key=..., value=Value(...))`` for N keyed
           records (every call returns a future), and every future awaited.
           Timed from the first send until the last future resolves.
  consume  a fresh faust.App (fresh id = fresh consumer group, from earliest:
           ``consumer_auto_offset_reset="earliest"``) with one agent on a
           pre-filled topic: ``async for key, value in stream.items()``.
           Timed from the first record the agent sees to the N-th (the
           worker start and the group join are not counted, as on the Node side).

The records are the ones the Node side sends: key ``"k{i % 1000}"`` and value
``{"id": i, "user": "user-{i % 97}", "qty": i % 10, "ok": i % 2 == 0}``, both as
JSON, the value read and written through a ``faust.Record`` without Faust's
``__faust`` metadata field (the same bytes as the Node side).

Prints one JSON object on stdout: ``{"elapsedMs": ..., "n": ..., ...}``.
The app is started in this process's event loop (no ``faust worker``), web
server off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import platform
import sys
import time
import uuid
from importlib.metadata import version as pkg_version

import faust

MAXSIZE = 4096


class Value(faust.Record, serializer="json", include_metadata=False):
    id: int
    user: str
    qty: int
    ok: bool


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def make_app(bootstrap: str, app_id: str) -> faust.App:
    return faust.App(
        app_id,
        broker=",".join(f"kafka://{b.strip()}" for b in bootstrap.split(",") if b.strip()),
        loop=asyncio.get_running_loop(),
        web_enabled=False,
        topic_partitions=1,
        topic_replication_factor=1,
        stream_buffer_maxsize=MAXSIZE,
        consumer_auto_offset_reset="earliest",
    )


def make_topic(app: faust.App, name: str):
    return app.topic(
        name,
        key_type=str,
        value_type=Value,
        key_serializer="json",
        value_serializer="json",
        partitions=1,
    )


async def produce(args: argparse.Namespace) -> dict:
    app = make_app(args.bootstrap, f"bench-faust-produce-{uuid.uuid4().hex[:8]}")
    app.producer_only = True
    topic = make_topic(app, args.topic)
    await app.start()
    try:
        await topic.maybe_declare()
        # connect and warm the producer, outside the timed part
        await (await topic.send(key="warm", value=Value(id=-1, user="user-warm", qty=0, ok=True)))
        n = args.n
        send = topic.send
        t0 = time.perf_counter()
        futures = [None] * n
        for i in range(n):
            futures[i] = await send(
                key=f"k{i % 1000}",
                value=Value(id=i, user=f"user-{i % 97}", qty=i % 10, ok=(i & 1) == 0),
            )
        metas = await asyncio.gather(*futures)
        t1 = time.perf_counter()
        if len(metas) != n or metas[-1].offset < n - 1:
            raise RuntimeError(f"last offset {metas[-1].offset}, want >= {n - 1}")
        return {"elapsedMs": (t1 - t0) * 1000}
    finally:
        await app.stop()


async def consume(args: argparse.Namespace) -> dict:
    app = make_app(args.bootstrap, f"bench-faust-consume-{uuid.uuid4().hex[:8]}")
    topic = make_topic(app, args.topic)
    n = args.n
    state = {"count": 0, "sum": 0, "t0": 0.0, "t1": 0.0}
    done = asyncio.Event()

    @app.agent(topic)
    async def reader(stream):
        async for key, value in stream.items():
            if state["count"] == 0:
                state["t0"] = time.perf_counter()
            state["sum"] += value.qty + (0 if key else 1)
            state["count"] += 1
            if state["count"] == n:
                state["t1"] = time.perf_counter()
                done.set()

    await app.start()
    try:
        await asyncio.wait_for(done.wait(), timeout=args.timeout)
    finally:
        await app.stop()
    if state["count"] < n:
        raise RuntimeError(f"read {state['count']} of {n}")
    return {"elapsedMs": (state["t1"] - state["t0"]) * 1000}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("op", nargs="?", choices=["produce", "consume"])
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--topic")
    p.add_argument("--n", type=int)
    p.add_argument("--timeout", type=float, default=240.0, help="consume: give up after this many seconds")
    p.add_argument("--check", action="store_true", help="print the versions as JSON and exit")
    args = p.parse_args()
    versions = {
        "faustVersion": pkg_version("faust-streaming"),
        "aiokafkaVersion": pkg_version("aiokafka"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }
    if args.check:
        print(json.dumps(versions), flush=True)
        return
    if args.op is None or args.topic is None or args.n is None or args.n < 1:
        p.error("produce|consume, --topic and --n (>= 1) are required")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    t0 = time.perf_counter()
    result = asyncio.run(produce(args) if args.op == "produce" else consume(args))
    result.update({"op": args.op, "n": args.n, **versions, "totalSeconds": round(time.perf_counter() - t0, 2)})
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
