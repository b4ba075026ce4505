"""A lean SSE load client for bench_streams.py: many streams over raw asyncio sockets.

Run by bench_streams.py as its own process (one per core), so the client's parsing does
not share the API's event loop and httpx's per-line machinery does not cap what is
measured. Per connection it speaks just enough HTTP/1.1 (one GET, a chunked body) and SSE
(frames split on a blank line; `id`, `event`, `data`) to record when each `metrics`
frame arrived; a connection that closes before `end` is re-opened with Last-Event-ID.
Payloads are decoded only after the run. Prints `connected` once every stream got its
response headers, then writes its results as JSON to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from typing import Any

MAX_RECONNECTS = 50


class Stream:
    def __init__(self, frames: dict[bytes, int]) -> None:
        self.frames = frames  # payload bytes -> index, shared by the streams of this process
        self.arrivals: list[tuple[int, float]] = []  # (payload index, monotonic time)
        self.last_id: bytes | None = None
        self.ended = False
        self.reconnects = 0
        self.closed_reasons: list[str] = []
        self.error: str | None = None

    async def run(self, host: str, port: int, path: str, connected: asyncio.Event) -> None:
        while not self.ended:
            try:
                await self._connect_once(host, port, path, connected)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                self.error = f"{type(exc).__name__}: {exc}"[:200]
                await asyncio.sleep(0.5)
            if not self.ended:
                self.reconnects += 1
                if self.reconnects > MAX_RECONNECTS:
                    self.error = self.error or "too many reconnects"
                    break
        connected.set()

    async def _connect_once(
        self, host: str, port: int, path: str, connected: asyncio.Event
    ) -> None:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        try:
            head = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n"
            if self.last_id:
                head += f"Last-Event-ID: {self.last_id.decode()}\r\n"
            writer.write((head + "Connection: close\r\n\r\n").encode())
            status = await reader.readuntil(b"\r\n\r\n")
            if not status.startswith(b"HTTP/1.1 200"):
                raise ValueError(status.split(b"\r\n", 1)[0].decode())
            connected.set()
            self.error = None
            await self._read_body(reader)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _read_body(self, reader: asyncio.StreamReader) -> None:
        pending = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            if size == 0:
                return
            chunk = await reader.readexactly(size + 2)
            now = time.monotonic()
            pending += chunk[:-2]
            *complete, pending = pending.split(b"\n\n")
            for message in complete:
                self._on_message(message, now)
                if self.ended:
                    return

    def _on_message(self, message: bytes, now: float) -> None:
        if message.startswith(b":"):
            if message.startswith(b": closed"):
                self.closed_reasons.append(message[2:].decode())
            return
        fields = dict(line.split(b": ", 1) for line in message.split(b"\n") if b": " in line)
        if b"id" in fields:
            self.last_id = fields[b"id"]
        event = fields.get(b"event")
        if event == b"metrics":
            index = self.frames.setdefault(fields[b"data"], len(self.frames))
            self.arrivals.append((index, now))
        elif event == b"end":
            self.ended = True


async def main(args: argparse.Namespace) -> None:
    frames: dict[bytes, int] = {}
    streams = [Stream(frames) for _ in range(args.streams)]
    events = [asyncio.Event() for _ in streams]
    tasks = []
    for stream, event in zip(streams, events, strict=True):
        tasks.append(asyncio.create_task(stream.run(args.host, args.port, args.path, event)))
        await asyncio.sleep(0)  # let each connect begin before the next
    await asyncio.gather(*(e.wait() for e in events))
    print("connected", flush=True)
    await asyncio.gather(*tasks)
    out: dict[str, Any] = {
        "frames": [json.loads(data) for data, _ in sorted(frames.items(), key=lambda x: x[1])],
        "streams": [
            {
                "arrivals": s.arrivals,
                "ended": s.ended,
                "reconnects": s.reconnects,
                "closed": s.closed_reasons[:3],
                "error": s.error if not s.ended else None,
            }
            for s in streams
        ],
    }
    with open(args.out, "w") as fh:
        json.dump(out, fh)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--out", required=True)
    try:
        from uvloop import run
    except ImportError:
        run = asyncio.run  # type: ignore[assignment]
    run(main(parser.parse_args()))
    sys.exit(0)
