"""One rank-aware logger for the whole project.

Rank 0 prints to the console and writes ``train.log`` in the run directory; other ranks write only
their own ``train_rank{N}.log`` (distributed runs), so the console shows one copy of everything.
"""
import logging
import os
import sys

LOGGER_NAME = "mszoo"


def get_rank():
    """This process's rank from the launcher's environment (msrun, mpirun, rank table); 0 if alone.

    msrun's scheduler process (``MS_ROLE=MS_SCHED``) also runs the script; it gets -1 and stays silent.
    """
    if os.environ.get("MS_ROLE") == "MS_SCHED":
        return -1
    for var in ("RANK_ID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MS_NODE_ID", "RANK"):
        value = os.environ.get(var)
        if value is not None and value.strip().isdigit():
            return int(value)
    return 0


class _StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is now (not the one at creation), so redirection works."""

    def __init__(self):
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value):
        pass


def get_logger():
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        logger.setLevel(logging.INFO)
        logger.propagate = False
        if get_rank() == 0:
            handler = _StdoutHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
    return logger


def add_log_file(directory, rank=None):
    """Also log to ``directory/train.log`` (rank 0) or ``train_rank{N}.log`` (other ranks)."""
    rank = get_rank() if rank is None else rank
    if rank < 0:
        return None
    logger = get_logger()
    name = "train.log" if rank == 0 else f"train_rank{rank}.log"
    os.makedirs(directory, exist_ok=True)  # other ranks may get here before rank 0 created it
    path = os.path.join(directory, name)
    for h in logger.handlers:
        if isinstance(h, logging.FileHandler) and os.path.abspath(h.baseFilename) == os.path.abspath(path):
            return path
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return path


def remove_log_files():
    logger = get_logger()
    for h in list(logger.handlers):
        if isinstance(h, logging.FileHandler):
            logger.removeHandler(h)
            h.close()
