"""The semver range matcher used to pick tags."""

from __future__ import annotations

import pytest

from reconciler.source.semver import Range, SemverError, Version, highest_match


@pytest.mark.parametrize(
    ("constraint", "version", "allowed"),
    [
        (">=1.2.0 <2.0.0", "1.2.0", True),
        (">=1.2.0 <2.0.0", "1.9.9", True),
        (">=1.2.0 <2.0.0", "2.0.0", False),
        (">=1.2.0 <2.0.0", "1.1.9", False),
        ("^1.2", "1.2.0", True),
        ("^1.2", "1.99.0", True),
        ("^1.2", "2.0.0", False),
        ("^1.2", "1.1.0", False),
        ("^0.2.3", "0.2.9", True),
        ("^0.2.3", "0.3.0", False),
        ("^0.0.3", "0.0.4", False),
        ("~1.2.3", "1.2.9", True),
        ("~1.2.3", "1.3.0", False),
        ("~1.2.3", "1.2.2", False),
        ("~1", "1.9.0", True),
        ("1.x", "1.0.0", True),
        ("1.x", "1.7.3", True),
        ("1.x", "2.0.0", False),
        ("1.2.*", "1.2.5", True),
        ("1.2.*", "1.3.0", False),
        ("1.2", "1.2.7", True),
        ("*", "9.9.9", True),
        ("=1.2.3", "1.2.3", True),
        ("1.2.3", "1.2.4", False),
        ("v1.2.3", "v1.2.3", True),
        (">1.2", "1.2.9", False),
        (">1.2", "1.3.0", True),
        ("<=1.2", "1.2.9", True),
        ("<1.2", "1.1.9", True),
        ("<1.2", "1.2.0", False),
        ("1.x || >=3.0.0", "3.1.0", True),
        ("1.x || >=3.0.0", "2.1.0", False),
        (">= 1.0.0, < 2", "1.5.0", None),  # comma is not supported: error
        # Pre-releases are excluded unless the range names one on the same version.
        (">=1.0.0", "1.3.0-rc.1", False),
        ("^1.2", "1.3.0-rc.1", False),
        (">=1.3.0-rc.0 <2", "1.3.0-rc.1", True),
        (">=1.3.0-rc.0 <2", "1.4.0-rc.1", False),
    ],
)
def test_range(constraint: str, version: str, allowed: bool | None) -> None:
    if allowed is None:
        with pytest.raises(SemverError):
            Range.parse(constraint)
        return
    assert Range.parse(constraint).allows(Version.parse(version)) is allowed


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-alpha.beta", "1.0.0-beta"),
        ("1.0.0-beta.2", "1.0.0-beta.11"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0", "1.0.1"),
        ("1.9.0", "1.10.0"),
    ],
)
def test_precedence(smaller: str, larger: str) -> None:
    assert Version.parse(smaller) < Version.parse(larger)
    assert not Version.parse(larger) < Version.parse(smaller)


@pytest.mark.parametrize("bad", ["", "banana", ">=x.y.z.w", "1.2.3.4", "^"])
def test_bad_ranges_name_the_text(bad: str) -> None:
    with pytest.raises(SemverError):
        Range.parse(bad)


def test_highest_match_ignores_non_semver_and_prereleases() -> None:
    tags = ["latest", "v1.0.0", "v1.10.0", "v1.9.0", "v1.11.0-rc.1", "2.0.0", "release-3"]
    assert highest_match(tags, "^1") == ("v1.10.0", Version(1, 10, 0))
    match = highest_match(tags, "^1", include_prerelease=True)
    assert match is not None and match[0] == "v1.11.0-rc.1"
    assert highest_match(tags, "^5") is None
