"""mszoo.fileio: a write that fails leaves the old file whole and no temporary behind; hashes are the file's."""
import hashlib
import os

import pytest

from mszoo.fileio import atomic_open, sha256_file, temp_path, written_as


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("old\n")
    with pytest.raises(RuntimeError), atomic_open(path) as f:
        f.write("half of the new")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_a_finished_write_replaces_the_file_through_a_temporary_beside_it(tmp_path):
    path = tmp_path / "curves.png"
    with written_as(path) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".png") and not os.path.exists(path)
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert path.read_bytes() == b"new" and os.listdir(tmp_path) == ["curves.png"]


def test_a_temporary_left_by_a_killed_process_is_not_reused(tmp_path):
    path = tmp_path / "last.ckpt"
    stale = temp_path(path)
    with open(stale, "w") as f:
        f.write("from a process killed while writing")
    os.chmod(stale, 0o400)  # MindSpore leaves its checkpoints read-only
    with written_as(path) as tmp:
        assert not os.path.exists(tmp)
        with open(tmp, "w") as f:
            f.write("fresh")
    assert path.read_text() == "fresh" and not os.path.exists(stale)


def test_sha256_file_is_the_hash_of_the_bytes(tmp_path):
    data = os.urandom(3 << 20)  # more than one read chunk
    (tmp_path / "w.bin").write_bytes(data)
    assert sha256_file(tmp_path / "w.bin") == hashlib.sha256(data).hexdigest()
