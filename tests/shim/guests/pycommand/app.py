"""A Spin command-trigger app (spin-sdk 3.4.1, componentize-py 0.17.2; world spin-command in
command.wit): `wasi:cli/run` once with the container's arguments.

Prints its arguments and a variable, counts its runs in the default key-value store; argument
"fail" makes `run` return its error (exit status 1).
"""

from spin_sdk import key_value, variables
from spin_sdk.wit import exports
from spin_sdk.wit.imports import environment
from spin_sdk.wit.types import Err


class Run(exports.Run):
    def run(self) -> None:
        args = environment.get_arguments()
        print(f"command args {args!r} greeting={variables.get('greeting')}", flush=True)
        store = key_value.open_default()
        runs = int((store.get("runs") or b"0").decode()) + 1
        store.set("runs", str(runs).encode())
        if "fail" in args:
            raise Err(None)
