"""What the Service registry adds: a cluster IP from 10.96.0.0/12 and node ports from 30000-32767 on
create, and the allocated values kept when an update leaves them out (pure but for the Services
that exist, passed in)."""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)


class Allocations:
    """The cluster IPs (as integers) and node ports the Services use, brought up to date from the
    Services' (resourceVersion, object) pairs before each allocation: only those written since the
    last look are read, so a create costs a pass over resourceVersions rather than over specs (a
    fresh scan follows deletions, which free addresses; a value taken by a dry run or a create
    that then failed stays taken until then). Used under the store's writer lock."""

    def __init__(self) -> None:
        self.ips: set[int] = set()
        self.ports: set[int] = set()
        self._reset()

    def _reset(self) -> None:
        self.ips.clear()
        self.ports.clear()
        self._seen_rv = 0
        self._count = -1
        self._next_ip = _FIRST_IP

    def refresh(self, services: list[tuple[int, dict[str, Any]]]) -> None:
        if len(services) < self._count:  # some went away: start over, freeing their values
            self._reset()
        newest = self._seen_rv
        for rv, svc in services:
            if rv > self._seen_rv:
                self._add(svc)
                newest = max(newest, rv)
        self._seen_rv, self._count = newest, len(services)

    def _add(self, svc: dict[str, Any]) -> None:
        spec = svc.get("spec") or {}
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
            if isinstance(ip, str):
                with contextlib.suppress(ValueError):
                    self.ips.add(int(ipaddress.IPv4Address(ip)))
        self.ports.update(
            p["nodePort"]
            for p in spec.get("ports") or []
            if isinstance(p, dict) and isinstance(p.get("nodePort"), int)
        )

    def take_ip(self) -> str:
        """The lowest free address (deterministic, which keeps tests readable)."""
        n = self._next_ip
        while n in self.ips:
            n += 1
        if n >= _LAST_IP:
            raise ValueError(f"the service IP range {SERVICE_CIDR} is full")
        self.ips.add(n)
        self._next_ip = n + 1
        return str(ipaddress.IPv4Address(n))

    def take_port(self) -> int:
        for p in NODE_PORTS:
            if p not in self.ports:
                self.ports.add(p)
                return p
        raise ValueError(f"the node port range {NODE_PORTS.start}-{NODE_PORTS.stop - 1} is full")


# 10.96.0.1 is the kubernetes Service's; the broadcast address is not a host.
_FIRST_IP = int(SERVICE_CIDR.network_address) + 2
_LAST_IP = int(SERVICE_CIDR.broadcast_address)


def allocate(obj: dict[str, Any], used: Allocations) -> None:
    """Fill spec.clusterIP(s), ipFamilies, ipFamilyPolicy and node ports of a new Service."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    kind = spec.get("type", "ClusterIP")
    if kind == "ExternalName":
        return
    ip = spec.get("clusterIP")
    if not ip:
        ip = used.take_ip()
        spec["clusterIP"] = ip
    spec.setdefault("clusterIPs", [ip])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    if kind in ("NodePort", "LoadBalancer"):
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and not port.get("nodePort"):
                port["nodePort"] = used.take_port()


def keep_allocated(old: dict[str, Any], new: dict[str, Any]) -> None:
    """An update that omits the allocated values keeps them (the real registry's patchAllocatedValues)."""
    old_spec, new_spec = old.get("spec") or {}, new.get("spec")
    if not isinstance(new_spec, dict):
        return
    for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        if (
            not new_spec.get(key)
            and old_spec.get(key)
            and new_spec.get("type", "ClusterIP") != "ExternalName"
        ):
            new_spec[key] = old_spec[key]
    old_ports = {
        (p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
        for p in old_spec.get("ports") or []
        if isinstance(p, dict)
    }
    if new_spec.get("type") in ("NodePort", "LoadBalancer"):
        for port in new_spec.get("ports") or []:
            if isinstance(port, dict) and not port.get("nodePort"):
                found = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                if found:
                    port["nodePort"] = found
