"""Ascend HCCL rank tables: which devices of this server to launch, with their global ranks.

``python -m mszoo.tools.rank_table FILE`` prints ``device_id rank_id`` per line for this server (the one whose
``server_id`` is ``$SERVER_ID`` or one of this host's addresses, or the only server);
``--size`` prints the number of devices in the whole table. Used by
``scripts/run_distribute_train_ascend.sh``; a malformed table is one clear error line.
"""
import contextlib
import json
import socket
import sys


class RankTableError(ValueError):
    pass


def load_rank_table(path):
    try:
        with open(path, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, ValueError) as exc:
        raise RankTableError(f"cannot read rank table {path}: {exc}") from None
    servers = table.get("server_list") if isinstance(table, dict) else None
    if not isinstance(servers, list) or not servers:
        raise RankTableError(f"rank table {path} has no server_list")
    parsed = []
    for server in servers:
        devices = server.get("device")
        if not isinstance(devices, list) or not devices:
            raise RankTableError(f"rank table {path}: server {server.get('server_id')} lists no device")
        entries = []
        for dev in devices:
            try:
                entries.append((int(dev["device_id"]), int(dev["rank_id"])))
            except (KeyError, TypeError, ValueError):
                raise RankTableError(f"rank table {path}: device entry without integer device_id/rank_id: "
                                     f"{dev}") from None
        parsed.append((str(server.get("server_id", "")), entries))
    ranks = sorted(r for _, entries in parsed for _, r in entries)
    if ranks != list(range(len(ranks))):
        raise RankTableError(f"rank table {path}: rank_ids must be 0..{len(ranks) - 1}, got {ranks}")
    return parsed


def _local_addresses():
    names = {socket.gethostname()}
    with contextlib.suppress(OSError):
        names.update(info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None))
    return names


def local_devices(parsed, server_id=None):
    """``[(device_id, rank_id)]`` of this server."""
    if server_id:
        matches = [e for sid, e in parsed if sid == server_id]
    elif len(parsed) == 1:
        matches = [parsed[0][1]]
    else:
        local = _local_addresses()
        matches = [e for sid, e in parsed if sid in local]
    if len(matches) != 1:
        raise RankTableError("cannot tell which server of the rank table this is; set SERVER_ID to its server_id")
    return matches[0]


def main(argv=None):
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    size = "--size" in argv
    paths = [a for a in argv if a != "--size"]
    if len(paths) != 1:
        print("usage: python -m mszoo.tools.rank_table [--size] RANK_TABLE_FILE", file=sys.stderr)
        return 2
    try:
        parsed = load_rank_table(paths[0])
        if size:
            print(sum(len(e) for _, e in parsed))
        else:
            for device_id, rank_id in local_devices(parsed, os.environ.get("SERVER_ID")):
                print(device_id, rank_id)
    except RankTableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
