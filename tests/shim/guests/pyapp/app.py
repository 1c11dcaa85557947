"""Spin Python app (spin-sdk 3.4.1, componentize-py 0.17.2) used by the shim's tests: an HTTP
handler and a Redis trigger handler (world spin-all).

Built at test time: componentize-py -w spin-all componentize app -o app.wasm
"""

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from spin_sdk import http, key_value, redis, variables
from spin_sdk.http import Request, Response, send
from spin_sdk.wit import exports

# spin_sdk.sqlite imports a module name componentize-py 0.17.2 does not generate: use the bindings
from spin_sdk.wit.imports import fermyon_spin_sqlite, spin_sqlite_sqlite
from spin_sdk.wit.imports import redis as rd


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, body.encode())


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        url = urlsplit(request.uri)
        path = url.path
        if path.startswith("/var/"):
            try:
                return text(200, variables.get(path[len("/var/"):]))
            except Exception as exc:  # the host's error value surfaces as an exception
                return text(404, f"error: {exc!r}")
        if path.startswith("/kv/"):
            store = key_value.open_default()
            key = path[len("/kv/"):]
            if request.method == "POST":
                store.set(key, request.body or b"")
                return text(201, "stored")
            value = store.get(key)
            return text(200 if value is not None else 404, (value or b"").decode())
        if path == "/file":
            with open("/data/hello.txt") as f:
                return text(200, f.read())
        if path == "/fs-probe":  # files are read-only and nothing outside them is visible
            results = []
            for probe, name, mode in (("write", "/data/new.txt", "w"),
                                      ("escape", "/data/../../etc/hostname", "r"),
                                      ("other", "/etc/passwd", "r")):
                try:
                    with open(name, mode) as f:
                        f.write("x") if mode == "w" else f.read()
                    results.append(f"{probe}=allowed")
                except OSError as exc:
                    results.append(f"{probe}=denied({type(exc).__name__})")
            return text(200, " ".join(results))
        if path.endswith("/out"):  # /out, or /<route>/out (service chaining tests)
            target = parse_qs(url.query)["url"][0]
            try:
                resp = send(Request("GET", target, {}, None))
            except Exception as exc:
                return text(502, f"denied: {exc!r}")
            return text(200, f"upstream {resp.status}: {(resp.body or b'').decode()}")
        if path == "/redis":  # not provided by the shim: the host returns the interface's error
            try:
                redis.open("redis://127.0.0.1:1")
            except Exception as exc:
                return text(200, f"redis error: {exc!r}")
            return text(200, "redis opened?")
        if path == "/sql":  # body: {"db": label, "statement": ..., "params": [...]}; rows as JSON
            return run_sql(json.loads(request.body or b"{}"))
        if path == "/redis-op":  # body: {"address", "op", "args"}; the result as JSON
            return run_redis(json.loads(request.body or b"{}"))
        if path == "/boom":
            raise RuntimeError("boom from python")
        if path == "/print":
            print("hello from the python guest")
            return text(200, "printed")
        return Response(200, {"content-type": "application/octet-stream", "x-app": "py"},
                        request.body or f"hello {request.method} {request.uri}".encode())


def to_value(sq: Any, p: object) -> object:
    if p is None:
        return sq.Value_Null()
    if isinstance(p, bool | int):
        return sq.Value_Integer(int(p))
    if isinstance(p, float):
        return sq.Value_Real(p)
    if isinstance(p, dict):
        return sq.Value_Blob(bytes.fromhex(p["blob"]))
    return sq.Value_Text(str(p))


def from_value(sq: Any, v: Any) -> object:
    if isinstance(v, sq.Value_Blob):
        return {"blob": v.value.hex()}
    if isinstance(v, sq.Value_Null):
        return None
    return v.value


def run_sql(req: dict) -> Response:
    """`api` "v2" is fermyon:spin/sqlite, "v3" spin:sqlite (which also reports the rowid and changes)."""
    v3 = req.get("api") == "v3"
    sq: Any = spin_sqlite_sqlite if v3 else fermyon_spin_sqlite
    extra = {}
    try:
        with sq.Connection.open(req.get("db", "default")) as db:
            result = db.execute(req["statement"], [to_value(sq, p) for p in req.get("params", [])])
            if v3:
                extra = {"rowid": db.last_insert_rowid(), "changes": db.changes()}
    except Exception as exc:  # the host's error value surfaces as Err(variant)
        err = getattr(exc, "value", exc)
        return text(500, f"sqlite error: {type(err).__name__} {getattr(err, 'value', '')}".strip())
    rows = [[from_value(sq, v) for v in row.values] for row in result.rows]
    return Response(200, {"content-type": "application/json"},
                    json.dumps({"columns": result.columns, "rows": rows, **extra}).encode())


def redis_result(r: Any) -> object:
    if isinstance(r, rd.RedisResult_Binary):
        return ["binary", r.value.decode()]
    return [type(r).__name__.split("_")[-1].lower(), getattr(r, "value", None)]


def run_redis(req: dict) -> Response:
    """One outbound Redis call: op in set/get/incr/del/sadd/smembers/srem/publish/execute."""
    op, args = req["op"], req.get("args", [])
    try:
        with rd.Connection.open(req["address"]) as conn:
            if op == "set":
                result: object = conn.set(args[0], args[1].encode())
            elif op == "get":
                value = conn.get(args[0])
                result = None if value is None else value.decode()
            elif op == "publish":
                result = conn.publish(args[0], args[1].encode())
            elif op in ("incr", "smembers"):
                result = getattr(conn, op)(args[0])
            elif op == "del":
                result = conn.del_(args)
            elif op in ("sadd", "srem"):
                result = getattr(conn, op)(args[0], args[1:])
            else:
                params = [rd.RedisParameter_Int64(a) if isinstance(a, int)
                          else rd.RedisParameter_Binary(a.encode()) for a in args[1:]]
                result = [redis_result(r) for r in conn.execute(args[0], params)]
    except Exception as exc:  # the host's error value surfaces as Err(variant)
        err = getattr(exc, "value", exc)
        return text(500, f"redis error: {type(err).__name__} {getattr(err, 'value', '')}".strip())
    return Response(200, {"content-type": "application/json"}, json.dumps({"result": result}).encode())


class InboundRedis(exports.InboundRedis):
    """Each message: pushed to the list `received` over outbound Redis (at variable `redis_address`)
    and inserted into the default SQLite database; "trap" makes the handler fail."""

    def handle_message(self, message: bytes) -> None:
        if message == b"trap":
            raise RuntimeError("asked to fail")
        print(f"redis message {message!r}")
        with rd.Connection.open(variables.get("redis_address")) as conn:
            conn.execute("RPUSH", [rd.RedisParameter_Binary(b"received"), rd.RedisParameter_Binary(message)])
        with fermyon_spin_sqlite.Connection.open("default") as db:
            db.execute("CREATE TABLE IF NOT EXISTS messages (m BLOB)", [])
            db.execute("INSERT INTO messages VALUES (?)", [fermyon_spin_sqlite.Value_Blob(message)])
