"""OCI images and registries: reproducible image building, OCI image layouts, registry push and pull.

Stands alone: imports nothing else of spindle's (an import-linter contract says so).

    oci.layers      reproducible tar+gzip layers from in-memory or on-disk files
    oci.layout      image config + manifest, OCI layout directories and tars (write and verified read)
    oci.reference   image references, normalized like Docker/containerd (`app:1` -> docker.io/library/app:1)
    oci.descriptors media types, descriptors, digests, canonical JSON
    oci.spinlayout  the artifact `spin registry push` (Spin 3.x) makes, assembled reproducibly; reading one
    oci.lockedapp   Spin's locked app (the artifact's `+config` layer), serialized as serde_json does
    oci.registry    RegistryClient: push layouts/images, pull into layouts (OCI distribution API)
    oci.auth        credentials (explicit or Docker config), WWW-Authenticate, scopes, token cache
    oci.transport   the HTTP chokepoint: TLS, plain HTTP for loopback only, auth, retries (urllib3)
    oci.errors      the error tree (OciError and below)
"""
