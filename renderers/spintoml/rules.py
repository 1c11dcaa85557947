"""Value rules of the Spin manifest, each a pure function returning a problem text or None.

Ids follow spin_serde's `Id` rules: words separated by one delimiter, each word starting with an
ASCII letter (later words may start with a digit), all-lowercase or all-UPPERCASE alphanumerics.
"""

from __future__ import annotations

import ipaddress
import re

_TEMPLATE = re.compile(r"\{\{(.*?)\}\}")
_SCHEME = re.compile(r"^(\*|[A-Za-z][A-Za-z0-9+.-]*)$")
_LABEL = re.compile(r"^(\*|[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)$")
_PORT_RANGE = re.compile(r"^(\d+)(?:\.\.(\d+)|-(\d+))?$")
_PLACEHOLDER = "templated"


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


def outbound_host_problem(host: str) -> str | None:
    """Why an `allowed_outbound_hosts` entry is invalid, or None. Templates must already have
    been checked; they are treated as opaque host/port text here."""
    if host == "insecure:allow-all":
        return None
    text = _TEMPLATE.sub(_PLACEHOLDER, host)
    scheme, sep, rest = text.partition("://")
    if not sep:
        return f"{host!r} must be in the form scheme://host[:port] (no scheme given)"
    if not _SCHEME.match(scheme):
        return f"{host!r}: invalid scheme {scheme!r}"
    if rest.endswith("/"):
        rest = rest[:-1]
    if "/" in rest and not _is_cidr(rest):
        return f"{host!r} must not contain a path"
    hostpart, port = _split_port(rest)
    if hostpart is None:
        return f"{host!r}: invalid host"
    if not hostpart:
        return f"{host!r} has no host"
    if port is not None:
        problem = _port_problem(port)
        if problem:
            return f"{host!r}: {problem}"
    return _host_problem(host, hostpart)


def _split_port(rest: str) -> tuple[str | None, str | None]:
    if rest.startswith("["):  # [ipv6]:port
        end = rest.find("]")
        if end < 0:
            return None, None
        host, after = rest[: end + 1], rest[end + 1 :]
        if after and not after.startswith(":"):
            return None, None
        return host, after[1:] if after else None
    host, sep, port = rest.rpartition(":")
    if not sep:
        return rest, None
    return host, port


def _port_problem(port: str) -> str | None:
    if port in ("*", _PLACEHOLDER):
        return None
    match = _PORT_RANGE.match(port)
    if not match:
        return f"invalid port {port!r} (a number, a range like 8000-8010, or '*')"
    low = int(match.group(1))
    high_text = match.group(2) or match.group(3)
    high = int(high_text) if high_text else low
    if high > 65535:
        return f"port {high} is out of range"
    if low > high:
        return f"port range {port!r} is empty"
    return None


def _is_cidr(text: str) -> bool:
    host, _, _port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    try:
        ipaddress.ip_network(host, strict=False)
    except ValueError:
        return False
    return True


def _host_problem(original: str, host: str) -> str | None:
    if host in ("*", _PLACEHOLDER) or _is_cidr(host):
        return None
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{original!r}: invalid IPv6 address {host!r}"
        return None
    labels = host.split(".")
    for i, label in enumerate(labels):
        if label == "*" and i != 0:
            return f"{original!r}: a '*' wildcard is only allowed as the first host label"
        if not _LABEL.match(label):
            return f"{original!r}: invalid host {host!r}"
    return None
