"""Which webhook destinations a worker may reach, and a connection pinned to the vetted one.

A webhook URL comes from a policy, and a policy can be forged by whoever reaches the Temporal
namespace, so the worker alone decides where it may connect (`ITSM_WEBHOOK_ALLOW`):

- A **public** destination (every address its host resolves to is global unicast) is allowed.
- A **non-public** address is refused unless listed: loopback (127/8, ::1), private (RFC 1918,
  fc00::/7), link-local (169.254/16 with the cloud metadata address 169.254.169.254,
  fe80::/10), unspecified (0.0.0.0, ::), multicast, CGNAT (100.64/10) and every other reserved
  range; an IPv4 address embedded in IPv6 (::ffff:a.b.c.d, 64:ff9b::/96, 2002::/16) is judged
  as that IPv4 address.
- The host name is resolved once and **every** address is checked: one non-public, unlisted
  address refuses the destination (`localhost`, or a public-looking name pointing at 10.x).
- `ITSM_WEBHOOK_ALLOW` is a comma-separated list; each entry is a host name (exact,
  case-insensitive), `*.example.com` (any name below example.com, not example.com itself), an
  IP address, or a CIDR (`10.1.0.0/16`, `::1/128`); a name or an address may carry a port
  (`hooks.example.com:8443`, `127.0.0.1:9000`, `[::1]:9000`), which then must match too. A
  listed name allows whatever it resolves to: list names only whose DNS you control.
- Redirects are never followed (a 3xx is a final rejection), and no HTTP(S)_PROXY is used: a
  proxy would resolve the name again, out of reach of this check.

DNS rebinding: the connection goes to the addresses that were checked, never to a second
lookup of the name. The request still carries the original Host header and, for https, the
TLS server name and certificate check use the host name of the URL, so https is pinned too.
"""

from __future__ import annotations

import http.client
import ipaddress
import os
import re
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

ENV_VAR = "ITSM_WEBHOOK_ALLOW"
DEFAULT_PORTS = {"http": 80, "https": 443}
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_PORT = re.compile(r"[0-9]{1,5}")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class WebhookAllowListError(ValueError):
    """An `ITSM_WEBHOOK_ALLOW` entry that is none of the accepted forms (one line, names it)."""


class DestinationRefused(Exception):
    """A URL the worker must not connect to; the message is the one-line reason."""


@dataclass(frozen=True)
class AllowEntry:
    """One listed destination: exactly one of `name`, `suffix` (".example.com"), `network`."""

    name: str | None = None
    suffix: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def covers_name(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return host == self.name or (self.suffix is not None and host.endswith(self.suffix))

    def covers_address(self, address: IPAddress, port: int) -> bool:
        if self.network is None or (self.port is not None and self.port != port):
            return False
        return address.version == self.network.version and address in self.network


@dataclass(frozen=True)
class AllowList:
    entries: tuple[AllowEntry, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        return cls(tuple(parse_entry(entry.strip()) for entry in text.split(",") if entry.strip()))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AllowList:
        return cls.parse((os.environ if environ is None else environ).get(ENV_VAR, ""))

    def lists_name(self, host: str, port: int) -> bool:
        return any(entry.covers_name(host, port) for entry in self.entries)

    def lists_address(self, address: IPAddress, port: int) -> bool:
        return any(entry.covers_address(address, port) for entry in self.entries)


def parse_entry(entry: str) -> AllowEntry:
    def invalid(why: str = "is not a host, host:port, *.domain, IP address or CIDR") -> WebhookAllowListError:
        return WebhookAllowListError(f"{ENV_VAR} entry {entry!r} {why}")

    if "/" in entry:
        try:
            return AllowEntry(network=ipaddress.ip_network(entry, strict=True))
        except ValueError as err:
            raise invalid(f"is not a valid CIDR ({err})") from None
    host, port = entry.lower().rstrip("."), None
    if host.startswith("["):
        host, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise invalid()
        port = rest[1:] if rest else None
    elif host.count(":") == 1:
        host, port = host.split(":")
    if port is not None and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        raise invalid("has no valid port (1-65535)")
    port_number = int(port) if port is not None else None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return AllowEntry(network=ipaddress.ip_network(address), port=port_number)
    if entry.startswith("["):
        raise invalid("is not an IPv6 address in brackets")
    if host.startswith("*.") and _is_host_name(host[2:]):
        return AllowEntry(suffix=host[1:], port=port_number)
    if _is_host_name(host):
        return AllowEntry(name=host, port=port_number)
    raise invalid()


def _is_host_name(text: str) -> bool:
    return 0 < len(text) <= 253 and all(_LABEL.fullmatch(label) for label in text.split("."))


def non_public_kind(address: IPAddress) -> str | None:
    """What makes `address` non-public ("a loopback address", ...), or None if it is global unicast."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (
            ipaddress.IPv4Address(int(address) & 0xFFFFFFFF) if address in _NAT64 else None)
        if embedded is not None:
            return non_public_kind(embedded)
    checks = (
        (address.is_unspecified, "an unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address in _CGNAT, "a shared (CGNAT) address"),
        (any(address in network for network in _RFC1918) or address in _UNIQUE_LOCAL, "a private address"),
        (address.is_reserved or not address.is_global, "a reserved address"),
    )
    return next((kind for matches, kind in checks if matches), None)


def refusal(host: str, port: int, addresses: list[IPAddress] | tuple[IPAddress, ...], allow: AllowList) -> str | None:
    """Why the worker must not connect to `host`:`port` resolved to `addresses`, or None.

    Pure: the resolution is the caller's, so the rule is testable without a network."""
    if not addresses:
        return f"webhook destination {host} resolved to no address"
    if allow.lists_name(host, port):
        return None
    for address in addresses:
        kind = non_public_kind(address)
        if kind and not allow.lists_address(address, port):
            shown = host if host == str(address) else f"{host} ({address})"
            return f"webhook destination {shown} is {kind}; list it in {ENV_VAR} to allow it"
    return None


@dataclass(frozen=True)
class Destination:
    """A vetted URL: where to connect (`addresses`, in resolver order) and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[IPAddress, ...]

    @property
    def shown(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}{self.path}"


def vet(url: str, allow: AllowList) -> Destination:
    """Parse, resolve once and check `url`; raises DestinationRefused before any connection.

    A failed name lookup is an OSError (socket.gaierror): possibly transient, so retryable."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise DestinationRefused(f"webhook URL {url!r} is not http(s)")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise DestinationRefused(f"webhook URL {url!r} has an invalid port") from None
    host = (parts.hostname or "").rstrip(".")
    if not host or parts.username is not None:
        raise DestinationRefused(f"webhook URL {url!r} needs a host and no user:password@")
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    addresses = resolve(host, port)
    reason = refusal(host, port, addresses, allow)
    if reason:
        raise DestinationRefused(reason)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(scheme, host, port, path, addresses)


def resolve(host: str, port: int) -> tuple[IPAddress, ...]:
    try:
        return (ipaddress.ip_address(host),)
    except ValueError:
        pass
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = (ipaddress.ip_address(str(sockaddr[0]).split("%")[0]) for *_, sockaddr in found)
    return tuple(dict.fromkeys(addresses))


def connect_pinned(destination: Destination, timeout: float | None) -> socket.socket:
    """A TCP connection to the first vetted address that answers; never a new lookup of the name."""
    last_error: OSError | None = None
    for address in destination.addresses:
        try:
            return socket.create_connection((str(address), destination.port), timeout)
        except OSError as err:
            last_error = err
    assert last_error is not None  # vet() never yields a destination without addresses
    raise last_error


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.destination = destination

    def connect(self) -> None:
        self.sock = connect_pinned(self.destination, self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, destination: Destination, timeout: float) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(destination.host, destination.port, timeout=timeout, context=self.tls)
        self.destination = destination

    def connect(self) -> None:
        self.sock = self.tls.wrap_socket(connect_pinned(self.destination, self.timeout),
                                         server_hostname=self.destination.host)


def pinned_connection(destination: Destination, timeout: float) -> http.client.HTTPConnection:
    """An http.client connection to the vetted addresses sending the URL's Host header (and,
    for https, SNI + certificate check against the URL's host name)."""
    kind = _PinnedHTTPSConnection if destination.scheme == "https" else _PinnedHTTPConnection
    return kind(destination, timeout)
