"""Endpoint codecs: pure `parse(body) -> Exchange` and `render(reply, exchange) -> wire` pairs."""
