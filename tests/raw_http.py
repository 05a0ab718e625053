"""Raw bytes to a server and its whole answer back: for requests no HTTP client would send."""

from __future__ import annotations

import socket


def whole_answer(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """What the server on `port` sends back for `data`, until it closes the connection (it does
    after refusing a request). A server that keeps it open past `timeout` raises TimeoutError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
