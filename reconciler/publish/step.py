"""The publish step of a reconcile: between discovery and rendering, push every project whose
`[application.tool.spindle]` asks for it and pin its SpinApp to the digest.

A dry run (`spindle diff`, `--dry-run`, `--detect-only`) assembles the artifacts and pins the digests it
would push without talking to any registry, so the diff shows exactly the image an apply would set.
A project that fails to publish deploys nothing this time and its error (the registry's own message) is a
render error, so nothing is pruned in that reconcile: the app keeps running what it ran before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from oci.errors import OciError
from oci.registry import RegistryClient
from reconciler.changeset import PublishedApp
from reconciler.publish.config import PublishConfig
from reconciler.publish.errors import PublishError
from reconciler.publish.publisher import (
    PublishResult,
    Request,
    Settings,
    Target,
    archive_from_env,
    publish_many,
)
from renderers import discovery, tooltable
from renderers.model import RepoTree

log = logging.getLogger("spindle.publish")


def publish_tree(
    checkout: Path, tree: RepoTree, config: PublishConfig, *, dry_run: bool
) -> tuple[RepoTree, list[PublishedApp]]:
    """Publish the tree's projects that ask for it; the tree with their images pinned, and what happened."""
    requests: list[Request] = []
    failed: dict[str, str] = {}
    for project in tree.projects:
        wanted = tooltable.publish_target(project.app)
        if wanted is None or not project.scaffolded:  # no publish, or its table has errors (reported)
            continue
        rel = project.location.path
        try:
            target = Target.parse(wanted[0], fmt=wanted[1], where=rel)
        except PublishError as exc:
            failed[rel] = exc.message
            continue
        requests.append(Request(tree.root / rel, target))
    if not requests and not failed:
        return tree, []
    results = _publish(checkout, requests, config, dry_run) if requests else []
    published: list[PublishedApp] = []
    images: dict[str, str] = {}
    for request, result in zip(requests, results, strict=True):
        rel = request.spin_toml.relative_to(tree.root).as_posix()
        if isinstance(result, PublishError):
            text = str(result)
            failed[rel] = text.removeprefix(f"{rel}: ")
            continue
        images[rel] = result.reference
        published.append(
            PublishedApp(
                rel,
                result.reference,
                result.digest,
                result.commit or "",
                result.format,
                result.pushed,
                result.bytes_uploaded,
            )
        )
    for rel, message in failed.items():
        log.error("%s: publish failed: %s", rel, message)
        published.append(PublishedApp(rel, "", "", "", error=message))
    published.sort(key=lambda p: p.project)
    return discovery.pin_images(tree, images, failed), published


def _publish(
    checkout: Path, requests: Sequence[Request], config: PublishConfig, dry_run: bool
) -> list[PublishResult | PublishError]:
    settings = Settings(dry_run=dry_run, archive=archive_from_env(), sources_cache=config.sources_cache)
    if dry_run:
        return publish_many(checkout, requests, settings, None)
    try:
        client = RegistryClient(
            docker_config=config.docker_config, ca_file=config.ca_file, force_plain_http=config.plain_http
        )
    except OciError as exc:
        return [PublishError(str(r.spin_toml), str(exc)) for r in requests]
    with client:
        return publish_many(checkout, requests, settings, client)
