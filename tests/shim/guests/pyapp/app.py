"""Spin Python app (spin-sdk 3.4.1, componentize-py 0.17.2) used by the shim's tests.

Built at test time: componentize-py -w spin-http componentize app -o app.wasm
"""

from urllib.parse import parse_qs, urlsplit

from spin_sdk import http, key_value, redis, variables
from spin_sdk.http import Request, Response, send


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
        if path == "/out":
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
        if path == "/boom":
            raise RuntimeError("boom from python")
        if path == "/print":
            print("hello from the python guest")
            return text(200, "printed")
        return Response(200, {"content-type": "application/octet-stream", "x-app": "py"},
                        request.body or f"hello {request.method} {request.uri}".encode())
