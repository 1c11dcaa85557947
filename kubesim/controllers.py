"""The control loops kubesim runs beside the API: garbage collection, namespace and CRD cleanup,
foreground deletion, and (opt-in) the workload simulator.

One background thread. Deletions wake it (`notify_deleted`); it then makes passes until nothing
is left to do. The simulator ticks every `tick` seconds when enabled.

The simulator is clearly labelled: its status writes use the field manager `kubesim-simulator`
and its condition messages end with "(simulated by kubesim)". It never runs unless asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from kubesim import meta
from kubesim.deletion import FOREGROUND_FINALIZER, NAMESPACE_FINALIZER, ORPHAN_FINALIZER
from kubesim.resources import BUILTINS, CRD_TYPE, NAMESPACE_TYPE

if TYPE_CHECKING:
    from kubesim.api import Cluster
    from kubesim.storage import Entry

log = logging.getLogger("kubesim.controllers")

SIMULATOR = "kubesim-simulator"
SIMULATED = "(simulated by kubesim)"
_DEPLOYMENT = next(t for t in BUILTINS if t.kind == "Deployment")
_JOB = next(t for t in BUILTINS if t.kind == "Job")


class Controllers:
    def __init__(self, *, simulate_workloads: bool = False, delay: float = 2.0, tick: float = 0.25) -> None:
        self.simulate = simulate_workloads
        self.delay = delay
        self.tick = tick
        self._cluster: Cluster | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubesim-controllers", daemon=True)
        self._seen: dict[tuple[str, int], float] = {}  # (uid, generation) → first seen (simulator)

    def attach(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def start(self) -> None:
        self._wake.set()  # a restart may have left deletions half done
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def notify_deleted(self, uid: str) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            woke = self._wake.wait(self.tick if self.simulate else 1.0)
            if self._stop.is_set():
                return
            try:
                if woke:
                    self._wake.clear()
                    assert self._cluster is not None
                    self._cluster.store.sync()  # the deletion that woke us is committed, so visible
                    for _ in range(50):  # until a pass changes nothing
                        if not self.collect() or self._stop.is_set():
                            break
                if self.simulate:
                    self.simulate_once()
            except Exception:  # keep the loop alive; the next pass retries
                log.exception("kubesim controllers: pass failed")

    # -- garbage collection ------------------------------------------------------------------

    def collect(self) -> bool:
        """One pass of GC / namespace / CRD / foreground cleanup; True when it changed something."""
        cluster = self._cluster
        assert cluster is not None
        entries = list(cluster.store.all_entries())
        uids: dict[str, tuple[str, Entry]] = {}
        for res, e in entries:
            uid = e.obj.get("metadata", {}).get("uid")
            if uid:
                uids[uid] = (res, e)
        changed = False
        for res, e in entries:
            m = e.obj.get("metadata", {})
            refs = [r for r in m.get("ownerReferences") or [] if isinstance(r, dict)]
            if not refs or m.get("deletionTimestamp"):
                continue
            owners = [uids.get(str(r.get("uid"))) for r in refs]
            waiting = any(o is not None and _deleting_dependents(o[1]) for o in owners)
            if waiting or all(o is None for o in owners):
                # A dependent whose owner waits for it and that has dependents itself goes the same
                # way (the garbage collector's attemptToDeleteItem), so the deepest go first.
                has_own = waiting and any(_refers_to(d.obj, m.get("uid")) for _, d in entries)
                cluster.delete_entry(res, e, "Foreground" if has_own else "Background")
                changed = True
        for res, e in entries:
            m = e.obj.get("metadata", {})
            if not m.get("deletionTimestamp"):
                continue
            if ORPHAN_FINALIZER in (m.get("finalizers") or []):
                cluster.orphan(m["uid"])
                cluster.remove_finalizer(res, e, ORPHAN_FINALIZER)
                changed = True
            elif FOREGROUND_FINALIZER in (m.get("finalizers") or []) and not any(
                _blocks(d.obj, m["uid"]) for _, d in cluster.dependents(m["uid"])
            ):
                # Only dependents whose reference says blockOwnerDeletion hold the owner back.
                cluster.remove_finalizer(res, e, FOREGROUND_FINALIZER)
                changed = True
            elif res == NAMESPACE_TYPE.storage_key:
                changed |= self._empty_namespace(m["name"], e)
            elif res == CRD_TYPE.storage_key:
                changed |= self._drop_custom_objects(e)
        return changed

    def _empty_namespace(self, ns: str, entry: Entry) -> bool:
        cluster = self._cluster
        assert cluster is not None
        left = [
            (res, e)
            for res, e in cluster.store.all_entries()
            if res != NAMESPACE_TYPE.storage_key and e.obj.get("metadata", {}).get("namespace") == ns
        ]
        fresh = [(res, e) for res, e in left if not e.obj["metadata"].get("deletionTimestamp")]
        for res, e in fresh:
            cluster.delete_entry(res, e, "Background")
        if any(cluster.store.get(res, ns, e.obj["metadata"]["name"]) for res, e in left):
            # Something waits for its finalizers: progress only if this pass started new deletions.
            return bool(fresh)
        cluster.remove_finalizer(NAMESPACE_TYPE.storage_key, entry, NAMESPACE_FINALIZER)
        return True

    def _drop_custom_objects(self, crd: Entry) -> bool:
        cluster = self._cluster
        assert cluster is not None
        spec = crd.obj.get("spec", {})
        res = f"{spec.get('names', {}).get('plural')}.{spec.get('group')}"
        with cluster.store.lock:
            for e in cluster.store.items(res):
                m = e.obj["metadata"]
                cluster.store.delete(
                    res,
                    str(m.get("namespace") or ""),
                    m["name"],
                    {**e.load(), "metadata": {**m, "resourceVersion": str(cluster.store.next_rv())}},
                    defer=True,
                )
            current = cluster.store.get(CRD_TYPE.storage_key, "", crd.obj["metadata"]["name"])
            if current is not None:
                final = current.load()
                final["metadata"]["resourceVersion"] = str(cluster.store.next_rv())
                cluster.store.delete(CRD_TYPE.storage_key, "", final["metadata"]["name"], final, defer=True)
                cluster.registry.invalidate()
        cluster.store.settle()
        return True

    # -- workload simulator ------------------------------------------------------------------

    def simulate_once(self) -> None:
        cluster = self._cluster
        assert cluster is not None
        now = time.monotonic()
        deployments = cluster.store.items(_DEPLOYMENT.storage_key)
        jobs = cluster.store.items(_JOB.storage_key)
        for e in deployments:
            self._deployment(cluster, e, now)
        for e in jobs:
            self._job(cluster, e, now)
        # Forget what no longer exists (or was superseded by a newer generation).
        live = {
            (str(e.obj["metadata"].get("uid")), int(e.obj["metadata"].get("generation") or 1))
            for e in (*deployments, *jobs)
        }
        self._seen = {k: v for k, v in self._seen.items() if k in live}

    def _age(self, e: Entry, now: float) -> float:
        m = e.obj["metadata"]
        key = (str(m.get("uid")), int(m.get("generation") or 1))
        first = self._seen.setdefault(key, now)
        return now - first

    def _deployment(self, cluster: Cluster, e: Entry, now: float) -> None:
        m, spec = e.obj["metadata"], e.obj.get("spec") or {}
        if m.get("deletionTimestamp"):
            return
        gen = int(m.get("generation") or 1)
        replicas = int(spec.get("replicas", 1) or 0)
        status = e.obj.get("status") or {}
        if (
            status.get("observedGeneration") == gen
            and status.get("availableReplicas", 0) == replicas
            and status.get("replicas") == replicas
            and _has_condition(status, "Available", "True")
        ):
            # Already available at this generation (e.g. marked so by an earlier process over the
            # same state file): a restarted simulator must not turn it unavailable again.
            return
        ready = self._age(e, now) >= self.delay
        if (
            status.get("observedGeneration") == gen
            and (
                not ready
                or (status.get("availableReplicas", 0) == replicas and status.get("replicas") == replicas)
            )
            and _has_condition(status, "Available", "True" if ready else "False")
        ):
            return
        when = meta.now()
        rs = f"{m['name']}-{str(m.get('uid', ''))[:10].replace('-', '')}"
        if ready:
            new: dict[str, Any] = {
                "observedGeneration": gen,
                "replicas": replicas,
                "updatedReplicas": replicas,
            }
            if replicas:
                new["readyReplicas"] = replicas
                new["availableReplicas"] = replicas
            conditions = [
                _cond(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    f"Deployment has minimum availability. {SIMULATED}",
                    when,
                    status,
                ),
                _cond(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs}" has successfully progressed. {SIMULATED}',
                    when,
                    status,
                ),
            ]
        else:
            new = {
                "observedGeneration": gen,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "unavailableReplicas": replicas,
            }
            conditions = [
                _cond(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    f"Deployment does not have minimum availability. {SIMULATED}",
                    when,
                    status,
                ),
                _cond(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{rs}" is progressing. {SIMULATED}',
                    when,
                    status,
                ),
            ]
        new["conditions"] = conditions
        cluster.write_status(_DEPLOYMENT, e, new, SIMULATOR)

    def _job(self, cluster: Cluster, e: Entry, now: float) -> None:
        m, spec = e.obj["metadata"], e.obj.get("spec") or {}
        status = e.obj.get("status") or {}
        if m.get("deletionTimestamp") or _has_condition(status, "Complete", "True"):
            return
        when = meta.now()
        if self._age(e, now) < self.delay:
            if status.get("startTime"):
                return
            cluster.write_status(_JOB, e, {"startTime": when, "active": 1, "ready": 0}, SIMULATOR)
            return
        completions = int(spec.get("completions", 1) or 1)
        done = {
            "startTime": status.get("startTime", when),
            "completionTime": when,
            "succeeded": completions,
            "ready": 0,
            "conditions": [
                _cond(
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    f"Reached expected number of succeeded pods {SIMULATED}",
                    when,
                    status,
                ),
                _cond(
                    "Complete",
                    "True",
                    "CompletionsReached",
                    f"Reached expected number of succeeded pods {SIMULATED}",
                    when,
                    status,
                ),
            ],
        }
        cluster.write_status(_JOB, e, done, SIMULATOR)


def _deleting_dependents(owner: Entry) -> bool:
    m = owner.obj["metadata"]
    return bool(m.get("deletionTimestamp")) and FOREGROUND_FINALIZER in (m.get("finalizers") or [])


def _refers_to(obj: dict[str, Any], uid: Any) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(isinstance(r, dict) and r.get("uid") == uid for r in refs)


def _blocks(obj: dict[str, Any], uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(isinstance(r, dict) and r.get("uid") == uid and r.get("blockOwnerDeletion") for r in refs)


def _has_condition(status: dict[str, Any], kind: str, value: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == value for c in status.get("conditions") or [])


def _cond(kind: str, value: str, reason: str, message: str, when: str, old: dict[str, Any]) -> dict[str, Any]:
    transition = when
    for c in old.get("conditions") or []:
        if c.get("type") == kind and c.get("status") == value:
            transition = c.get("lastTransitionTime", when)
    return {
        "type": kind,
        "status": value,
        "lastUpdateTime": when,
        "lastTransitionTime": transition,
        "reason": reason,
        "message": message,
    }
