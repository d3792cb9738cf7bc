"""The IOOS compliance-checker (CF-1.8 and ACDD-1.3) as a test helper.

``failures(path)`` runs both checkers the way ``compliance-checker --test cf:1.8 --test
acdd FILE`` does and returns the failed checks of a priority: "high" are CF's errors and
ACDD's "highly recommended" attributes, the level a file must pass; "medium" are CF's
warnings and ACDD's "recommended" ones. A check that crashes counts as a failure.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

CHECKERS = ("cf:1.8", "acdd")
PRIORITY = {"high": "high_priorities", "medium": "medium_priorities"}


def require_checker():
    """Skip where the dev extra (compliance-checker, and the udunits2 library) is missing; fail under CI."""
    try:
        from compliance_checker.runner import CheckSuite  # noqa: F401
        import cf_units  # noqa: F401  (loads libudunits2)
    except (ImportError, OSError) as exc:
        if os.environ.get("CI", "").lower() == "true":
            raise
        pytest.skip(f"compliance-checker unusable ({exc}): pip install -e '.[dev]' and apt-get install libudunits2-0")


def failures(path: str | os.PathLike, priority: str = "high") -> dict[str, list[str]]:
    """{"cf:1.8 <check>": [messages], "acdd <check>": [...]} of the checks that failed at ``priority``."""
    from compliance_checker.runner import CheckSuite

    with warnings.catch_warnings():  # its deprecation notices about checkers not run here
        warnings.simplefilter("ignore", DeprecationWarning)
        CheckSuite.load_all_available_checkers()
    suite = CheckSuite()
    ds = suite.load_dataset(str(path))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            groups = suite.run_all(ds, list(CHECKERS), skip_checks=[])
        out: dict[str, list[str]] = {}
        for checker, (results, errors) in groups.items():
            for name, (exc, _) in errors.items():
                out[f"{checker} {name}"] = [f"check crashed: {exc!r}"]
            scored = suite.build_structure(checker, results, str(path))
            for result in scored[PRIORITY[priority]]:
                got, possible = result.value if isinstance(result.value, tuple) else (int(result.value), 1)
                if got < possible:
                    out[f"{checker} {result.name}"] = [str(m) for m in result.msgs]
        return out
    finally:
        if hasattr(ds, "close"):
            ds.close()


def assert_compliant(path: str | os.PathLike) -> None:
    found = failures(path)
    assert not found, f"{Path(path).name} fails the CF-1.8/ACDD-1.3 checks:\n" + "\n".join(
        f"  {name}: {'; '.join(msgs)}" for name, msgs in found.items())
