"""Failpoints: named places where a test can have the process killed, to prove what a crash leaves.

`GOVERN_FAILPOINT=name` makes the process SIGKILL itself when it reaches `failpoint(name)` (no
cleanup, no exception handlers: what a power cut or the OOM killer does). Unset, a failpoint costs
one dictionary lookup. The named points are in the code that publishes a retrained version:

- `train.epoch`: after a training epoch of a retraining job;
- `publish.files_stored`: the artifact and prediction files are stored, nothing is recorded yet;
- `publish.before_commit`: the version, its predictions, evaluation and gate are written in the open
  transaction, not committed.
"""

from __future__ import annotations

import os
import signal

ENV = "GOVERN_FAILPOINT"


def failpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
