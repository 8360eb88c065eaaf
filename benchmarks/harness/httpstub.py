"""The HTTP stub of the io workload: answers every request after a fixed delay.

``python -m harness.httpstub --delay 0.05`` prints the port it listens on (127.0.0.1)
and serves until killed. asyncio, so thousands of waiting requests cost no threads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys

RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)


async def serve(delay: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(delay)
            writer.write(RESPONSE)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.05)
    asyncio.run(serve(parser.parse_args().delay))


if __name__ == "__main__":
    main()
