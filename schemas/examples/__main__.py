"""Regenerate the example messages: ``python -m schemas.examples``."""

from __future__ import annotations

from schemas.examples import write


def main() -> None:
    for path in write():
        print(path)


if __name__ == "__main__":
    main()
