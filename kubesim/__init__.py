"""kubesim: an embedded Kubernetes API server with real server-side-apply semantics, backed by SQLite."""
