"""great-expectations is imported without the modules only unused expectations need, and they still work."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pipelines.quality.suite import DEFERRED_GX_IMPORTS


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this one has imported GX and the deferred modules long ago)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_gx_is_imported_and_validates_without_loading_the_deferred_modules() -> None:
    out = _python(
        f"""
        import sys
        from pipelines.quality import validate_frame
        from tests.quality.frames import customer_frame

        result = validate_frame(customer_frame(20), "customer")
        kinds = [type(sys.modules[n]).__name__ for n in {DEFERRED_GX_IMPORTS!r}]
        loaded = [k for k in kinds if not k.startswith("_Deferred")]
        print(result.success, "great_expectations" in sys.modules, loaded)
        """
    )
    assert out == "True True []"


def test_a_deferred_module_is_the_real_module_at_first_use() -> None:
    out = _python(
        """
        import sys
        from pipelines.quality.suite import _gx

        _gx()
        from great_expectations.expectations.core import expect_column_kl_divergence_to_be_less_than as kl

        entropy = kl.stats.entropy([0.5, 0.5])  # the module GX bound at import, used through its name
        chart = kl.alt.Chart
        import scipy.stats
        print(round(float(entropy), 4), chart.__module__, type(sys.modules["scipy.stats"]).__name__,
              scipy.stats.norm.cdf(0.0))
        """
    )
    assert out == "0.6931 altair.vegalite.v6.api module 0.5"
