"""What the commands share: the exit-code table, the run options that become
:class:`~bulkpolyv.run.RunSettings`, and the warnings about an unsafe transport.

Kept apart from :mod:`bulkpolyv.cli` so each command there stays a few lines: parse,
call the library, map the result to an :class:`ExitCode`.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import click

from bulkpolyv.budget import BudgetUnavailable
from bulkpolyv.exitcodes import ExitCode
from bulkpolyv.manifest import Manifest, ManifestError, load_manifest
from bulkpolyv.manifest.model import POLYV_CEILING_REQUESTS, worst_case_per_polyv_window
from bulkpolyv.privatefiles import PrivateFileError, check_writable
from bulkpolyv.run import RunSettings
from bulkpolyv.shard import Shard, ShardSpecError, parse_shard


def fail(message: str, code: ExitCode = ExitCode.ERROR) -> NoReturn:
    click.echo(f"bulkpolyv: {message}", err=True)
    sys.exit(code)


def writable_or_fail(path: Path) -> None:
    """A file the command will write, checked before any request (or hours of serving):
    one sentence and exit 1 when it cannot be written."""
    try:
        check_writable(path)
    except PrivateFileError as error:
        fail(str(error))


def load(path: str, *, resolve_env: bool = True) -> Manifest:
    """The manifest, or its located problems on stderr and exit 1."""
    try:
        return load_manifest(path, resolve_env=resolve_env)
    except ManifestError as error:
        click.echo(str(error), err=True)
        sys.exit(ExitCode.ERROR)


def parse_rate(text: str | None) -> tuple[int | None, float | None]:
    if not text:
        return None, None
    try:
        count, seconds = text.split("/", 1)
        requests, window = int(count), float(seconds)
    except ValueError:
        raise click.BadParameter("use N/S, e.g. 1400/10", param_hint="--rate") from None
    if requests < 1 or not math.isfinite(window) or window <= 0:
        raise click.BadParameter(
            f"{text!r}: N must be a whole number ≥ 1 and S a number of seconds > 0, "
            "e.g. 1400/10",
            param_hint="--rate",
        )
    return requests, window


def warn_about_transport(api_base: str, insecure: bool) -> None:
    parts = urlsplit(api_base)
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme == "http" and not loopback:
        click.echo(
            f"bulkpolyv: WARNING: {parts.scheme}://{host} is plain HTTP: requests and "
            "monitor passwords cross the network unencrypted",
            err=True,
        )
    if insecure:
        click.echo(
            "bulkpolyv: WARNING: --insecure: TLS certificates are NOT checked. Use it "
            "only against a local simulator.",
            err=True,
        )


class _Concurrency(click.ParamType):
    name = "auto|N"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, int) or str(value).strip().lower() == "auto":
            return value if isinstance(value, int) else "auto"
        try:
            number = int(value)
        except ValueError:
            number = 0
        if not 1 <= number <= 1000:
            self.fail(f"{value!r} is neither auto nor a number from 1 to 1000", param, ctx)
        return number


class _Shard(click.ParamType):
    name = "K/N"

    def convert(self, value: Any, param: Any, ctx: Any) -> Shard:
        try:
            return value if isinstance(value, Shard) else parse_shard(str(value))
        except ShardSpecError as error:
            self.fail(str(error), param, ctx)


CONCURRENCY, SHARD = _Concurrency(), _Shard()
def check_api_base(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--api-base`` must be a full URL: ``127.0.0.1:8790`` would be read as a scheme."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(
            f"{value!r} is not a URL: write the scheme and host, e.g. https://api.polyv.net "
            "or http://127.0.0.1:8790",
            param_hint="--api-base",
        )
    return value


API_BASE = click.option(
    "--api-base",
    envvar="BULKPOLYV_API_BASE",
    callback=check_api_base,
    help="Override the manifest's api_base (e.g. a local `bulkpolyv sim`).",
)
INSECURE = click.option("--insecure", is_flag=True, help="Skip TLS checks (local simulator only).")
BUDGET = click.option(
    "--budget",
    help="Where the rate budget is shared: local (default: every run on this host), "
    "redis://HOST:PORT/DB (every host behind one IP), sqlite:///PATH or memory. "
    "Also BULKPOLYV_BUDGET or the manifest's limits.budget.",
)
RUN_OPTIONS = [
    API_BASE,
    click.option("--rate", help="Requests per window, N/S (default: the manifest's limits)."),
    click.option(
        "--concurrency",
        type=CONCURRENCY,
        help="Requests in flight: auto (follows latency; the default) or a number that caps it.",
    ),
    click.option("--timeout", type=click.FloatRange(min=0.1), help="Seconds per request."),
    click.option(
        "--only",
        multiple=True,
        help="Only these accounts (glob) or account/channel_id; repeatable.",
    ),
    click.option(
        "--cooldown",
        type=click.FloatRange(min=0),
        default=300.0,
        show_default=True,
        help="Seconds to pause everything after a rate limit.",
    ),
    INSECURE,
    BUDGET,
    click.option(
        "--shard",
        type=SHARD,
        help="Only shard K of N (K/N): a stable share of the accounts, for N hosts or pods.",
    ),
]


def run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``plan`` and ``apply`` share; the command gets ``settings``
    (a RunSettings) and ``only`` (the ``--only`` patterns) instead of them."""

    @functools.wraps(command)
    def with_settings(
        *args: Any,
        api_base: str | None,
        rate: str | None,
        concurrency: int | Literal["auto"] | None,
        timeout: float | None,
        cooldown: float,
        insecure: bool,
        budget: str | None,
        shard: Shard | None,
        **kwargs: Any,
    ) -> Any:
        requests, per_seconds = parse_rate(rate)
        if (
            requests is not None
            and per_seconds is not None
            and worst_case_per_polyv_window(requests, per_seconds) > POLYV_CEILING_REQUESTS
        ):
            raise click.BadParameter(
                f"{rate} can exceed POLYV's {POLYV_CEILING_REQUESTS} requests per 10 s",
                param_hint="--rate",
            )
        settings = RunSettings(
            api_base=api_base,
            requests=requests,
            per_seconds=per_seconds,
            concurrency=concurrency,
            timeout=timeout,
            cooldown=cooldown,
            insecure=insecure,
            budget=budget,
            shard=shard,
        )
        try:
            return command(*args, settings=settings, **kwargs)
        except BudgetUnavailable as error:  # never a silent private budget: stop, say why
            fail(str(error))

    for option in reversed(RUN_OPTIONS):
        with_settings = option(with_settings)
    return with_settings
