"""Node artifacts: the frozen containerd shim, its release tarball and the node-installer image.

    freeze    a console program → one self-contained executable (PyInstaller one-dir bundle behind a
              small C launcher that unpacks it once per build; `launcher.c`)
    release   containerd-shim-spin-v2-linux-<arch>.tar.gz and its .sha256, reproducible bytes
    image     the node-installer OCI image (no Docker): the frozen installer as the entrypoint, the
              shim at /assets/containerd-shim-spin-v2, the glibc files both link; pushed by `oci`
    errors    NodeBuildError and below

`spindle node build | image | push` (reconciler/cli/node_cmds.py) is the front end.
"""
