"""Run the `vaezoo` command line, writing the wall-clock time of its first optimizer step to a file.

    python benchmarks/data/first_step.py TIME_FILE train vae-conv --dataset folder ...

A global optimizer step hook (torch.optim.optimizer.register_optimizer_step_post_hook) writes time.time() at
the first step; the caller subtracts its own start time, so the figure includes start-up, listing the data and
building the model: what a user waits before training begins.
"""
from __future__ import annotations

import sys
import time

from torch.optim.optimizer import register_optimizer_step_post_hook


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    written = []

    def first_step(optimizer, args, kwargs) -> None:
        if not written:
            written.append(time.time())
            with open(out, "w", encoding="utf-8") as f:
                f.write(f"{written[0]:.6f}\n")

    register_optimizer_step_post_hook(first_step)
    from vaezoo.cli.main import main as vaezoo_main

    return vaezoo_main(argv)


if __name__ == "__main__":
    sys.exit(main())
