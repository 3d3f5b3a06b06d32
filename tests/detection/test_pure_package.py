"""``detection`` is pure audio ML: every module imports in a process where Django and the
other web frameworks cannot be imported (its Django entry points live above it)."""

import pkgutil
import subprocess
import sys

import detection

WEB = ("django", "channels", "celery", "rest_framework", "daphne")


def pure_modules() -> list[str]:
    return [m.name for m in pkgutil.walk_packages(detection.__path__, "detection.")]


def test_every_detection_module_imports_without_django():
    modules = pure_modules()
    assert "detection.features" in modules and "detection.training" in modules
    code = "\n".join(
        [
            "import sys",
            *(f"sys.modules[{name!r}] = None" for name in WEB),  # import of these now fails
            *(f"import {name}" for name in modules),
            "print('imported', len(sys.modules))",
        ]
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported" in result.stdout
