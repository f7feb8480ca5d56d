"""python -m harness_image [--tag TAG] [--force]: build (or reuse) the harness image."""

from __future__ import annotations

import argparse
import sys

from .build import HarnessImageError, build_harness_image
from .constants import HARNESS_IMAGE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness_image", description=__doc__)
    parser.add_argument("--tag", default=HARNESS_IMAGE)
    parser.add_argument("--force", action="store_true", help="Rebuild every layer.")
    args = parser.parse_args(argv)
    try:
        print(build_harness_image(tag=args.tag, force=args.force))
    except HarnessImageError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
