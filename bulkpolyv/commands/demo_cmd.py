"""``bulkpolyv demo [MANIFEST]``: plan, apply and plan again against the embedded simulator."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bulkpolyv.commands.common import output, verbosity


@click.command()
@click.argument("manifest_path", metavar="[MANIFEST]", type=click.Path(), required=False)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--state-out",
    type=click.Path(dir_okay=False),
    help="Write the demo's seeded (drifted) state here; `bulkpolyv sim --state FILE` "
    "starts the same POLYV.",
)
@click.option("--env", "print_env", is_flag=True, help="Print the demo's ${VAR}s as exports.")
@verbosity
def demo(manifest_path: str | None, seed: int, state_out: str | None, print_env: bool) -> None:
    """Plan and apply a manifest (default manifests/demo.yaml) against the embedded
    simulator, seeded with drift."""
    from bulkpolyv.demo import env_lines, run_demo

    if print_env:
        click.echo(env_lines())
        sys.exit(0)
    if state_out == "":  # not "no file": a variable that was meant to name one is empty
        raise click.BadParameter("give a file name", param_hint="--state-out")
    state = Path(state_out) if state_out else None
    sys.exit(run_demo(manifest_path, seed=seed, state_out=state, quiet=output().quiet))
