"""``msrun`` as it behaves on a second machine, for tests that play two machines on one host.

msrun starts the cluster's scheduler on every machine that owns ``--master_addr``. On a real second machine
that address is node 0's, so only node 0 runs a scheduler; on one host every address is local, so both
launches would start one and race for the port. This wrapper is msrun with that one decision taken as a
second machine takes it; everything else (workers, ranks from ``--node_rank``, joining) is msrun's own.
"""
import sys

from mindspore.parallel.cluster.process_entity import _api
from mindspore.parallel.cluster.run import main

_api._is_local_ip = lambda address: False

if __name__ == "__main__":
    sys.exit(main())
