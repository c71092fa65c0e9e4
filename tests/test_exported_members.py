"""The public API is what ``__all__`` says, and each name really is there (as httpx's
tests/test_exported_members.py does)."""

import subprocess
import sys

import bulkpolyv

PUBLIC = [
    "ApplyResult",
    "ApplyStatus",
    "BulkPolyvError",
    "Credentials",
    "ErrorKind",
    "FanOut",
    "ItemKey",
    "ItemOutcome",
    "Journal",
    "LockBusy",
    "Manifest",
    "ManifestError",
    "Operation",
    "Plan",
    "PolyvClient",
    "PolyvError",
    "ReportError",
    "ReviewedPlan",
    "ReviewedPlanError",
    "RunEvents",
    "RunLock",
    "RunProgress",
    "RunSettings",
    "Runtime",
    "Status",
    "apply",
    "check_safety",
    "failed_items",
    "load_manifest",
    "make_plan",
    "open_runtime",
    "read_plan",
    "render_json",
    "render_markdown",
    "render_text",
    "select",
    "signed_params",
]


def test_all_lists_the_public_api():
    # Written out again on purpose: changing the public API must change this test too.
    assert bulkpolyv.__all__ == PUBLIC
    assert sorted(bulkpolyv._EXPORTS) == PUBLIC  # each name has a module to load it from


def test_every_exported_name_resolves_to_the_thing_of_that_name():
    for name in bulkpolyv.__all__:
        member = getattr(bulkpolyv, name)
        assert getattr(member, "__name__", name) == name, name
    assert set(bulkpolyv.__all__) <= set(dir(bulkpolyv))


def test_the_errors_a_user_meets_are_bulkpolyv_errors():
    for name in ("ManifestError", "PolyvError", "ReportError", "LockBusy", "ReviewedPlanError"):
        assert issubclass(getattr(bulkpolyv, name), bulkpolyv.BulkPolyvError), name


def test_importing_bulkpolyv_loads_nothing_else_until_a_name_is_used():
    code = (
        "import sys, bulkpolyv; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'bulkpolyv'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['bulkpolyv']"
