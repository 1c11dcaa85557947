"""Server-side apply for spindle, modelled on Flux's `fluxcd/pkg/ssa`.

Pure parts: `objects` (refs, labels, annotations), `normalize`, `sort`, `mask`, `fieldsv1`
(managedFields parsing, attribution, folding kubectl managers), `diff` (RFC 6902 patch, field
drifts, unified YAML), `inventory`. I/O parts take a `reconciler.kube.client.KubeClient`:
`manager` (plan and apply), `prune`, `health`, `nodes` (Shim installer Jobs and node labels).
"""
