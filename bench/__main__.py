"""Run every benchmark module in this folder (each ``bench/*.py`` defines ``main()``)."""

import importlib
import sys
from pathlib import Path


def run_all() -> int:
    failed = 0
    for path in sorted(Path(__file__).parent.glob("*.py")):
        if path.stem.startswith("_"):
            continue
        print(f"== bench.{path.stem}", flush=True)
        try:
            importlib.import_module(f"bench.{path.stem}").main()
        except SystemExit as exc:
            failed += bool(exc.code)
        except Exception as exc:  # report and go on with the others
            print(f"bench.{path.stem} failed: {exc!r}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_all())
