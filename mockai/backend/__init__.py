"""State backends: where what must be one across workers and replicas lives (`--state`)."""

from __future__ import annotations

from mockai.backend.base import Backend, RecordCodec, Records, StateUnavailable
from mockai.errors import ConfigError

__all__ = ["Backend", "RecordCodec", "Records", "StateUnavailable", "open_backend"]


def open_backend(state: str | None, *, journal_size: int = 1000) -> Backend:
    """The backend `--state` names: in-process for None / `memory`, else Redis.

    Nothing connects here: connections open on the serving loop (`Backend.connect`).
    """
    if state is None or state == "memory":
        from mockai.backend.memory import MemoryBackend

        return MemoryBackend()
    try:
        from mockai.backend.redis_state import RedisBackend
    except ImportError as error:  # the `redis` client is an optional dependency
        from mockai.config import password_hidden

        raise ConfigError(
            f"state: {password_hidden(state)!r} needs the redis client ({error.name} is not "
            "installed); pip install 'mockai-server[service]'"
        ) from None
    return RedisBackend(state, journal_size=journal_size)
