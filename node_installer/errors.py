"""The node installer's errors: one small tree, every error naming the file (or flag, or command)
it is about and what is wrong with it.

    InstallerError                 base; `subject` (a node path, a flag, a command) + `message`
    ├── UsageError                 a flag or RUNTIME_OPTIONS value that cannot be used
    ├── HostRootError              the host root is missing or not a directory
    ├── AssetError                 the shim asset is missing or is not what --sha256 says
    ├── PresetError                no containerd config of a known distribution was found
    ├── ConfigError                the containerd config cannot be edited safely
    │   ├── ConfigSyntaxError      not valid TOML (carries line and column)
    │   ├── ConfigVersionError     a `version` other than 2 or 3, or none at all
    │   └── ConfigLayoutError      the runtime table's parents are not tables, or the edit did not
    │                              produce exactly the intended change
    ├── StateError                 rcm-lock.json or the installer's state file is unreadable
    ├── FsError                    a read or write on the host failed
    │   ├── ReadOnlyError          the file system (or the file, chattr +i) is not writable
    │   └── IntegrityError         the copied shim's sha256 differs from the asset's
    ├── LockError                  another installer held the node lock for too long
    └── RestartError               containerd could not be restarted (the command and its output)

Everything except RestartError is raised before anything on the host is written (the installer
plans and checks first), so a refused run leaves the host root as it found it. A RestartError
happens after the files are in place; the state file then keeps `restart_pending` so the next run
restarts containerd even though nothing else changed.

`str(error)` is the one-line message the CLI prints: "<subject>: <message>".
"""

from __future__ import annotations


class InstallerError(Exception):
    """Base of every error the installer reports; `subject` names the file, flag or command."""

    def __init__(self, subject: str, message: str) -> None:
        super().__init__(f"{subject}: {message}")
        self.subject = subject
        self.message = message

    @property
    def kind(self) -> str:
        """The error's class name, as the JSON result reports it."""
        return type(self).__name__


class UsageError(InstallerError):
    """A flag, argument or RUNTIME_OPTIONS value that cannot be used."""


class HostRootError(InstallerError):
    """The host root (-H / HOST_ROOT) does not exist or is not a directory."""


class AssetError(InstallerError):
    """The shim asset is missing, unreadable, or does not match the expected sha256."""


class PresetError(InstallerError):
    """No containerd config of a known distribution was found under the host root."""


class ConfigError(InstallerError):
    """The containerd config cannot be edited safely."""


class ConfigSyntaxError(ConfigError):
    """The config is not valid TOML."""

    def __init__(
        self, subject: str, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        where = f"line {line}, column {column}: " if line is not None and column is not None else ""
        super().__init__(subject, f"{where}{message}")
        self.line = line
        self.column = column


class ConfigVersionError(ConfigError):
    """The config's `version` is not one the installer can write (2 or 3)."""


class ConfigLayoutError(ConfigError):
    """The runtime table cannot be placed (a parent is not a table) or the edit went wrong."""


class StateError(InstallerError):
    """rcm-lock.json or the installer's state file cannot be read."""


class FsError(InstallerError):
    """A read or write under the host root failed."""


class ReadOnlyError(FsError):
    """The file system, directory or file is not writable (read-only mount, chattr +i, permissions)."""


class IntegrityError(FsError):
    """The copied shim's sha256 is not the asset's: the copy is corrupt and was not installed."""


class LockError(InstallerError):
    """Another installer held the node lock longer than the wait allows."""


class RestartError(InstallerError):
    """containerd could not be restarted; the message carries the command and its output."""
