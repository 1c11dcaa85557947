"""What the Service registry adds: a cluster IP from 10.96.0.0/12 and node ports from 30000-32767 on
create, and the allocated values kept when an update leaves them out (pure but for the scan of the
Services that exist, passed in)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/12")
NODE_PORTS = range(30000, 32768)


def _used(existing: Iterable[dict[str, Any]]) -> tuple[set[str], set[int]]:
    ips: set[str] = {str(SERVICE_CIDR.network_address + 1)}  # 10.96.0.1 is the kubernetes Service's
    ports: set[int] = set()
    for svc in existing:
        spec = svc.get("spec") or {}
        ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if isinstance(ip, str))
        ports.update(
            p["nodePort"]
            for p in spec.get("ports") or []
            if isinstance(p, dict) and isinstance(p.get("nodePort"), int)
        )
    return ips, ports


def allocate(obj: dict[str, Any], existing: Iterable[dict[str, Any]]) -> None:
    """Fill spec.clusterIP(s), ipFamilies, ipFamilyPolicy and node ports of a new Service."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    kind = spec.get("type", "ClusterIP")
    if kind == "ExternalName":
        return
    used_ips, used_ports = _used(existing)
    ip = spec.get("clusterIP")
    if not ip:
        # Deterministic order keeps tests readable; the range has a million addresses.
        for host in SERVICE_CIDR.hosts():
            if str(host) not in used_ips:
                ip = str(host)
                break
        spec["clusterIP"] = ip
    spec.setdefault("clusterIPs", [ip])
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    if kind in ("NodePort", "LoadBalancer"):
        free = (p for p in NODE_PORTS if p not in used_ports)
        for port in spec.get("ports") or []:
            if isinstance(port, dict) and not port.get("nodePort"):
                port["nodePort"] = next(free)


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
