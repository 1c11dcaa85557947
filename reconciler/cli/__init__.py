"""The `spindle` command line.

Each command group lives in its own module and is imported only when it runs, so `spindle render`
never pays for wasmtime or the Kubernetes client. Exit codes follow `kubectl diff`: 0 clean,
1 findings (drift, invalid input), 2 usage or I/O error.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

# command name → "module:attribute"; the module is imported on first use.
COMMANDS: dict[str, str] = {
    "render": "reconciler.cli.render_cmds:render",
    "validate": "reconciler.cli.render_cmds:validate",
    "scaffold": "reconciler.cli.scaffold_cmds:scaffold",
    "cluster": "reconciler.cli.cluster_cmds:cluster",
    "shim": "reconciler.cli.shim_cmds:shim",
    "node": "reconciler.cli.node_cmds:node",
    "diff": "reconciler.cli.sync_cmds:diff",
    "apply": "reconciler.cli.sync_cmds:apply",
    "reconcile": "reconciler.cli.reconcile_cmd:reconcile",
    "report": "reconciler.cli.report_cmds:report",
    "publish": "reconciler.cli.publish_cmd:publish",
}

HELP: dict[str, str] = {
    "render": "Render a repo into the manifests SpinKube would run.",
    "validate": "Validate every Spin project and spec in a repo.",
    "scaffold": "Print a SpinApp like `spin kube scaffold`.",
    "cluster": "Run and manage the embedded kubesim cluster.",
    "shim": "Run Spin apps on the node runtime.",
    "node": "Build the shim for nodes: executable, tarball, installer image.",
    "diff": "Diff a source against the cluster (exit 1 on drift).",
    "apply": "Reconcile a source once.",
    "reconcile": "Reconcile a source on a schedule and on webhooks.",
    "report": "Print drift reports from the history.",
    "publish": "Push a Spin project as an OCI artifact, pinned by digest.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            return None
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing help must not import every command module.
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="spindle-gitops", prog_name="spindle")
def cli() -> None:
    """spindle: GitOps for Spin (WebAssembly) apps on Kubernetes."""


def main(argv: list[str] | None = None) -> Any:
    try:
        return cli.main(args=argv, prog_name="spindle", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - interactive only
        sys.exit(130)
