"""Telling CI and people how a run went: `--notify SPEC` (repeatable).

SPEC is `KIND:TARGET[,key=value...]`, or a bare `http(s)://` URL (the generic kind):

- `generic:URL` / `URL`: a JSON event (`notify.events.event_json`) POSTed to URL, signed with
  HMAC-SHA256 over the body in `X-Spindle-Signature-256: sha256=<hex>` when a secret is given
  (`secret-file=F` or `secret-env=VAR`); `X-Spindle-Event: reconcile`, `X-Spindle-Delivery: <id>`.
- `slack:URL`: a Slack incoming-webhook message (`{"text": ...}`).
- `github:OWNER/REPO`: a commit status, `POST {api}/repos/OWNER/REPO/statuses/{sha}`
  (`api=` default https://api.github.com; token from `token-file=` or `token-env=`, default
  `$GITHUB_TOKEN`, sent as `Authorization: Bearer`).
- `gitlab:PROJECT`: a commit status, `POST {api}/projects/PROJECT/statuses/{sha}` (PROJECT an id or
  a URL-encoded path; `api=` default https://gitlab.com/api/v4; token from `token-file=` or
  `token-env=`, default `$GITLAB_TOKEN`, sent as `PRIVATE-TOKEN`).

Each run posts `pending` when it starts (commit statuses only) and `success` or `failure` when it
ends, with a one-line summary and `--notify-link` as the link target. Posts are debounced (one
per target, source, revision and outcome: `pending` only for a revision not yet reported, a final
outcome only when it differs from the last one posted; remembered in the state directory),
retried with backoff, carry no secret values (counts, subjects and error lines only) and never fail the run:
a post that keeps failing is a warning in the report.
"""

from reconciler.notify.dispatch import Notifier, NotifyError, parse_spec

__all__ = ["Notifier", "NotifyError", "parse_spec"]
