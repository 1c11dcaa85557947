"""Spin Python app (spin-sdk 3.4.1, componentize-py 0.17.2, world spin-http) for the outbound
PostgreSQL and MySQL tests: POST a JSON body {"api", "address", "op", "statement", "params"}.

api: "pg2" fermyon:spin/postgres, "pg3" spin:postgres@3.0.0, "mysql" fermyon:spin/mysql;
op: "query" (answers columns and rows) or "execute"; params: [[tag, value], ...].
"""

import json
from typing import Any

from spin_sdk import http
from spin_sdk.http import Request, Response
from spin_sdk.wit.imports import mysql, rdbms_types, spin_postgres_postgres_3_0_0

try:  # the name spin-sdk's componentize-py.toml gives fermyon:spin/postgres@2.0.0
    from spin_sdk.wit.imports import postgres as pg2
except ImportError:
    from spin_sdk.wit.imports import fermyon_spin_postgres as pg2

APIS: dict[str, Any] = {"pg2": (pg2, rdbms_types), "pg3": (spin_postgres_postgres_3_0_0,) * 2,
                        "mysql": (mysql, rdbms_types)}


def camel(tag: str) -> str:
    return "".join(p.capitalize() for p in tag.split("-"))


def param(types: Any, tag: str, value: Any) -> Any:
    cls = getattr(types, "ParameterValue_" + camel(tag))
    if tag == "db-null":
        return cls()
    if tag == "binary":
        return cls(bytes.fromhex(value))
    return cls(tuple(value) if isinstance(value, list) else value)


def value(v: Any) -> Any:
    tag = type(v).__name__.split("_", 1)[1]
    inner = getattr(v, "value", None)
    if isinstance(inner, bytes):
        inner = inner.hex()
    return [tag, inner]


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, body.encode())


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        req = json.loads(request.body or b"{}")
        iface, types = APIS[req["api"]]
        params = [param(types, t, v) for t, v in req.get("params", [])]
        try:
            conn = iface.Connection.open(req["address"])
            if req["op"] == "execute":
                out: Any = conn.execute(req["statement"], params)
            else:
                rs = conn.query(req["statement"], params)
                out = {"columns": [[c.name, c.data_type.name.lower()] for c in rs.columns],
                       "rows": [[value(v) for v in row] for row in rs.rows]}
        except Exception as exc:  # the host's error value surfaces as Err(variant)
            err = getattr(exc, "value", exc)
            return text(500, f"error: {type(err).__name__} {getattr(err, 'value', '')}".strip())
        return Response(200, {"content-type": "application/json"}, json.dumps({"result": out}).encode())
