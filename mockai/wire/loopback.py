"""Whether an address or a host name is this machine: the admin API's guard (loopback peers and
Host headers) and the upstream client's proxy choice (a loopback upstream is reached directly)
ask the same questions."""

from __future__ import annotations

import ipaddress


def is_loopback(remote: str) -> bool:
    """Whether a peer address is this machine: 127.0.0.0/8, ::1, or an IPv4 loopback address
    seen through an IPv6 socket (`::ffff:127.0.0.1`, what a server bound to `::` sees)."""
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def is_loopback_host(host: str) -> bool:
    """Whether a host (a name or an address, without a port; `[::1]` bracketed or not) names
    this machine: `localhost` and its subdomains, or a loopback address."""
    name = host.strip("[]").lower().removesuffix(".")  # (`localhost.`: the same name, rooted)
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)
