"""``python -m analogtrain`` and the ``analogtrain`` script.

``--threads N`` is also put into the environment (OMP_NUM_THREADS, MKL_NUM_THREADS, NUMBA_NUM_THREADS)
before torch and numba load, because their thread pools are sized when they start: capping them later
(``train.set_threads``) leaves idle worker threads that spin and, beside other jobs on a loaded machine,
measurably slow the run (three one-thread training jobs beside two busy processes on two cores: 28 s
with the late cap alone, 15 s with the environment set first).
"""

import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def threads_in(argv: list[str]) -> str | None:
    """The value of ``--threads N`` / ``--threads=N`` in ``argv`` if it is a positive integer, else None
    (a bad value is left to the parser, which names it)."""
    for i, arg in enumerate(argv):
        value = arg.partition("=")[2] if arg.startswith("--threads=") else (
            argv[i + 1] if arg == "--threads" and i + 1 < len(argv) else None)
        if value is not None:
            return value if value.isdigit() and int(value) > 0 else None
    return None


def run(argv: list[str] | None = None) -> int:
    threads = threads_in(sys.argv[1:] if argv is None else argv)
    if threads is not None:
        for name in THREAD_VARIABLES:
            os.environ[name] = threads
    from .cli import main  # imports torch: only now

    return main(argv)


if __name__ == "__main__":
    sys.exit(run())
