"""Which resource types are served right now: the built-ins plus every established CRD's."""

from __future__ import annotations

from kubesim import crds
from kubesim.resources import BUILTINS, CRD_TYPE, ResourceType
from kubesim.storage import Store


class Registry:
    def __init__(self, store: Store) -> None:
        self._store = store
        # The store's own lock: callers already holding it (writes) may look types up, so a
        # second lock here could deadlock against a reader taking them in the other order.
        self._lock = store.lock
        self._stamp = -1
        self._types: list[ResourceType] = list(BUILTINS)
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._refresh()

    def _crd_stamp(self) -> int:
        # The CRD set changes only through writes to customresourcedefinitions.
        return self._store.last_write.get(CRD_TYPE.storage_key, 0)

    def _refresh(self) -> None:
        if self._crd_stamp() == self._stamp:  # the common case, without waiting for the writer lock
            return
        with self._lock:
            stamp = self._crd_stamp()
            if stamp == self._stamp:
                return
            types = list(BUILTINS)
            for entry in self._store.items(CRD_TYPE.storage_key):
                crd = entry.obj
                if (crd.get("metadata") or {}).get("deletionTimestamp"):
                    continue
                if crds.validate_crd(crd):
                    continue
                # A CRD never shadows a built-in resource (the real server keeps serving its own).
                builtin = {(t.group, t.version, t.plural) for t in BUILTINS}
                types.extend(t for t in crds.types_for(crd) if (t.group, t.version, t.plural) not in builtin)
            self._types = types
            self._by_path = {(t.group, t.version, t.plural): t for t in types}
            self._stamp = stamp

    @property
    def stamp(self) -> int:
        """Changes whenever the set of served types (or a CRD's schema) does."""
        self._refresh()
        return self._stamp

    def invalidate(self) -> None:
        self._stamp = -1

    def types(self) -> list[ResourceType]:
        self._refresh()
        return list(self._types)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        self._refresh()
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        self._refresh()
        group, _, version = api_version.rpartition("/")
        for t in self._types:
            if t.group == group and t.version == version and t.kind == kind:
                return t
        return None

    def versions_of(self, storage_key: str) -> list[ResourceType]:
        self._refresh()
        return [t for t in self._types if t.storage_key == storage_key]
