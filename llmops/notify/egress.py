"""Outbound HTTP for webhooks without server-side request forgery.

An organization admin chooses the URL, so unless NOTIFY_ALLOW_PRIVATE_WEBHOOKS is on the
delivery must never reach the server's own network. The host name is resolved ONCE; every
address it resolves to is checked (`non_public`), and the connection goes to the checked
address itself (urllib3 pool on the IP, with the original name as Host header, TLS SNI and
certificate name). Resolving again to connect would let a DNS answer that changes in
between (rebinding) reach a private address.

`non_public` also looks inside IPv6 forms that carry an IPv4 address (IPv4-mapped and
-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo `2001::/32`): `64:ff9b::a00:1`
is 10.0.0.1 to a NAT64 gateway. Proxies from the environment are not used."""

from __future__ import annotations

import ipaddress
import socket
import urllib.parse
from dataclasses import dataclass

import urllib3

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges Python's `is_global` misses (or misses on older Pythons), refused outright.
_BLOCKED = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host
        "100.64.0.0/10",  # carrier-grade NAT, can route to internal workloads
        "192.0.0.0/24",  # IETF protocol assignments (python/cpython#113171)
        "192.88.99.0/24",  # 6to4 relay anycast
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
        "::/128",
        "::1/128",
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): an internal translator
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "2001:10::/28",  # ORCHID
        "2001:20::/28",  # ORCHIDv2
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT


MAX_ADDRESSES = 3  # answers tried in turn when connecting fails (dual-stack names)


class EgressRefused(Exception):
    """The destination is not a public address; retrying cannot help."""


class EgressFailed(Exception):
    """The connection or the exchange failed (may work on a retry)."""


def embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address stands for, if it is one of the forms that
    carry one (a translator or tunnel would deliver to them)."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64 or ip in _IPV4_TRANSLATED:
        found.append(low32)
    elif ip in _IPV4_COMPATIBLE and int(ip) > 1:
        found.append(low32)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client)
    return found


def non_public(ip: IPAddress) -> bool:
    """Whether `ip` (or an IPv4 address embedded in it) is loopback, private, link-local,
    multicast, reserved, unspecified or otherwise not a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return True
    embedded = embedded_ipv4(ip)
    if any(non_public(v4) for v4 in embedded):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and (
        ip.ipv4_mapped is not None or ip in _NAT64 or ip in _IPV4_TRANSLATED
    ):
        return False  # a translation of the public IPv4 address checked above
    if any(ip in net for net in _BLOCKED if net.version == ip.version):
        return True
    return (
        not ip.is_global
        or ip.is_multicast
        or ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_unspecified
    )


def is_local_name(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses `host` resolves to, in the resolver's order (one DNS look-up)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses = []
    for family, *_rest, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str  # the name from the URL (Host header, SNI, certificate)
    port: int
    ips: tuple[IPAddress, ...]  # where the connection may go: the checked answers, in order
    target: str  # path and query

    @property
    def ip(self) -> IPAddress:
        return self.ips[0]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def destination(url: str, *, allow_private: bool) -> Destination:
    """Resolve the URL's host once and choose the address to connect to. Unless
    `allow_private`, a local name or any non-public address among the answers is
    refused (EgressRefused)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise EgressRefused(f"not an http(s) URL: {url!r}")
    try:
        host = parts.hostname.encode("idna").decode("ascii")  # one form for DNS, Host, SNI
        port = parts.port or (443 if scheme == "https" else 80)
    except (UnicodeError, ValueError) as exc:
        raise EgressRefused(f"bad host or port: {exc}")
    if not allow_private and is_local_name(host):
        raise EgressRefused(f"{host} is a local name; refused")
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise EgressFailed(f"cannot resolve {host}: {exc}")
    if not addresses:
        raise EgressFailed(f"cannot resolve {host}: no address")
    if not allow_private:
        for ip in addresses:
            if non_public(ip):
                raise EgressRefused(f"{host} resolves to a non-public address ({ip}); refused")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Destination(
        scheme=scheme, host=host, port=port, ips=tuple(addresses[:MAX_ADDRESSES]), target=target
    )


@dataclass(frozen=True)
class Response:
    status: int
    reason: str


def post(url: str, *, body: bytes, headers: dict, timeout: float, allow_private: bool) -> Response:
    """POST `body` to `url`, connected to an address `destination` checked (the next
    checked answer only when connecting to one fails); no redirects are followed (a
    redirect is an answer like any other), no proxy is used."""
    dest = destination(url, allow_private=allow_private)
    headers = {**headers, "Host": dest.host_header}
    failure: Exception | None = None
    for ip in dest.ips:
        try:
            return _post_to(dest, ip, body=body, headers=headers, timeout=timeout)
        except (
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ConnectTimeoutError,
        ) as exc:
            failure = exc  # nothing was sent: the next checked address may answer
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise EgressFailed(f"connection failed: {exc}")
    raise EgressFailed(f"connection failed: {failure}")


def _post_to(dest: Destination, ip: IPAddress, *, body: bytes, headers: dict, timeout: float):
    options = {
        "host": str(ip),
        "port": dest.port,
        "timeout": urllib3.Timeout(connect=timeout, read=timeout),
        "retries": False,
        "maxsize": 1,
    }
    if dest.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            **options,
            cert_reqs="CERT_REQUIRED",
            server_hostname=dest.host,
            assert_hostname=dest.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(**options)
    try:
        response = pool.urlopen(
            "POST",
            dest.target,
            body=body,
            headers=headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            response.read(1024)
        finally:
            response.release_conn()
        return Response(status=response.status, reason=response.reason or "")
    finally:
        pool.close()
