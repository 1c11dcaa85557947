"""Container mode: `python -m shim [DIR [ARG...]]` runs the app the way containerd-shim-spin does
(ARGs: the container's arguments, given to `[[trigger.command]]` components).

`/spin.toml` (or DIR/spin.toml), `/runtime-config.toml` if present, listen on
SPIN_HTTP_LISTEN_ADDR (default 0.0.0.0:80, what a container expects), cache in /.cache, state
in the app root; a variable also comes from the bare `<NAME>` environment variable, and an
instance's memory is capped only by SPIN_MAX_INSTANCE_MEMORY (the cgroup is the bound).
`spindle shim up` is the developer-friendly front end with loopback defaults.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from shim.errors import ShimError
from shim.runner import RunOptions, configure_logging, serve


def main(argv: list[str]) -> int:
    configure_logging()
    root = Path(argv[0]) if argv else Path("/")
    rc = root / "runtime-config.toml"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or root / ".cache") / "spindle-shim"
    opts = RunOptions(
        target=root,
        listen=os.environ.get("SPIN_HTTP_LISTEN_ADDR") or "0.0.0.0:80",
        runtime_config=rc if rc.exists() else None,
        state_dir=root,
        cache_dir=cache,
        workers=int(os.environ.get("SPINDLE_SHIM_WORKERS") or os.cpu_count() or 1),
        env_names_as_variables=True,
        max_instance_memory=None,
        command_args=tuple(argv[1:]),
    )
    try:
        return serve(opts, dict(os.environ))
    except ShimError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
