#!/usr/bin/env python3
"""pace_proxy.py — a loopback HTTP/1.1 proxy in front of `cake serve` for the web UI test. Requests pass to
the server unchanged, and so do responses, except a server-sent event stream (Content-Type
text/event-stream, chunked): its events reach the browser one at a time, DELAY seconds apart, as a real
model's tokens arrive (the test's tiny model writes all of its tokens within milliseconds, which can reach
the page in one read). An event whose delta carries more than PIECE characters of text is handed on as
several events of at most PIECE characters each: the server joins the text generated while its client
was not reading into one event, and how often that happens depends on how loaded the machine is, so the
browser sees the same small pieces however the server grouped them. Prints the port it listens on, then
serves until killed.
usage: pace_proxy.py UPSTREAM_PORT [DELAY_SECONDS]"""
import asyncio
import json
import sys

UPSTREAM = int(sys.argv[1])
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.12
PIECE = 4


async def to_server(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:  # a reset by either side ends the connection
        pass


def pieces(event):
    """The event (bytes, without its blank line) as one or more events whose text is at most PIECE long."""
    if not event.startswith(b"data: {"):
        return [event]
    try:
        j = json.loads(event[6:])
        delta = j["choices"][0]["delta"]
    except (ValueError, KeyError, IndexError, TypeError):
        return [event]
    key = next((k for k in ("content", "reasoning_content") if isinstance(delta.get(k), str)), None)
    if key is None or len(delta[key]) <= PIECE:
        return [event]
    text, out = delta[key], []
    for i in range(0, len(text), PIECE):
        delta[key] = text[i : i + PIECE]
        if i + PIECE < len(text):  # the finish reason and usage stay on the last piece
            part = dict(j, choices=[dict(j["choices"][0], delta=dict(delta), finish_reason=None)])
            part.pop("usage", None)
        else:
            part = j
        out.append(b"data: " + json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode())
    return out


async def chunked_events(reader, writer):
    """Relays a chunked event stream, event by event, each as its own chunk, DELAY apart."""
    sse = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        data = await reader.readexactly(size + 2)  # the chunk and its CRLF
        if size == 0:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return
        sse += data[:-2]
        while (end := sse.find(b"\n\n")) >= 0:
            event, sse = sse[:end], sse[end + 2 :]
            for ev in pieces(event):
                ev += b"\n\n"
                writer.write(b"%X\r\n%s\r\n" % (len(ev), ev))
                await writer.drain()
                await asyncio.sleep(DELAY)


async def to_browser(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            await writer.drain()
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            fields = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip().lower()
            if status in (204, 304) or status < 200:  # no body
                continue
            if fields.get("transfer-encoding") == "chunked":
                if fields.get("content-type", "").startswith("text/event-stream"):
                    await chunked_events(reader, writer)
                    continue
                while True:  # any other chunked body, as it comes
                    size_line = await reader.readuntil(b"\r\n")
                    size = int(size_line.split(b";")[0], 16)
                    writer.write(size_line + await reader.readexactly(size + 2))
                    await writer.drain()
                    if size == 0:
                        break
            elif "content-length" in fields:
                writer.write(await reader.readexactly(int(fields["content-length"])))
                await writer.drain()
            else:  # the body runs to the end of the connection
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
                return
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
        pass  # the connection ended (or spoke something this proxy does not follow): close both sides


async def serve(b_reader, b_writer):
    try:
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    except OSError:
        b_writer.close()
        return
    tasks = [asyncio.ensure_future(to_server(b_reader, s_writer)),
             asyncio.ensure_future(to_browser(s_reader, b_writer))]
    try:  # either side closing ends the connection
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for w in (s_writer, b_writer):
            w.close()


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
