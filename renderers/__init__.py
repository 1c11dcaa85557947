"""Pure renderers: a Git checkout of Spin projects and SpinKube specs → Kubernetes manifests.

Nothing here talks to a cluster or the network; the only I/O is reading the checkout.
"""
