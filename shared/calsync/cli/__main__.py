"""``python -m calsync.cli``: the same as the ``calsync`` console script."""

from __future__ import annotations

from calsync.cli.app import main

if __name__ == "__main__":
    main()
