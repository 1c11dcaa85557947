"""Errors of `reconciler.node`; each message says what failed and, for a missing tool, how to get it.

    NodeBuildError
    ├── MissingTool    PyInstaller, a C compiler, zlib headers or `strip` is not on the build machine
    ├── FreezeError    PyInstaller or the launcher build failed (the log's tail), or a bundle is malformed
    └── ImageError     the node-installer image cannot be assembled (a library the programs need is
                       not on the build machine)

Registry failures stay `oci.errors.OciError`s (the reference and the registry are in the message).
"""

from __future__ import annotations


class NodeBuildError(Exception):
    """Building node artifacts failed."""


class MissingTool(NodeBuildError):
    """A build tool is missing; the message names the package that provides it."""


class FreezeError(NodeBuildError):
    """Freezing a program failed."""


class ImageError(NodeBuildError):
    """The node-installer image cannot be assembled."""
