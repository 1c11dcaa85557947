"""kubesim: an embedded Kubernetes API server with real server-side-apply semantics, backed by SQLite.

Real `kubectl` and the Python `kubernetes` client talk to it over HTTPS with a bearer token
(client-go sends tokens only over TLS, so kubesim makes itself a self-signed certificate and puts
it into the kubeconfig as the cluster's CA).

Embedding (tests, the reconciler's default target)::

    from kubesim import server

    running = server.start(":memory:", port=0, token=None)   # or a SQLite path; port 0 = pick one
    running.url                  # "https://127.0.0.1:<port>"
    running.token                # the bearer token (random unless given)
    running.kubeconfig(path)     # the kubeconfig text, also written (0600) when a path is given
    running.cluster              # the in-process API (kubesim.api.Cluster) for white-box checks
    running.stop()               # graceful: watches end, controllers stop, database closed
    # also a context manager: `with server.start() as running: ...`

    server.start(..., address="127.0.0.1", simulate_workloads=False, simulate_delay=2.0)

`python -m kubesim --state PATH --kubeconfig PATH` serves in the foreground; the user-facing
command is `spindle cluster serve`.

What it serves: discovery (/version, /api, /apis, legacy group/version lists; kubectl falls back
from aggregated discovery), /openapi/v2 and /openapi/v3, /metrics; the built-ins of `kubesim.resources`
and every established CRD; get, list (label/field selectors, limit/continue), watch (resume,
410 Expired, bookmarks, timeoutSeconds), create (generateName), update (optimistic concurrency),
patch (apply, merge, JSON, strategic for built-ins), delete (propagation policies, finalizers,
garbage collection through ownerReferences), deletecollection; `status` and `scale` subresources.
Server-side apply itself is `kubesim.ssa`; the type schemas are `kubesim.schema`.

Modules::

    server       the HTTPS front: auth, bodies, dispatch, watch streams, embedding (`start`)
    routes       which discovery/OpenAPI document or resource a path names
    api          the verbs over the store and the one write pipeline (`Cluster`)
    reads        one object, selections (selectors, limit/continue), list answers
    watch        watch streams from the event log
    patches      patch types, their options, apply bodies
    deletion     DeleteOptions, the delete answer, the finalizer names
    scale        the scale subresource
    admission    what every write must satisfy (carried-over metadata, validation)
    calls        a request (`Call`) and its answer (`Reply`)
    bodies       media types, decoding, field validation
    protobuf     the protobuf bodies kubectl's typed generators send
    storage      SQLite + cache + event log
    registry, resources, crds    what is served (built-ins and CRDs)
    fields       the seam to the SSA engine (`kubesim.ssa`) and schemas (`kubesim.schema`)
    rules, services              built-in validation; cluster IPs and node ports
    controllers  GC, namespace and CRD cleanup, the opt-in workload simulator
    discovery, openapi, tables   what kubectl reads: discovery, OpenAPI, Table output
    selectors, meta, metrics, tls, kubeconfig, errors (the error tree)

Known gaps: protobuf request bodies are read for the objects kubectl's typed generators send
(`kubectl create namespace|configmap|secret|serviceaccount|deployment|service|job|role|
clusterrole|rolebinding|clusterrolebinding`; see `kubesim.protobuf`); other protobuf bodies, or
these with fields kubesim does not know, get a 415 naming the JSON media types. Everything kubectl
sends as JSON (`apply`, `run`, `edit`, `scale`, `patch`, `label`, `delete`, `get`, `diff`, `wait`,
`rollout status`, `explain`) works. Only autoscaling/v2 HorizontalPodAutoscalers are served, so
`kubectl autoscale` (which posts autoscaling/v1) gets a 404. No admission webhooks, RBAC, CEL
validation rules or conversion between CRD versions (each served version reads the one stored
object).
"""
