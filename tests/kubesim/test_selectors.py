"""Label and field selector parsing (pure), as the API server reads them."""

from __future__ import annotations

import pytest

from kubesim.errors import ApiError
from kubesim.selectors import parse_fields, parse_labels

LABELS = {"app": "web", "tier": "front", "env": "prod", "empty": ""}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=web", True),
        ("app = web", True),
        ("app==web,tier=front", True),
        ("app=db", False),
        ("app!=db", True),
        ("missing!=x", True),
        ("env in (prod, staging)", True),
        ("env notin (prod)", False),
        ("missing notin (a)", True),
        ("tier", True),
        ("!tier", False),
        ("!missing", True),
        ("empty=", True),
        ("example.com/team", False),
        ("app=web,!missing,env in (prod)", True),
    ],
)
def test_label_selector(selector: str, matches: bool) -> None:
    assert parse_labels(selector)(LABELS) is matches


@pytest.mark.parametrize("selector", ["app in (", "=web", "app=we b", "a,,b", "app in (a b)", "!"])
def test_bad_label_selectors_are_400(selector: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_labels(selector)
    assert info.value.code == 400


@pytest.mark.parametrize(
    ("selector", "extra", "obj", "matches"),
    [
        ("metadata.name=a", (), {"metadata": {"name": "a"}}, True),
        ("metadata.name!=a", (), {"metadata": {"name": "a"}}, False),
        ("metadata.namespace==ns", (), {"metadata": {"namespace": "ns"}}, True),
        ("type=Opaque", ("type",), {"type": "Opaque"}, True),
        ("spec.unschedulable=false", ("spec.unschedulable",), {"spec": {"unschedulable": False}}, True),
        ("source=spindle", ("source",), {"source": {"component": "spindle"}}, True),
        ("status.phase=", ("status.phase",), {}, True),
    ],
)
def test_field_selector(selector: str, extra: tuple[str, ...], obj: dict[str, object], matches: bool) -> None:
    assert parse_fields(selector, extra)(obj) is matches


@pytest.mark.parametrize("selector", ["spec.replicas=1", "metadata.labels=x", "nonsense"])
def test_unsupported_field_selectors_are_400(selector: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_fields(selector)
    assert info.value.code == 400
