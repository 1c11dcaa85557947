"""The server-side-apply engine: pure functions over JSON objects, no I/O.

Modelled on sigs.k8s.io/structured-merge-diff (merge, compare, prune, conflicts) and
k8s.io/apimachinery managedfields (strip-meta, manager identities, entry order, conflict text).

Public API::

    apply(live, config, *, manager, api_version, force, schema, now, subresource=None) -> ApplyResult
        PATCH application/apply-patch+yaml.  ``live`` is the stored object (None: create), with its
        ``metadata.managedFields``; ``config`` the decoded body; ``api_version`` the URL's
        group/version; ``now`` an RFC 3339 UTC time ("2026-01-02T03:04:05Z").
        Raises ApplyBodyError (400: managedFields in body, apiVersion/kind not the URL's:
        "invalid object type: apps/v1beta1, Kind=Deployment"), InvalidObjectError
        (422: duplicate list-map keys, item without key, wrong type, undeclared field — message
        verbatim from upstream), ConflictError (409, ``.conflicts`` and ``.causes`` for the Status).

    update(live, new, *, manager, api_version, schema, now, subresource=None) -> UpdateResult
        Create / PUT / merge, JSON or strategic patch / status writes: ``new`` is the full object
        after the patch.  Undeclared fields are dropped, defaults applied, the manager (an Update
        entry) takes the fields it changed, removed fields leave every manager.

    conflict_error(conflicts, managed) -> ConflictError

    apply_strategic_merge_patch(live, patch, schema) -> dict
        Strategic merge patch for built-ins (patchMergeKey merges, ``$patch``,
        ``$setElementOrder``, ``$retainKeys``, ``$deleteFromPrimitiveList``, null deletes).

    ApplyResult / UpdateResult fields: ``object`` (fresh dict with managedFields), ``changed``
    (content changed), ``managed_fields_changed``, ``created``, and ``write_needed`` (False for a
    true no-op: keep the stored object and its resourceVersion).

    decode_fields_v1(raw) / encode_fields_v1(fs): FieldsV1 JSON ⇄ field-set trie.

Semantics worth knowing (all as upstream):
  * An applier's ``time`` moves only when the merged object (before defaulting) differs from live;
    a new applier that merely shares values gets an entry without ``time``.  Applying an atomic
    value that defaulting completes (``fieldRef`` without ``apiVersion``) or a non-canonical
    quantity (``cpu: 0.5``) therefore bumps the time on every apply, content unchanged.
  * Update entries take (force) every field they change; removed fields leave every manager;
    more than 10 Update entries fold the oldest into ``ancient-changes``.
  * The main resource never owns ``status`` of kinds with a status subresource, and the status
    subresource owns only ``status`` (separate ``subresource: status`` entries).
  * ``manager == "kubectl"`` upgrades from client-side apply: conflicts on fields still holding
    their ``last-applied-configuration`` value are taken over, and the annotation is rewritten.
  * Ownership as SMD's ToFieldSet records it: a map key (not a declared field: maps typed by
    ``additionalProperties``, preserve-unknown objects), an empty map (``emptyDir: {}``) and a null
    are members themselves; a map emptied by pruning stays ``{}`` (SMD v6's removingWalker).
  * ``managedFields: []`` or ``[{}]`` in an update clears the entries and leaves the object
    untracked; entries repeating one manager identity keep the last (apimachinery).
  * ``conflict_error(conflicts, managed)`` builds SMD's ``ConflictsFromManagers`` error.
  * Deliberate divergence: typing errors of an apply body (duplicate keys, missing keys,
    undeclared fields) are 422 here; upstream answers them with a 500 carrying the same text.

Everything is pure and thread-safe (module caches only hold immutable strings).

Modules: `engine` (apply, update, pruning, conflicts), `typed` (schema-guided merge, field
sets, removals), `compare` (what changed between two values), `fieldpath` (the field-set trie and
FieldsV1), `managed` (managedFields entries), `last_applied` (kubectl's client-side to
server-side upgrade), `strategic` (strategic merge patch), `errors`.

Error tree: see kubesim/ssa/errors.py.
"""

from __future__ import annotations

from kubesim.ssa.engine import ApplyResult, UpdateResult, apply, conflict_error, update
from kubesim.ssa.errors import (
    ApplyBodyError,
    Cause,
    Conflict,
    ConflictError,
    InvalidObjectError,
    PatchError,
    SSAError,
)
from kubesim.ssa.fieldpath import decode_fields_v1, encode_fields_v1
from kubesim.ssa.managed import Managed, decode_managed_fields
from kubesim.ssa.strategic import apply_strategic_merge_patch

__all__ = [
    "ApplyBodyError",
    "ApplyResult",
    "Cause",
    "Conflict",
    "ConflictError",
    "InvalidObjectError",
    "Managed",
    "PatchError",
    "SSAError",
    "UpdateResult",
    "apply",
    "apply_strategic_merge_patch",
    "conflict_error",
    "decode_fields_v1",
    "decode_managed_fields",
    "encode_fields_v1",
    "update",
]
