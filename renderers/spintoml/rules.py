"""Value rules of the Spin manifest, each a pure function returning a problem text or None.

Ids follow spin_serde's `Id` rules: words separated by one delimiter, each word starting with an
ASCII letter (later words may start with a digit), all-lowercase or all-UPPERCASE alphanumerics.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

_TEMPLATE = re.compile(r"\{\{(.*?)\}\}")


def id_problem(value: str, delim: str, lower: bool) -> str | None:
    """Why `value` is not a valid Spin id with `delim` ('-' kebab, '_' snake), or None."""
    if not value:
        return "must not be empty"
    wrong = {"_": "-", "-": "_"}.get(delim)
    if wrong and wrong in value:
        return f"words must be separated with {delim!r}, not {wrong!r}"
    for i, word in enumerate(value.split(delim)):
        if not word:
            return f"{delim!r}-separated words must not be empty"
        first = word[0]
        if not (first.isascii() and (first.isalpha() or (i > 0 and first.isdigit()))):
            return f"{delim!r}-separated words must start with an ASCII letter or digit; got {first!r}"
        upper = first.isupper()
        for ch in word[1:]:
            if ch.isdigit() or ch == ":":
                continue
            if not (ch.isascii() and ch.isalnum()):
                return f"{delim!r}-separated words may only contain alphanumeric ASCII; got {ch!r}"
            if ch.isupper() != upper:
                return f"{delim!r}-separated words must be all lowercase or all UPPERCASE; got {word!r}"
        if lower and upper:
            return f"lower-case identifiers must be all lowercase; got {value!r}"
    return None


def kebab_problem(value: str) -> str | None:
    problem = id_problem(value, "-", lower=False)
    return f"{value!r} is not kebab-case: {problem}" if problem else None


def lower_snake_problem(value: str) -> str | None:
    problem = id_problem(value, "_", lower=True)
    return f"{value!r} is not lower_snake_case: {problem}" if problem else None


def store_label_problem(value: str) -> str | None:
    """Key-value store and SQLite database labels: kebab-case or snake_case."""
    if id_problem(value, "-", lower=False) is None or id_problem(value, "_", lower=False) is None:
        return None
    return f"{value!r} is not a valid label: use kebab-case or snake_case"


def template_names(text: str) -> tuple[list[str], str | None]:
    """The variable names used in `{{ name }}` templates of `text`, or a syntax problem."""
    names = [match.strip() for match in _TEMPLATE.findall(text)]
    rest = _TEMPLATE.sub("", text)
    if "{{" in rest or "}}" in rest:
        return names, f"unbalanced template braces in {text!r}"
    for name in names:
        problem = lower_snake_problem(name)
        if problem:
            return names, f"template {{{{ {name} }}}}: {problem}"
    return names, None


WELL_KNOWN_PREFIX = "/.well-known/spin/"


def route_problem(route: str) -> str | None:
    """Why an HTTP route is invalid, or None. Spin puts a '/' in front of a route without one;
    a route may end in a `/...` wildcard and may hold `:name` parameter segments; routes under
    `/.well-known/spin/` are reserved."""
    route = absolutize(route)
    if any(ch.isspace() for ch in route):
        return f"route {route!r} must not contain whitespace"
    if route.startswith(WELL_KNOWN_PREFIX) or route + "/" == WELL_KNOWN_PREFIX:
        return f"route {route!r} is under {WELL_KNOWN_PREFIX}, which Spin reserves"
    segments = route.strip("/").split("/") if route.strip("/") else []
    params: set[str] = set()
    for i, segment in enumerate(segments):
        if "..." in segment:
            if segment != "..." or i != len(segments) - 1:
                return (
                    f"route {route!r}: '...' is a wildcard only as the whole last segment ('/...'); "
                    "anywhere else Spin would match it literally"
                )
        elif segment.startswith(":"):
            name = segment[1:]
            if not name:
                return f"route {route!r}: a parameter segment needs a name (':name')"
            if name in params:
                return f"route {route!r}: parameter ':{name}' appears twice"
            params.add(name)
        elif not segment and i != len(segments) - 1:
            return f"route {route!r} has an empty segment ('//')"
    return None


def absolutize(route: str) -> str:
    return route if route.startswith("/") else "/" + route


def route_key(route: str) -> str:
    """Routes that Spin's router treats as the same: it adds a leading '/' and strips one
    trailing '/'; parameter names do not make routes different either."""
    route = absolutize(route)
    trimmed = route[:-1] if route.endswith("/") and route != "/" else route
    return "/".join(":" if seg.startswith(":") else seg for seg in trimmed.split("/"))


# Schemes with a default port, so an allowed host may leave the port out.
WELL_KNOWN_PORTS = {"postgres": 5432, "mysql": 3306, "redis": 6379, "mqtt": 1883, "http": 80, "https": 443}


def outbound_host_problem(entry: str) -> str | None:
    """Why an `allowed_outbound_hosts` entry is invalid, or None, by the rules of Spin's
    allowed-host parser: `scheme://host[:port]`; scheme `*` or letters; host `*`, `*.domain`,
    `self`, a CIDR or a name; port `*`, a number or a range `a..b`, optional only for schemes
    with a well-known port. Entries with `{{ var }}` templates are checked when they are
    resolved, as Spin does; only their variable names are checked here."""
    if _TEMPLATE.search(entry):
        return None
    url = entry.strip()
    if url == "insecure:allow-all":
        return "'insecure:allow-all' is not allowed: use '*://*:*' to allow all outbound traffic"
    scheme, sep, rest = url.partition("://")
    if not sep:
        if url in ("*", ":", "", "?"):
            return f"{url!r} is not an allowed host: use <scheme>://<host>[:<port>] ('*' allowed in each)"
        return f"{url!r} does not contain a scheme (e.g. 'http://' or '*://')"
    host, colon, port_part = rest.rpartition(":")
    if not colon:
        host, port_part = rest, ""
    port, slash, path = port_part.partition("/")
    if slash and path:
        return f"{url!r} has a path, which allowed hosts must not have"
    if scheme != "*":
        if scheme.startswith("{"):
            return f"{url!r}: scheme lists are not supported"
        if not scheme.isalpha():
            return f"{url!r}: scheme {scheme!r} contains a non-alphabetic character"
    problem = _host_problem(host.strip())
    if problem:
        return f"{url!r}: {problem}"
    problem = _port_problem(port, scheme)
    return f"{url!r}: {problem}" if problem else None


def _host_problem(host: str) -> str | None:
    if not host:
        return "no host given"  # Spin takes it literally, and it can never match
    if host in ("*", "self", "self.alt"):
        return None
    if host.startswith("{"):
        return "host lists are not supported"
    if _is_network(host):
        return None
    parts = host.split("/")
    if len(parts) > 1 and parts[1]:
        return "hosts must not contain paths"
    if host.startswith("*."):
        if "*" in host[2:]:
            return f"host {host!r}: wildcards are allowed only as prefixes"
        return None
    if "*" in host:
        return f"host {host!r}: wildcards are allowed only as subdomains ('*.example.com')"
    return None


def _is_network(host: str) -> bool:
    try:
        ipaddress.ip_network(host, strict=False)
    except ValueError:
        return False
    return True


def _port_problem(port: str, scheme: str) -> str | None:
    if port == "":
        if scheme in WELL_KNOWN_PORTS:
            return None
        return f"no port was given and the scheme {scheme!r} has no known default port"
    if port == "*":
        return None
    if port.startswith("{"):
        return "port lists are not supported"
    low, dots, high = port.partition("..")
    for number in (low, high) if dots else (low,):
        if not number.isdigit() or int(number) > 65535:
            return f"port {port!r} is not a number from 0 to 65535 (or a range a..b)"
    return None


def unknown_key_hint(key: str, allowed: Iterable[str]) -> str:
    """`did you mean 'x'?` for a likely typo (or a kebab-case spelling of a snake_case key),
    else the list of allowed keys."""
    choices = sorted(allowed)
    snake = key.replace("-", "_")
    if snake != key and snake in choices:
        return f"did you mean {snake!r}?"
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.75)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"expected one of: {', '.join(choices)}"


def http_hosts_to_outbound(
    entries: Sequence[str], allow_database_access: bool
) -> tuple[list[str], list[tuple[int, str]]]:
    """The deprecated `allowed_http_hosts` as `allowed_outbound_hosts`, converted as Spin's
    compat layer does: each host allows http and https on its port (or the default ports);
    `insecure:allow-all` allows every HTTP host; manifest v1 components without
    `allowed_outbound_hosts` keep their old access to every Redis, MySQL and Postgres host.
    Returns the hosts and the (index, problem) of each invalid entry."""
    hosts = ["redis://*:*", "mysql://*:*", "postgres://*:*"] if allow_database_access else []
    if "insecure:allow-all" in entries:
        return [*hosts, "http://*:*", "https://*:*", "http://self"], []
    problems: list[tuple[int, str]] = []
    for i, entry in enumerate(entries):
        parsed = _http_host(entry)
        if isinstance(parsed, str):
            problems.append((i, parsed))
            continue
        domain, port = parsed
        if domain == "self":
            hosts.append("http://self")
        else:
            suffix = f":{port}" if port is not None else ""
            hosts += [f"http://{domain}{suffix}", f"https://{domain}{suffix}"]
    return hosts, problems


def _http_host(text: str) -> tuple[str, int | None] | str:
    """(domain, port) of an `allowed_http_hosts` entry, or why it is invalid."""
    schemed = "//" in text
    try:
        url = urlsplit(text if schemed else f"http://{text}")
        port = url.port
    except ValueError:
        return f"{text!r} isn't a valid host or host:port string"
    if schemed and url.scheme not in ("http", "https"):
        return f"{text!r} isn't a valid host or host:port string (only http and https)"
    if not url.hostname:
        return f"{text!r} doesn't contain a host name"
    if len(url.path) > 1 or url.query or url.fragment:
        return f"{text!r} contains a path: give a host and optional port only"
    host = url.netloc.rsplit("@", 1)[-1]
    host = host[: -len(f":{port}")] if port is not None and host.endswith(f":{port}") else host
    return host.lower(), port
