"""Installs and removes the Spin shim on a node's host root and registers it with containerd.

`spindle-node-installer install|uninstall -H /mnt/node-root -r spin-v2` takes the arguments and
environment (HOST_ROOT, RUNTIME_OPTIONS) runtime-class-manager's installer Job gives its
`rcm-node-installer`, so spindle's image can stand in that Job unchanged.

Modules, pure core first, I/O at the edges:

    errors           the error tree; every error names the file, flag or command
    presets          which containerd config a distribution uses (detection; pure)
    containerd_toml  the runtime table in a containerd config, edited with tomlkit (pure)
    state            rcm-lock.json (RCM's format) and the installer's own record (pure)
    plan             node files in, file actions and a restart decision out (pure)
    hostfs           the host-root filesystem seam: reads, atomic writes, writability checks
    system           the process seam: commands, /proc, signals
    restart          containerd's restart per preset, through PID 1's namespaces
    locking          one installer at a time per node (flock)
    installer        the run: snapshot, plan, check, lock, write, restart
    cli              the command line

Matched against spinframework/runtime-class-manager at 25903b3 (`cmd/node-installer/{install,
uninstall,config,detect_test}.go`, `internal/containerd/{configure,restart_unix}.go`,
`internal/shim/install_test.go`), its ancestor KWasm/kwasm-node-installer (`pkg/state/{state,
shim}.go`, `pkg/shim/{install,uninstall,shim}.go`, `testdata/shim/opt/kwasm/kwasm-lock.json`) and
k3s's runtime discovery (`findWasiRuntimes`: `spin` -> io.containerd.spin.v2). Where spindle
differs from RCM, on purpose: the config is edited as TOML instead of appending text when the
runtime name appears nowhere in the file (so k3s's `spin` entry is recognised by table, and an
uninstall works even when the options changed); version 3 is recognised by the `version` key, not
by the substring "version = 3"; options are written as TOML values (RCM quotes them); a restart
also follows a config change, not only a new binary; the binary is replaced by rename, not
truncated in place; `-k` defaults to /opt/kwasm (RCM: /opt/rcm).
"""
