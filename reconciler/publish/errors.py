"""Publishing errors: each names the project (its spin.toml), and the component or file when there is one.

PublishError            a project cannot be published (what, and where: "apps/hello/spin.toml:
│                       component 'hello'")
├── SourceFetchError    a `source = { url, digest }` could not be fetched or did not match its digest
├── BuildError          a component's build command failed (the command and its exit status)
└── PushError           the registry refused or could not be reached (the registry's own error)
"""

from __future__ import annotations


class PublishError(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


class SourceFetchError(PublishError):
    """A URL source could not be downloaded, or its bytes do not hash to the manifest's digest."""


class BuildError(PublishError):
    """A build command exited non-zero or could not be started."""


class PushError(PublishError):
    """Talking to the registry failed; the message carries the registry's answer."""
