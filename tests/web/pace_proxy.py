#!/usr/bin/env python3
"""pace_proxy.py — a loopback TCP proxy in front of `cake serve` for the web UI test. Bytes pass both ways
unchanged; on a connection that has carried a chat completion request (POST /v1/chat/completions), the
server's bytes go to the browser one server-sent event at a time, DELAY seconds apart, as a real model's
tokens arrive (the test's tiny model writes all of its tokens within milliseconds, which can reach the page
in one read). Other connections (the page, /v1/models, the topology) are not slowed. Prints the port it
listens on, then serves until killed.
usage: pace_proxy.py UPSTREAM_PORT [DELAY_SECONDS]"""
import asyncio
import sys

UPSTREAM = int(sys.argv[1])
DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.15


async def to_server(reader, writer, conn):
    try:
        while data := await reader.read(65536):
            if b"POST /v1/chat/completions " in data:
                conn["pace"] = True
            writer.write(data)
            await writer.drain()
    except OSError:  # a reset by either side ends the connection
        pass


async def to_browser(reader, writer, conn):
    try:
        while data := await reader.read(65536):
            if conn["pace"]:  # whole events one by one, the rest (a chunk's framing, a JSON body) at once
                while (end := data.find(b"\n\n")) >= 0:
                    writer.write(data[: end + 2])
                    await writer.drain()
                    data = data[end + 2 :]
                    await asyncio.sleep(DELAY)
            writer.write(data)
            await writer.drain()
    except OSError:
        pass


async def serve(b_reader, b_writer):
    try:
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    except OSError:
        b_writer.close()
        return
    conn = {"pace": False}
    tasks = [asyncio.ensure_future(to_server(b_reader, s_writer, conn)),
             asyncio.ensure_future(to_browser(s_reader, b_writer, conn))]
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
