"""A group of routes made when a request first reaches them, not when the server starts.

Registering a route compiles its path pattern, and the routes only some servers ever use are
the expensive ones: every provider's named routes (`/{base:groq/openai/v1|...}/chat/completions`,
one alternation of every provider's prefixes per route) and Azure's. `LazyRoutes` stands in the
server's router for such a group: the router indexes it under a path (`key`) every route of the
group lies under, and the first request reaching it builds the group's own router (compiling
the patterns once per process) and resolves there, every later request straight away.

Routing is unchanged: the server's router tries its resources from the most specific index key
to the root, in registration order within one key, and the group's router does the same among
its own routes at the point where the group is registered. A group holds routes lying under its
key, registered where they were, with no route of the server's between them matching the same
paths (see `routes.add_api_routes`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from aiohttp.web_urldispatcher import _InfoDict
    from yarl import URL


class LazyRoutes(web.AbstractResource):
    """Routes `build` registers on a router of their own, on the first request under `key`."""

    def __init__(self, key: str, build: Callable[[web.UrlDispatcher], None]) -> None:
        super().__init__()
        self.key = key
        self._build = build
        self._router: web.UrlDispatcher | None = None

    @property
    def router(self) -> web.UrlDispatcher:
        """The group's routes (made, and frozen, on first use; a thread racing another makes
        an equal router, and either serves)."""
        router = self._router
        if router is None:
            router = web.UrlDispatcher()
            self._build(router)
            router.freeze()
            self._router = router
        return router

    async def resolve(self, request: web.Request) -> tuple[Any, set[str]]:
        match = await self.router.resolve(request)
        refused = match.http_exception
        if refused is None:
            return match, set()  # (the router reads the allowed methods only when none matched)
        # No route of the group: the server's router goes on (a 405 says which methods the
        # group's routes allow for this path, as theirs would).
        return None, set(getattr(refused, "allowed_methods", ()))

    # --- what a resource also answers (introspection, sub-applications) ------------------------

    @property
    def canonical(self) -> str:
        return self.key

    def url_for(self, **kwargs: str) -> URL:
        raise NotImplementedError("a group of routes has no single URL")

    def add_prefix(self, prefix: str) -> None:
        raise NotImplementedError("mockai's lazy routes are not mounted in sub-applications")

    def get_info(self) -> _InfoDict:
        return {"prefix": self.key}

    def raw_match(self, path: str) -> bool:
        return False

    def __len__(self) -> int:
        return 0

    def __iter__(self) -> Iterator[web.AbstractRoute]:
        return iter(())
