"""The safety check: a plan that switches off too much is refused, not applied.

Like octoDNS's update threshold: a wrong manifest (an empty CSV, a file of another
platform) shows as a plan that switches off a large share of what is managed; a policy
change rarely does. ``apply --force`` (see the CLI) overrides it after review.
"""

from __future__ import annotations

from dataclasses import dataclass

from bulkpolyv.plan import OpKind, Plan


@dataclass(frozen=True)
class SafetyVerdict:
    refused: bool
    reasons: tuple[str, ...]


DESTRUCTIVE_SHARE = 0.30
DESTRUCTIVE_MINIMUM = 10


def check_safety(plan: Plan) -> SafetyVerdict:
    """Refuse a plan that switches off more than 30 % (and at least 10) of the managed
    callbacks, channel monitor switches or monitor accounts: the signature of a wrong
    manifest, not of a policy change."""
    reasons = []
    ops = plan.operations
    offs = sum(1 for o in ops if o.kind is OpKind.SWITCH_OFF_CALLBACK)
    switches = sum(1 for o in ops if o.kind is OpKind.SWITCH_OFF_MONITORING)
    disables = sum(1 for o in ops if o.kind is OpKind.UPDATE_MONITOR and o.destructive)
    for count, managed, what in (
        (offs, plan.managed_callbacks, "callbacks switched off"),
        (switches, plan.managed_switches, "channels' monitoring switched off"),
        (disables, plan.managed_enables, "monitor accounts disabled"),
    ):
        if count >= DESTRUCTIVE_MINIMUM and managed and count / managed > DESTRUCTIVE_SHARE:
            reasons.append(
                f"{count} of {managed} managed {what} ({count / managed:.0%}, over "
                f"{DESTRUCTIVE_SHARE:.0%})"
            )
    return SafetyVerdict(bool(reasons), tuple(reasons))
