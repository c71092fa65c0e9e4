"""Children that run the ``bulkpolyv`` command and signal themselves at one chosen point.

A signal sent from outside at "the moment the report is written" is a race the test may
lose; a child that sends it itself, from inside the call, gets it there on every run.
"""

from __future__ import annotations

import subprocess
import sys

_CHILD = """
import importlib, os, signal, sys
owner = importlib.import_module({module!r})
for name in {path!r}[:-1]:
    owner = getattr(owner, name)
real = getattr(owner, {path!r}[-1])
def signalled(*args, **kwargs):
    os.kill(os.getpid(), signal.{signal})
    return real(*args, **kwargs)
setattr(owner, {path!r}[-1], signalled)
from bulkpolyv.entry import main
sys.argv = ["bulkpolyv", *sys.argv[1:]]
main()
"""


def signalled_at(target: str, signal_name: str, *argv: str) -> list[str]:
    """The command line of a child running ``bulkpolyv ARGV`` that sends itself
    ``signal_name`` whenever ``target`` (``module:Name.attribute``) is called, before the
    call goes on."""
    module, _, attribute = target.partition(":")
    script = _CHILD.format(module=module, path=attribute.split("."), signal=signal_name)
    return [sys.executable, "-c", script, *argv]


def run_child(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``args`` run to the end, its output captured as text."""
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
