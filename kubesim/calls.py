"""One API request as the verbs see it (`Call`), and their answer (`Reply`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from kubesim.errors import Cause, invalid
from kubesim.resources import ResourceType


@dataclass
class Call:
    rtype: ResourceType
    namespace: str
    name: str
    subresource: str
    query: dict[str, str]
    body: bytes = b""
    content_type: str = ""
    user_agent: str = ""

    @property
    def dry_run(self) -> bool:
        value = self.query.get("dryRun")
        if value is None or value == "":
            return False
        if value != "All":
            raise invalid(
                "CreateOptions",
                "meta.k8s.io",
                "",
                [
                    Cause(
                        "FieldValueNotSupported",
                        f'Unsupported value: "{value}": supported values: "All"',
                        "dryRun[0]",
                    )
                ],
            )
        return True

    def manager(self) -> str:
        given = self.query.get("fieldManager")
        if given:
            if len(given) > 128:
                raise invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    [Cause("FieldValueTooLong", "Too long: may not be more than 128 bytes", "fieldManager")],
                )
            return given
        return (self.user_agent.split("/", 1)[0] or "unknown")[:128]


@dataclass
class Reply:
    code: int
    body: dict[str, Any] | None = None
    text: str | None = None  # pre-encoded JSON (lists, and stored objects sent as they are stored)
    warnings: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        """The answer as an object (decoded from `text` when it was sent pre-encoded)."""
        if self.body is not None:
            return self.body
        obj: dict[str, Any] = json.loads(self.text or "{}")
        return obj
