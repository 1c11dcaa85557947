"""Planning an install or uninstall: node files in, a list of file actions out (pure).

The installer reads a `Snapshot` of every file the plan may look at (the preset files, rcm-lock.json,
the state file, backups) and the sha256 of the installed shim, then `plan_install` /
`plan_uninstall` decide everything: which preset, which file, what text, what to copy, whether to
restart. Nothing here touches the host, so every refusal (unparsable TOML, unknown version,
missing config) happens before the first write, and tests run the same code on plain mappings.

Install, for runtime NAME (= the RuntimeClass handler, e.g. `spin-v2`):
1. the shim: copied to `<rcm-path>/bin/containerd-shim-NAME` when the binary on disk does not hash
   to the asset (absent, older, or changed behind rcm-lock.json's back); rcm-lock.json records it;
2. the config: the runtime table is added (see containerd_toml). A table with that name that is
   already there is left alone (`existing`: k3s's own `spin` entry, an operator's hand-written
   one) unless it is the installer's own, or points at the installed binary (`adopted`: an earlier
   RCM run), in which case it is brought up to date (runtime_type, options);
3. the first time the config changes, its current bytes are kept at `<rcm-path>/backups/NAME/<node
   path>`; a later install never overwrites that copy;
4. a restart is planned when the config or the binary changed, or an earlier restart did not
   happen (`restart_pending`).

Write order: binary, rcm-lock.json, backup, config, state. The config is written after the binary
it names, so containerd never sees a runtime whose binary is missing.

Uninstall: the config is restored from the backup byte for byte when it is still exactly what the
installer left (or the file the installer created is removed); when something else changed it
since, only the runtime table is removed (and the backup is kept, said in the notes). The binary,
its rcm-lock.json entry and the state record go; a restart is planned when anything changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from node_installer import containerd_toml, presets, state
from node_installer.containerd_toml import Config, OptionValue, RuntimeEntry
from node_installer.errors import PresetError, UsageError
from node_installer.presets import PresetName, Target

DEFAULT_RCM_PATH = PurePosixPath("/opt/kwasm")


@dataclass(frozen=True)
class Request:
    runtime: str  # runtime name = RuntimeClass handler, e.g. "spin-v2"
    rcm_path: PurePosixPath = DEFAULT_RCM_PATH
    runtime_config: PurePosixPath | None = None
    options: Mapping[str, OptionValue] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.runtime or "/" in self.runtime or self.runtime in (".", ".."):
            raise UsageError("-r/--runtime", f"not a runtime name: {self.runtime!r}")
        if not self.rcm_path.is_absolute():
            raise UsageError("-k/--rcm-path", f"must be an absolute node path, not {self.rcm_path}")

    @property
    def binary_name(self) -> str:
        return state.SHIM_PREFIX + self.runtime

    @property
    def binary_path(self) -> PurePosixPath:
        return self.rcm_path / state.BIN_DIR / self.binary_name

    @property
    def lock_path(self) -> PurePosixPath:
        return self.rcm_path / state.LOCK_FILE

    @property
    def state_path(self) -> PurePosixPath:
        return self.rcm_path / state.STATE_FILE

    @property
    def node_lock_path(self) -> PurePosixPath:
        return self.rcm_path / state.NODE_LOCK

    def backup_path(self, config: PurePosixPath) -> PurePosixPath:
        return self.rcm_path / state.BACKUP_DIR / self.runtime / str(config).lstrip("/")

    @property
    def runtime_type_alias(self) -> str:
        """The `io.containerd.<name>.<version>` runtime type that resolves to the same shim binary."""
        family, _, version = self.runtime.rpartition("-")
        return f"io.containerd.{family}.{version}" if family else f"io.containerd.{self.runtime}"


@dataclass(frozen=True)
class Asset:
    path: Path  # in the installer's own filesystem (/assets/containerd-shim-NAME)
    sha256: str


@dataclass(frozen=True)
class Snapshot:
    """Node files as read before planning: path → bytes, None for a file that does not exist."""

    files: Mapping[PurePosixPath, bytes | None]
    binary_sha256: str | None = None

    def read(self, path: PurePosixPath) -> bytes | None:
        if path not in self.files:
            raise KeyError(f"{path} was not read into the snapshot")
        return self.files[path]

    def exists(self, path: PurePosixPath) -> bool:
        return self.files.get(path) is not None


@dataclass(frozen=True)
class WriteFile:
    path: PurePosixPath
    data: bytes
    what: str
    mode: int = 0o644


@dataclass(frozen=True)
class RemoveFile:
    path: PurePosixPath
    what: str


@dataclass(frozen=True)
class CopyBinary:
    source: Path
    path: PurePosixPath
    sha256: str
    what: str = "shim binary"


Action = WriteFile | RemoveFile | CopyBinary


@dataclass(frozen=True)
class Plan:
    operation: Literal["install", "uninstall"]
    runtime: str
    preset: str | None
    config_path: PurePosixPath | None
    version: int | None
    table: str  # added updated unchanged adopted existing | restored removed absent kept
    config_changed: bool
    binary_changed: bool
    restart: bool
    actions: tuple[Action, ...]  # before the restart
    after_restart: tuple[Action, ...] = ()  # once containerd has been restarted
    without_restart: tuple[Action, ...] = ()  # when the restart is skipped (--no-restart)
    notes: tuple[str, ...] = ()
    binary_path: PurePosixPath | None = None
    binary_sha256: str | None = None
    backup: PurePosixPath | None = None

    @property
    def changed(self) -> bool:
        return bool(self.actions)

    def paths(self) -> list[PurePosixPath]:
        """Every node path this plan writes or removes."""
        every = (*self.actions, *self.after_restart, *self.without_restart)
        return list(dict.fromkeys(action.path for action in every))


def read_paths(request: Request, records: Mapping[str, state.RuntimeRecord]) -> tuple[PurePosixPath, ...]:
    """The node files a plan for `request` may read (state files first, see `Snapshot`)."""
    paths = [request.lock_path, request.state_path, *presets.probe_paths(request.runtime_config)]
    record = records.get(request.runtime)
    if record is not None:
        paths.append(PurePosixPath(record.config))
        if record.backup:
            paths.append(PurePosixPath(record.backup))
    for config in list(paths):
        paths.append(request.backup_path(config))
    return tuple(dict.fromkeys(paths))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- install ----------------------------------------------------------------------------------------


def plan_install(snapshot: Snapshot, request: Request, asset: Asset) -> Plan:
    records = state.decode_state(request.state_path, snapshot.read(request.state_path))
    lock = state.decode_lock(request.lock_path, snapshot.read(request.lock_path))
    record = records.get(request.runtime)
    notes: list[str] = []

    target = presets.detect(snapshot.exists, request.runtime_config)
    if target.also_found:
        notes.append(f"also found files of {', '.join(target.also_found)}; using {target.preset.name}")
    if record is not None and record.config != str(target.config_path):
        notes.append(f"an earlier install edited {record.config}; this one edits {target.config_path}")
        record = None
    config_path = target.config_path
    current = snapshot.read(config_path)
    cfg, version = _load_target(snapshot, target, current)
    runtime_type = str(request.binary_path)
    options = dict(request.options)
    existing = cfg.runtime(version, request.runtime)
    owned = record is not None and record.table in ("added", "adopted")

    new_text: str | None = None
    table: str
    if existing is None:
        provided = _provided_by_base(snapshot, target, cfg, version, request.runtime)
        if provided is not None:
            table = "existing"
            notes.append(
                f"{target.rendered_config} (rendered by {target.preset.name} from its base template) already "
                f"defines runtime {provided.describe()}; not duplicated in {config_path}"
            )
        else:
            new_text = cfg.with_runtime(version, request.runtime, runtime_type, options)
            table = "added"
    elif owned or existing.runtime_type == runtime_type:
        table = record.table if owned and record is not None else "adopted"
        if existing.runtime_type != runtime_type or dict(existing.options) != options:
            stripped = Config(
                config_path, cfg.without_runtime(version, request.runtime), template=cfg.template
            )
            new_text = stripped.with_runtime(version, request.runtime, runtime_type, options)
        if table == "adopted" and not owned:
            notes.append(
                f"{config_path} already had runtime {request.runtime} pointing at {runtime_type}; adopted it"
            )
    else:
        table = "existing"
        notes.append(
            f"{config_path} already defines runtime {existing.describe()}; left as is, not duplicated "
            f"(pods with handler {request.runtime} use that entry, not {runtime_type})"
        )
    notes += _related_runtimes(cfg, version, request, target)
    if cfg.cri_disabled(version):
        notes.append(
            f"{config_path}: disabled_plugins disables the CRI plugin; Kubernetes cannot use the runtime"
        )

    base_bytes = current if current is not None else b""
    new_bytes = new_text.encode() if new_text is not None else None
    config_changed = new_bytes is not None and (current is None or new_bytes != current)
    final_config = new_bytes if config_changed and new_bytes is not None else current
    if table == "existing":
        table_status = "existing"
    elif config_changed:
        table_status = "added" if existing is None else "updated"
    else:
        table_status = "unchanged"

    actions: list[Action] = []
    # 1. the binary
    on_disk = snapshot.binary_sha256
    locked = lock.get(request.runtime)
    binary_changed = on_disk != asset.sha256
    if binary_changed:
        actions.append(CopyBinary(asset.path, request.binary_path, asset.sha256))
        if on_disk is not None and locked is not None and locked.sha256 != on_disk:
            notes.append(
                f"{request.binary_path} did not match rcm-lock.json (changed or corrupted); replaced"
            )
    entry = state.LockedShim(sha256=asset.sha256, path=str(request.binary_path))
    if locked != entry:
        new_lock = {**lock, request.runtime: entry}
        actions.append(WriteFile(request.lock_path, state.encode_lock(new_lock), "rcm-lock.json"))
    # 2. the backup, once
    existed_before = record.config_existed if record is not None else current is not None
    backup: PurePosixPath | None = PurePosixPath(record.backup) if record and record.backup else None
    if config_changed and current is not None and backup is None and existed_before:
        backup = request.backup_path(config_path)
        if not snapshot.exists(backup):
            actions.append(WriteFile(backup, current, f"backup of {config_path}"))
    # 3. the config
    if config_changed and final_config is not None:
        what = "containerd config"
        if current is None and target.copy_from is not None:
            what = f"containerd template (copied from {target.copy_from})"
        elif current is None:
            what = "containerd drop-in"
        actions.append(WriteFile(config_path, final_config, what))
    # 4. the state record
    pending_before = record.restart_pending if record is not None else False
    restart = config_changed or binary_changed or pending_before
    new_record = state.RuntimeRecord(
        preset=target.preset.name.value,
        config=str(config_path),
        config_existed=existed_before,
        backup=str(backup) if backup is not None else None,
        config_sha256=sha256_hex(final_config if final_config is not None else base_bytes),
        version=version,
        table=table,
        copied_from=(
            record.copied_from
            if record is not None
            else (str(target.copy_from) if target.copy_from and current is None and config_changed else None)
        ),
        restart_pending=restart,
        options={k: v for k, v in options.items()},
    )
    after_restart: tuple[Action, ...] = ()
    if records.get(request.runtime) != new_record:
        actions.append(_state_write(request, {**records, request.runtime: new_record}))
    if restart:
        done = new_record.with_restart_pending(False)
        after_restart = (_state_write(request, {**records, request.runtime: done}),)
    return Plan(
        operation="install",
        runtime=request.runtime,
        preset=target.preset.name.value,
        config_path=config_path,
        version=version,
        table=table_status,
        config_changed=config_changed,
        binary_changed=binary_changed,
        restart=restart,
        actions=tuple(actions),
        after_restart=after_restart,
        notes=tuple(notes),
        binary_path=request.binary_path,
        binary_sha256=asset.sha256,
        backup=backup,
    )


# -- uninstall --------------------------------------------------------------------------------------


def plan_uninstall(snapshot: Snapshot, request: Request) -> Plan:
    records = state.decode_state(request.state_path, snapshot.read(request.state_path))
    lock = state.decode_lock(request.lock_path, snapshot.read(request.lock_path))
    record = records.get(request.runtime)
    notes: list[str] = []
    actions: list[Action] = []
    table = "absent"
    config_changed = False
    backup: PurePosixPath | None = None
    restored = False

    if record is not None:
        config_path = PurePosixPath(record.config)
        preset_name: str | None = record.preset
        version: int | None = record.version
        current = snapshot.read(config_path)
        if record.backup:
            backup = PurePosixPath(record.backup)
        if record.table == "existing":
            table = "kept"
            notes.append(f"runtime {request.runtime} in {config_path} was not written by the installer; kept")
        elif current is None:
            notes.append(f"{config_path} no longer exists; nothing to remove from it")
        elif record.table == "added" and sha256_hex(current) == record.config_sha256:
            backup_bytes = snapshot.read(backup) if backup is not None else None
            if not record.config_existed:
                actions.append(RemoveFile(config_path, "containerd config the installer created"))
                table, config_changed, restored = "removed", True, True
            elif backup_bytes is not None:
                if backup_bytes != current:
                    actions.append(
                        WriteFile(config_path, backup_bytes, f"containerd config (restored from {backup})")
                    )
                    config_changed = True
                table, restored = "restored", True
            else:
                notes.append(f"the backup {backup} is gone; removing only the runtime table")
        if record.table in ("added", "adopted") and current is not None and not restored:
            cfg = Config.from_bytes(config_path, current, template=config_path.name.endswith(".tmpl"))
            if record.table == "added" and sha256_hex(current) != record.config_sha256:
                notes.append(f"{config_path} changed since the install; removed only the runtime table")
            if cfg.runtime(record.version, request.runtime) is not None:
                text = cfg.without_runtime(record.version, request.runtime).encode()
                actions.append(WriteFile(config_path, text, "containerd config (runtime table removed)"))
                table, config_changed = "removed", True
        if backup is not None and snapshot.exists(backup):
            if restored:
                actions.append(RemoveFile(backup, "backup (restored)"))
            else:
                notes.append(f"the pre-install copy of {config_path} stays at {backup}")
    else:
        target = _detect_for_uninstall(snapshot, request, notes)
        if target is None:
            config_path, preset_name, version = None, None, None
        else:
            config_path, preset_name = target.config_path, target.preset.name.value
            current = snapshot.read(config_path)
            if current is None:
                version = None
            else:
                cfg, version = _load_target(snapshot, target, current)
                entry = cfg.runtime(version, request.runtime)
                if entry is not None and entry.runtime_type == str(request.binary_path):
                    text = cfg.without_runtime(version, request.runtime).encode()
                    actions.append(WriteFile(config_path, text, "containerd config (runtime table removed)"))
                    table, config_changed = "removed", True
                    notes.append(f"removed runtime {request.runtime} (it pointed at {request.binary_path})")
                elif entry is not None:
                    table = "kept"
                    notes.append(
                        f"{config_path} defines runtime {entry.describe()}; not the installer's, kept"
                    )

    binary_present = snapshot.binary_sha256 is not None
    if binary_present:
        actions.append(RemoveFile(request.binary_path, "shim binary"))
    if request.runtime in lock:
        remaining = {name: shim for name, shim in lock.items() if name != request.runtime}
        actions.append(WriteFile(request.lock_path, state.encode_lock(remaining), "rcm-lock.json"))
    restart = config_changed or binary_present or (record is not None and record.restart_pending)
    rest = {name: r for name, r in records.items() if name != request.runtime}
    final: tuple[Action, ...] = ()
    if record is not None:
        final = (_state_write(request, rest) if rest else RemoveFile(request.state_path, "installer state"),)
    after_restart: tuple[Action, ...] = ()
    without_restart: tuple[Action, ...] = ()
    if restart and record is not None:
        pending = record.with_restart_pending(True)
        if pending != record:
            actions.append(_state_write(request, {**records, request.runtime: pending}))
        after_restart = without_restart = final
    else:
        actions.extend(final)
    if not actions and not restart:
        notes.append(f"runtime {request.runtime} is not installed on this node; nothing to do")
    return Plan(
        operation="uninstall",
        runtime=request.runtime,
        preset=preset_name,
        config_path=config_path,
        version=version,
        table=table,
        config_changed=config_changed,
        binary_changed=binary_present,
        restart=restart,
        actions=tuple(actions),
        after_restart=after_restart,
        without_restart=without_restart,
        notes=tuple(notes),
        binary_path=request.binary_path,
        backup=backup,
    )


# -- helpers ----------------------------------------------------------------------------------------


def _state_write(request: Request, records: Mapping[str, state.RuntimeRecord]) -> WriteFile:
    return WriteFile(request.state_path, state.encode_state(dict(records)), "installer state")


def _load_target(snapshot: Snapshot, target: Target, current: bytes | None) -> tuple[Config, int]:
    """The config to edit (the rendered config for a template still to be created, an empty
    drop-in) and its version (its own, else the version source's)."""
    path = target.config_path
    template = path.name.endswith(".tmpl")
    if current is None:
        if target.copy_from is not None:
            source = snapshot.read(target.copy_from)
            if source is None:
                raise PresetError(str(target.copy_from), "missing; cannot create the template from it")
            cfg = Config.from_bytes(path, source, template=template)
        elif target.create:
            cfg = Config(path, "")
        else:
            raise PresetError(str(path), "containerd config does not exist")
    else:
        cfg = Config.from_bytes(path, current, template=template)
    version = cfg.declared_version
    source_name = "version"
    if version is None and target.version_source is not None and target.version_source != path:
        source_bytes = snapshot.read(target.version_source)
        if source_bytes is not None:
            version = Config.from_bytes(target.version_source, source_bytes).declared_version
            source_name = f"version (taken from {target.version_source})"
    containerd_toml.cri_plugin(path, version, source_name)
    assert version is not None  # cri_plugin raised otherwise
    if current is None and target.create:
        cfg = Config(path, f"version = {version}\n")
    return cfg, version


def _provided_by_base(
    snapshot: Snapshot, target: Target, cfg: Config, version: int, name: str
) -> RuntimeEntry | None:
    """k3s/RKE2: the runtime as rendered from the base template the edited template includes."""
    rendered_path = target.rendered_config
    if rendered_path is None or rendered_path == target.config_path or not cfg.includes_base_template:
        return None
    rendered = snapshot.read(rendered_path)
    if rendered is None:
        return None
    return Config.from_bytes(rendered_path, rendered).runtime(version, name)


def _related_runtimes(cfg: Config, version: int, request: Request, target: Target) -> list[str]:
    """Other runtime entries for the same shim (k3s adds `spin` -> io.containerd.spin.v2 when it
    finds containerd-shim-spin-v2 on its PATH); reported so nobody wonders which one pods use."""
    out = []
    for name, entry in cfg.runtimes(version).items():
        if name == request.runtime:
            continue
        same_type = entry.runtime_type in (request.runtime_type_alias, str(request.binary_path))
        same_binary = (
            entry.binary_name is not None and PurePosixPath(entry.binary_name).name == request.binary_name
        )
        if same_type or same_binary:
            by = (
                f" (added by {target.preset.name})"
                if target.preset.name in (PresetName.K3S, PresetName.RKE2)
                else ""
            )
            out.append(
                f"runtime {entry.describe()} also uses this shim{by}; it is not the handler {request.runtime}"
            )
    return out


def _detect_for_uninstall(snapshot: Snapshot, request: Request, notes: list[str]) -> Target | None:
    try:
        return presets.detect(snapshot.exists, request.runtime_config)
    except PresetError as exc:
        notes.append(f"no containerd config to clean up ({exc.message})")
        return None
