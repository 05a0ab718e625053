"""Lines the server and the commands print for people: written so that a stream nobody reads
cannot stop them (the command line and the server's banner and notices share it)."""

from __future__ import annotations

import contextlib
import os
from typing import TextIO


def say(text: str, stream: TextIO | None) -> bool:
    """`print(text, file=stream, flush=True)` that a stream nobody can write to (a full disk, a
    pipe whose reader left) does not stop: the line is lost (False), never the server, its
    shutdown or a command's exit code. A closed stream (`>&-`, None) counts as written.

    The failed stream is pointed at the null device: its buffer still holds the line, and the
    flush at exit would fail again (Python then exits 120), as would every later line."""
    if stream is None:  # (`print(file=None)` would write to stdout instead)
        return True
    try:
        print(text, file=stream, flush=True)
    except OSError:  # BrokenPipeError, ENOSPC, EIO
        with contextlib.suppress(OSError, ValueError):  # (a stream with no file: nothing kept)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, stream.fileno())
            os.close(null)
        return False
    return True
