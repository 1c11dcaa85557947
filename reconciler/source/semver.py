"""Semantic versions and ranges over Git tags (a small subset of Masterminds/npm range syntax).

Supported: comparators `>=1.2.0 <2.0.0` (space = and), `||` (or), `=1.2.3`, bare `1.2.3`, caret `^1.2`,
tilde `~1.2.3`, x-ranges `1.x`, `1.2.*`, `*`, and partial versions (`1.2` means `1.2.x`). A leading `v`
is accepted everywhere. Pre-releases match only when the caller asks for them or when a comparator in
the range names a pre-release itself (as Masterminds does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import total_ordering

_VERSION = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)
_PARTIAL = re.compile(
    r"^v?(?P<major>\d+|[xX*])(?:\.(?P<minor>\d+|[xX*]))?(?:\.(?P<patch>\d+|[xX*]))?"
    r"(?:-(?P<pre>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?$"
)
_COMPARATOR = re.compile(r"^(?P<op>>=|<=|>|<|=|\^|~>?)?\s*(?P<version>\S+)$")


class SemverError(ValueError):
    """A version or range that cannot be parsed; the message names the text."""


@total_ordering
@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        m = _VERSION.match(text.strip())
        if not m:
            raise SemverError(f"not a semantic version: {text!r}")
        pre = tuple(m["pre"].split(".")) if m["pre"] else ()
        return cls(int(m["major"]), int(m["minor"]), int(m["patch"]), pre)

    @classmethod
    def try_parse(cls, text: str) -> Version | None:
        try:
            return cls.parse(text)
        except SemverError:
            return None

    @property
    def core(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def _pre_key(self) -> tuple[tuple[int, int, str], ...]:
        # Numeric identifiers sort below alphanumeric ones (semver §11).
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        if self.core != other.core:
            return self.core < other.core
        if not self.pre or not other.pre:
            # A release sorts above its pre-releases.
            return bool(self.pre) and not other.pre
        return self._pre_key() < other._pre_key()

    def __str__(self) -> str:
        base = f"{self.major}.{self.minor}.{self.patch}"
        return f"{base}-{'.'.join(self.pre)}" if self.pre else base


@dataclass(frozen=True)
class _Comparator:
    op: str  # one of >=, <=, >, <, =
    version: Version

    def allows(self, v: Version) -> bool:
        if self.op == ">=":
            return v >= self.version
        if self.op == "<=":
            return v <= self.version
        if self.op == ">":
            return v > self.version
        if self.op == "<":
            return v < self.version
        return v == self.version


def _partial(text: str) -> tuple[list[int | None], tuple[str, ...]]:
    m = _PARTIAL.match(text)
    if not m:
        raise SemverError(f"not a version in a range: {text!r}")
    parts: list[int | None] = []
    for key in ("major", "minor", "patch"):
        raw = m[key]
        parts.append(None if raw is None or raw in "xX*" else int(raw))
    # Anything after a wildcard is a wildcard too (`1.x.3` means `1.x`).
    for i, p in enumerate(parts):
        if p is None:
            parts[i + 1 :] = [None] * (2 - i)
            break
    pre = tuple(m["pre"].split(".")) if m["pre"] else ()
    return parts, pre


def _expand(op: str, text: str) -> list[_Comparator]:
    (major, minor, patch), pre = _partial(text)
    if major is None:
        return [] if op in ("", "=", ">=", "<=", "^", "~", "~>") else [_Comparator("<", Version(0, 0, 0))]
    low = Version(major, minor or 0, patch or 0, pre)
    if op in ("^",):
        if major > 0 or minor is None:
            high = Version(major + 1, 0, 0, ("0",))
        elif minor > 0 or patch is None:
            high = Version(0, minor + 1, 0, ("0",))
        else:
            high = Version(0, 0, (patch or 0) + 1, ("0",))
        return [_Comparator(">=", low), _Comparator("<", high)]
    if op in ("~", "~>"):
        high = Version(major + 1, 0, 0, ("0",)) if minor is None else Version(major, minor + 1, 0, ("0",))
        return [_Comparator(">=", low), _Comparator("<", high)]
    if minor is None or patch is None:
        # A partial version is an x-range: `1.2` is `>=1.2.0 <1.3.0-0`.
        high = Version(major + 1, 0, 0, ("0",)) if minor is None else Version(major, minor + 1, 0, ("0",))
        if op in ("", "="):
            return [_Comparator(">=", low), _Comparator("<", high)]
        if op == ">":
            return [_Comparator(">=", high)]
        if op == "<=":
            return [_Comparator("<", high)]
        return [_Comparator(op, low)]
    return [_Comparator(op or "=", low)]


@dataclass(frozen=True)
class Range:
    text: str
    alternatives: tuple[tuple[_Comparator, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Range:
        if not text.strip():
            raise SemverError("empty semver range")
        alternatives: list[tuple[_Comparator, ...]] = []
        for alt in text.split("||"):
            # Allow `>= 1.2` with a space after the operator.
            tokens = re.sub(r"(>=|<=|>|<|=|\^|~>?)\s+", r"\1", alt.strip()).split()
            if not tokens:
                raise SemverError(f"empty alternative in semver range {text!r}")
            comparators: list[_Comparator] = []
            for token in tokens:
                m = _COMPARATOR.match(token)
                if not m:
                    raise SemverError(f"bad comparator {token!r} in semver range {text!r}")
                try:
                    comparators.extend(_expand(m["op"] or "", m["version"]))
                except SemverError as exc:
                    raise SemverError(f"{exc} (in semver range {text!r})") from None
            alternatives.append(tuple(comparators))
        return cls(text, tuple(alternatives))

    def _names_prerelease(self, v: Version) -> bool:
        return any(
            c.version.pre and c.version.core == v.core and c.version.pre != ("0",)
            for alt in self.alternatives
            for c in alt
        )

    def allows(self, v: Version, *, include_prerelease: bool = False) -> bool:
        if v.pre and not include_prerelease and not self._names_prerelease(v):
            return False
        return any(all(c.allows(v) for c in alt) for alt in self.alternatives)


def highest_match(
    tags: Iterable[str], constraint: str, *, include_prerelease: bool = False
) -> tuple[str, Version] | None:
    """The tag with the highest version inside `constraint`, or None. Non-semver tags are ignored."""
    rng = Range.parse(constraint)
    best: tuple[str, Version] | None = None
    for tag in tags:
        v = Version.try_parse(tag)
        if v is None or not rng.allows(v, include_prerelease=include_prerelease):
            continue
        if best is None or v > best[1]:
            best = (tag, v)
    return best
