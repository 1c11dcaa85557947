"""The node runtime: Spin HTTP apps on wasmtime, and the containerd shim v2 around it."""
