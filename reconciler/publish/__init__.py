"""Publishing Spin projects from Git as OCI artifacts, pinned by digest.

    publisher   load → build → content → last-change commit → assemble → push once (the entry points)
    lock        spin.toml (manifest v2) → Spin's locked app, before content
    content     component Wasm and `files`, expanded as Spin's loader copies them
    sources     `source = { url, digest }`: fetched, verified, kept by digest
    build       `build.command` run as `spin build` does (`--build`)
    rootfs      the `--format rootfs` image (`/spin.toml` and its files as tar layers)
    gitinfo     the commit that last changed each project (one `git log` for many)
    errors      PublishError and below; each names the project, component or file

The byte layout of the Spin format lives in `oci.spinlayout` and `oci.lockedapp` (pure, shared with the
node runtime that pulls it); the registry client is `oci.registry`.
"""
