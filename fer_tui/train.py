"""`python -m fer_tui.train ARGS` is `fer-tui train ARGS` (also under `torchrun ... -m`).

An entry point like `fer_tui/__main__.py`, not part of the core: the trainer itself is the
`fer_tui.training` package, its flags are in `fer_tui.commands.train`.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from fer_tui.cli import main

    raise SystemExit(main(["train", *sys.argv[1:]]))
