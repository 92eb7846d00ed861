"""ImageFolder pipeline: decoding of mixed formats, skipping of bad files, sharding, subsets, digits."""
import io
import json
import logging
import os
import random
import signal

import numpy as np
import pytest
from PIL import Image

from mszoo.data import dataset as dataset_mod
from mszoo.data.dataset import (
    create_dataset,
    find_classes,
    list_image_folder,
    load_class_names,
    load_rgb_image,
    prepare_digits,
    report_skipped,
    save_class_names,
)
from tests.data.helpers import color_of, decode_solid, jpeg_bytes, png16_rgb_bytes, random_rgb, write_solid_folder


def _epoch(data):
    """All (image, label) rows of one epoch."""
    rows = []
    for images, labels in data.create_tuple_iterator(output_numpy=True, num_epochs=1):
        rows.extend(zip(images, labels))
    return rows


def _colors(rows):
    return sorted(decode_solid(img) for img, _ in rows)


# ------------------------------------------------------------------------------------------------------------
# decoding
# ------------------------------------------------------------------------------------------------------------
def _write_mixed_formats(folder):
    """One file per format; returns {file name: expected RGB pixel at (0, 0)}."""
    os.makedirs(folder, exist_ok=True)
    base = Image.new("RGB", (9, 7), (200, 40, 10))
    expected = {}
    with open(os.path.join(folder, "rgb.jpg"), "wb") as f:
        f.write(jpeg_bytes(base))
    expected["rgb.jpg"] = None  # lossy
    rgba = Image.new("RGBA", (9, 7), (10, 250, 30, 0))
    rgba.save(os.path.join(folder, "rgba.png"))
    expected["rgba.png"] = (10, 250, 30)  # alpha dropped like convert('RGB')
    pal = Image.new("P", (9, 7), 1)
    pal.putpalette([0, 0, 0, 12, 34, 56] + [0] * 762)
    pal.info["transparency"] = 0
    pal.save(os.path.join(folder, "palette.png"), transparency=0)
    expected["palette.png"] = (12, 34, 56)
    Image.new("L", (9, 7), 77).save(os.path.join(folder, "grey.png"))
    expected["grey.png"] = (77, 77, 77)
    Image.new("LA", (9, 7), (90, 128)).save(os.path.join(folder, "grey_alpha.png"))
    expected["grey_alpha.png"] = (90, 90, 90)
    with open(os.path.join(folder, "cmyk.jpg"), "wb") as f:
        f.write(jpeg_bytes(Image.new("CMYK", (9, 7), (0, 255, 255, 0))))
    expected["cmyk.jpg"] = None
    Image.fromarray(np.full((7, 9), 65535 // 2, np.uint16)).save(os.path.join(folder, "grey16.png"))
    expected["grey16.png"] = (127, 127, 127)  # scaled, not clipped to white
    with open(os.path.join(folder, "rgb16.png"), "wb") as f:
        f.write(png16_rgb_bytes(np.full((7, 9, 3), [65535, 32896, 0], np.uint16)))
    expected["rgb16.png"] = (255, 128, 0)
    Image.new("1", (9, 7), 1).save(os.path.join(folder, "bilevel.bmp"))
    expected["bilevel.bmp"] = (255, 255, 255)
    base.save(os.path.join(folder, "tiff.tif"))
    expected["tiff.tif"] = (200, 40, 10)
    base.save(os.path.join(folder, "anim.gif"))
    expected["anim.gif"] = None  # quantised
    base.save(os.path.join(folder, "img.webp"), lossless=True)
    expected["img.webp"] = (200, 40, 10)
    return expected


def test_every_format_decodes_to_rgb(tmp_path):
    expected = _write_mixed_formats(str(tmp_path / "c"))
    for name, pixel in expected.items():
        img = load_rgb_image(str(tmp_path / "c" / name))
        assert img.mode == "RGB" and img.size == (9, 7), name
        if pixel is not None:
            assert img.getpixel((0, 0)) == pixel, name
    cmyk = load_rgb_image(str(tmp_path / "c" / "cmyk.jpg")).getpixel((4, 3))
    assert cmyk[0] > 200 and cmyk[1] < 60 and cmyk[2] < 60  # C=0, M=Y=255 is red


def test_mixed_formats_flow_through_the_pipeline_as_three_channels(tmp_path):
    expected = _write_mixed_formats(str(tmp_path / "val" / "mixed"))
    write_solid_folder(str(tmp_path / "val"), num_classes=1, per_class=2)
    data = create_dataset(str(tmp_path), "val", batch_size=4, image_size=8, num_parallel_workers=1)
    rows = _epoch(data)
    assert len(rows) == len(expected) + 2
    assert all(img.shape == (3, 8, 8) and img.dtype == np.float32 for img, _ in rows)
    assert data.skipped.count == 0 and data.class_names == ["c0", "mixed"]


# ------------------------------------------------------------------------------------------------------------
# bad files
# ------------------------------------------------------------------------------------------------------------
BAD_FILES = ("corrupt.jpg", "truncated.jpg", "empty.png", "text.png")


def _add_bad_files(folder):
    with open(os.path.join(folder, "corrupt.jpg"), "wb") as f:
        f.write(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4)  # JPEG magic, garbage body
    whole = jpeg_bytes(random_rgb(h=40, w=40, seed=0))
    with open(os.path.join(folder, "truncated.jpg"), "wb") as f:
        f.write(whole[:len(whole) // 2])
    open(os.path.join(folder, "empty.png"), "wb").close()
    with open(os.path.join(folder, "text.png"), "w") as f:
        f.write("this is not a picture\n")
    with open(os.path.join(folder, "notes.txt"), "w") as f:  # not an image extension: ignored at listing
        f.write("labelling notes\n")


@pytest.mark.parametrize("name", BAD_FILES)
def test_each_bad_file_fails_to_load(tmp_path, name):
    _add_bad_files(str(tmp_path))
    with pytest.raises(OSError):  # PIL's UnidentifiedImageError, or "image file is truncated"
        load_rgb_image(str(tmp_path / name))


def test_eval_skips_bad_files_and_reports_them_once(tmp_path, caplog):
    colors = write_solid_folder(str(tmp_path / "val"))
    _add_bad_files(str(tmp_path / "val" / "c1"))
    with caplog.at_level(logging.WARNING, logger=dataset_mod.__name__):
        data = create_dataset(str(tmp_path), "val", batch_size=4, image_size=8, num_parallel_workers=1)
        for _ in range(2):  # two epochs: every good image exactly once per epoch, bad ones logged once in total
            rows = _epoch(data)
            assert _colors(rows) == sorted(colors)
        assert report_skipped(data) == 4
    assert sorted(os.path.basename(p) for p in data.skipped.paths()) == sorted(BAD_FILES)
    for name in BAD_FILES:
        path = str(tmp_path / "val" / "c1" / name)
        assert sum(f"skipping undecodable image {path}" in r.getMessage() for r in caplog.records) == 1
    assert any("notes.txt" in r.getMessage() for r in caplog.records)  # ignored file is mentioned
    labels = [int(label) for _, label in rows]
    assert labels == sorted(labels) and len(labels) == 15  # no shuffle in eval, last partial batch kept


def test_training_replaces_bad_files_and_keeps_full_batches(tmp_path):
    write_solid_folder(str(tmp_path / "train"), per_class=4)
    _add_bad_files(str(tmp_path / "train" / "c0"))
    data = create_dataset(str(tmp_path), "train", batch_size=4, image_size=8, num_parallel_workers=1,
                          color_jitter=0.0)
    assert data.num_files == 16 and data.get_dataset_size() == 4
    batches = list(data.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert len(batches) == 4 and all(x.shape == (4, 3, 8, 8) and y.dtype == np.int32 for x, y in batches)
    good = {color_of(n) for n in range(12)}
    assert all(decode_solid(img) in good for x, _ in batches for img in x)
    assert data.skipped.count == 4


def test_a_data_config_sets_up_the_pipeline_and_mindspores_dataset_is_left_alone(tmp_path):
    from mszoo.data import DataConfig

    write_solid_folder(str(tmp_path / "val"), per_class=3)
    data_cfg = DataConfig(batch_size=4, image_size=8, num_parallel_workers=1)
    data = create_dataset(str(tmp_path), "val", data_cfg)
    files = data.num_files
    assert files > 4 and data.get_dataset_size() == data.num_batches == -(-files // 4)  # from the file count
    assert not hasattr(data.dataset, "class_names") and data.dataset.dataset_size is None  # MindSpore's own cache
    assert data.dataset.get_batch_size() == 4
    assert create_dataset(str(tmp_path), "val", data_cfg, batch_size=files).num_batches == 1  # a field overridden
    assert data_cfg.batch_size == 4  # the given config is never changed
    with pytest.raises(TypeError):
        create_dataset(str(tmp_path), "val", data_cfg, batch_sizes=files)


def test_skips_in_worker_processes_are_counted_in_the_main_process(tmp_path):
    write_solid_folder(str(tmp_path / "val"), per_class=3)
    _add_bad_files(str(tmp_path / "val" / "c2"))
    data = create_dataset(str(tmp_path), "val", batch_size=2, image_size=8, num_parallel_workers=2,
                          python_multiprocessing=True)
    rows = _epoch(data)
    assert len(rows) == 9
    assert data.skipped.count == 4


class _DrawRandom:
    """A transform that returns one numpy and one Python random draw (what RandAugment's and the crops' choices
    would use)."""

    def __call__(self, img):
        out = np.empty((3, 8, 8), np.float32)
        out[0], out[1:] = np.random.randint(0, 2 ** 24), random.randrange(2 ** 24)
        return out


def test_numpy_random_differs_between_worker_processes_of_a_per_image_source(tmp_path):
    """Forked workers inherit numpy's global state; without a reseed they would draw the same augmentations."""
    import mindspore.dataset as ds

    write_solid_folder(str(tmp_path / "train"), num_classes=1, per_class=8)
    samples, _, _ = dataset_mod.list_image_folder(str(tmp_path / "train"))
    source = dataset_mod.ImageFolderSource(samples, _DrawRandom(), (3, 8, 8))
    data = ds.GeneratorDataset(source, ["image", "label"], shuffle=False, num_parallel_workers=2,
                               python_multiprocessing=True).batch(8)
    (x, _), = list(data.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert len(set(x[:, 0, 0, 0].tolist())) == 8


def test_training_augmentation_is_the_same_with_any_workers_and_differs_between_batches(tmp_path):
    """Each batch seeds its own draws, so one worker thread and two worker processes give the same images."""
    write_solid_folder(str(tmp_path / "train"), num_classes=1, per_class=12)

    def batches(workers, **kw):
        data = create_dataset(str(tmp_path), "train", batch_size=3, image_size=8, num_parallel_workers=workers,
                              transform=_DrawRandom(), **kw)
        return [x[:, :2, 0, 0] for x, _ in data.create_tuple_iterator(output_numpy=True, num_epochs=1)]

    one, two = batches(1), batches(2, python_multiprocessing=True)
    assert len(one) == 4
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)
    assert len({v for a in one for v in a.ravel().tolist()}) == 24  # every draw its own


class _StopSignalsBlockedHere:
    """A transform that returns 1 when SIGINT and SIGTERM are both blocked in the process running it, else 0."""

    def __call__(self, img):
        with open("/proc/self/status") as f:
            mask = int(next(line for line in f if line.startswith("SigBlk:")).split()[1], 16)
        both = all(mask >> (int(sig) - 1) & 1 for sig in (signal.SIGINT, signal.SIGTERM))
        return np.full((3, 8, 8), float(both), np.float32)


def test_dataset_workers_block_stop_signals_and_the_main_thread_keeps_its_mask(tmp_path):
    """A SIGTERM to the whole process group must not kill the workers under a training that is saving its stop."""
    write_solid_folder(str(tmp_path / "train"), num_classes=1, per_class=8)
    data = create_dataset(str(tmp_path), "train", batch_size=8, image_size=8, num_parallel_workers=2,
                          python_multiprocessing=True, transform=_StopSignalsBlockedHere())
    before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    (x, _), = list(data.create_tuple_iterator(output_numpy=True, num_epochs=1))
    assert x[:, 0, 0, 0].tolist() == [1.0] * 8
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == before


# ------------------------------------------------------------------------------------------------------------
# folder structure errors, class names
# ------------------------------------------------------------------------------------------------------------
def test_empty_class_folder_is_an_error_naming_it(tmp_path):
    write_solid_folder(str(tmp_path / "train"))
    os.makedirs(tmp_path / "train" / "c9")
    with open(tmp_path / "train" / "c9" / "readme.txt", "w") as f:
        f.write("x")
    with pytest.raises(ValueError, match=r"empty class folder.*c9"):
        create_dataset(str(tmp_path), "train", batch_size=2, image_size=8)


def test_empty_split_and_missing_split_are_errors(tmp_path):
    os.makedirs(tmp_path / "val")
    with pytest.raises(ValueError, match="no class folders"):
        create_dataset(str(tmp_path), "val", batch_size=2, image_size=8)
    with pytest.raises(ValueError, match="train folder not found"):
        create_dataset(str(tmp_path), "train", batch_size=2, image_size=8)


def test_class_index_is_sorted_folder_names_and_round_trips(tmp_path):
    for name in ("zebra", "Apple", "mango"):
        os.makedirs(tmp_path / name)
        Image.new("RGB", (4, 4)).save(tmp_path / name / "a.png")
    assert find_classes(str(tmp_path)) == ["Apple", "mango", "zebra"]
    samples, names, _ = list_image_folder(str(tmp_path))
    assert [label for _, label in samples] == [0, 1, 2]
    save_class_names(names, str(tmp_path / "classes.json"))
    assert load_class_names(str(tmp_path / "classes.json")) == names
    (tmp_path / "classes.txt").write_text("Apple\nmango\nzebra\n")
    assert load_class_names(str(tmp_path / "classes.txt")) == names
    (tmp_path / "idx.json").write_text(json.dumps({"1": "mango", "0": "Apple", "2": "zebra"}))
    assert load_class_names(str(tmp_path / "idx.json")) == names


def test_val_uses_train_class_list(tmp_path):
    write_solid_folder(str(tmp_path / "val"), num_classes=2)
    samples, names, _ = list_image_folder(str(tmp_path / "val"), class_names=["c_extra", "c0", "c1"])
    assert {label for _, label in samples} == {1, 2}
    with pytest.raises(ValueError, match="not in the class list"):
        list_image_folder(str(tmp_path / "val"), class_names=["c0"])


def test_explicit_split_dir_wins_over_root(tmp_path):
    write_solid_folder(str(tmp_path / "elsewhere"), num_classes=2, per_class=2)
    data = create_dataset(None, "val", split_dir=str(tmp_path / "elsewhere"), batch_size=3, image_size=8,
                          num_parallel_workers=1)
    assert data.directory == str(tmp_path / "elsewhere") and len(_epoch(data)) == 4
    assert data.get_dataset_size() == 2


# ------------------------------------------------------------------------------------------------------------
# sharding, subsets, workers
# ------------------------------------------------------------------------------------------------------------
def test_two_eval_shards_partition_the_dataset(solid_folder):
    root, colors = solid_folder
    parts = [_colors(_epoch(create_dataset(None, "val", split_dir=root, batch_size=4, image_size=8,
                                           num_parallel_workers=1, num_shards=2, shard_id=k))) for k in range(2)]
    assert not set(parts[0]) & set(parts[1])
    assert sorted(parts[0] + parts[1]) == sorted(colors)
    assert abs(len(parts[0]) - len(parts[1])) <= 1


def test_two_train_shards_cover_the_dataset_with_equal_sizes(solid_folder):
    root, colors = solid_folder
    kw = dict(split_dir=root, batch_size=1, image_size=8, num_parallel_workers=1, color_jitter=0.0)
    parts = [_colors(_epoch(create_dataset(None, "train", num_shards=2, shard_id=k, **kw))) for k in range(2)]
    assert len(parts[0]) == len(parts[1]) == 8  # ceil(15 / 2): padded by one repeat, like DistributedSampler
    assert set(parts[0]) | set(parts[1]) == set(colors)
    assert len(set(parts[0]) & set(parts[1])) <= 1


def test_num_samples_takes_a_fixed_subset(solid_folder):
    root, colors = solid_folder
    kw = dict(split_dir=root, batch_size=4, image_size=8, num_parallel_workers=1, num_samples=6)
    first = _colors(_epoch(create_dataset(None, "val", **kw)))
    second = _colors(_epoch(create_dataset(None, "val", **kw)))
    assert len(first) == 6 and first == second and set(first) <= set(colors)


def test_parallel_workers_give_the_same_eval_data(solid_folder):
    root, colors = solid_folder
    one = _epoch(create_dataset(None, "val", split_dir=root, batch_size=4, image_size=8, num_parallel_workers=1))
    two = _epoch(create_dataset(None, "val", split_dir=root, batch_size=4, image_size=8, num_parallel_workers=2))
    assert [decode_solid(x) for x, _ in one] == [decode_solid(x) for x, _ in two]
    assert [int(y) for _, y in one] == [int(y) for _, y in two]


def test_worker_count_is_capped_at_cpu_count(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert dataset_mod._worker_count(8) == 2 and dataset_mod._worker_count(1) == 1


def test_eval_dataset_size_does_not_decode_the_split(solid_folder, monkeypatch):
    root, _ = solid_folder
    calls = []
    real = dataset_mod.load_rgb_image
    monkeypatch.setattr(dataset_mod, "load_rgb_image", lambda p: calls.append(p) or real(p))
    data = create_dataset(None, "val", split_dir=root, batch_size=4, image_size=8, num_parallel_workers=1)
    assert data.get_dataset_size() == 4 and not calls


def test_train_order_is_a_seeded_permutation_per_epoch_dealt_out_to_equal_shards():
    from mszoo.data.train_batches import epoch_order

    first, again, second = epoch_order(10, 7, 0), epoch_order(10, 7, 0), epoch_order(10, 7, 1)
    assert sorted(first) == list(range(10)) and list(first) == list(again) and list(first) != list(second)
    assert list(epoch_order(5, 7, 0, shuffle=False)) == [0, 1, 2, 3, 4]
    shards = [epoch_order(10, 7, 0, num_shards=3, shard_id=k) for k in range(3)]
    assert [len(s) for s in shards] == [4, 4, 4]  # padded by repeating the permutation's start
    assert sorted(np.concatenate(shards)) == sorted(list(first) + list(first[:2]))


def test_each_epoch_of_one_train_iterator_has_its_own_order(solid_folder):
    root, colors = solid_folder
    data = create_dataset(None, "train", split_dir=root, batch_size=5, image_size=8, num_parallel_workers=1,
                          color_jitter=0.0, hflip=0.0, min_crop=1.0, ratio=(1.0, 1.0))
    iterator = data.create_tuple_iterator(output_numpy=True, num_epochs=2)
    epochs = [[decode_solid(img) for x, _ in iterator for img in x] for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) == sorted(colors) and epochs[0] != epochs[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_train_batches_hold_the_transforms_output_bit_for_bit_in_the_epoch_order(solid_folder, workers):
    from mindspore.dataset import config as ds_config

    from mszoo.data import create_transform, list_image_folder, load_rgb_image
    from mszoo.data.train_batches import epoch_order

    root, _ = solid_folder
    kw = dict(image_size=8, color_jitter=0.0, hflip=0.0, min_crop=1.0, ratio=(1.0, 1.0))
    data = create_dataset(None, "train", split_dir=root, batch_size=3, num_parallel_workers=workers, **kw)
    samples, _, _ = list_image_folder(root)
    tf = create_transform(8, is_training=True, **{k: v for k, v in kw.items() if k != "image_size"})
    order = epoch_order(len(samples), ds_config.get_seed(), 0)
    rows = _epoch(data)
    assert [int(y) for _, y in rows] == [samples[j][1] for j in order]
    for (x, _), j in zip(rows, order):
        np.testing.assert_array_equal(x, tf(load_rgb_image(samples[j][0])))


class _CountCalls:
    """A transform that counts its calls in a counter shared with the worker processes."""

    def __init__(self):
        import multiprocessing

        self.calls = multiprocessing.Value("i", 0)

    def __call__(self, img):
        with self.calls.get_lock():
            self.calls.value += 1
        return np.zeros((3, 8, 8), np.float32)


def test_train_workers_build_whole_batches_and_only_a_few_ahead(tmp_path):
    """A row is a whole batch, so MindSpore's default prefetch (16 rows per operator and per worker queue) would
    keep dozens of batches in memory; the training pipeline holds two per queue, and leaves the setting as it was."""
    import time

    from mindspore.dataset import config as ds_config

    write_solid_folder(str(tmp_path / "train"), num_classes=1, per_class=64)
    count = _CountCalls()
    data = create_dataset(str(tmp_path), "train", batch_size=2, image_size=8, num_parallel_workers=2,
                          python_multiprocessing=True, transform=count)
    before = ds_config.get_prefetch_size()
    iterator = data.create_tuple_iterator(output_numpy=True, num_epochs=1)
    x, y = next(iterator)
    assert x.shape == (2, 3, 8, 8) and y.shape == (2,)
    time.sleep(1.0)
    assert count.calls.value <= 2 * 14  # 2 per worker queue + 1 in hand per worker + 2 rows per operator ...
    assert ds_config.get_prefetch_size() == before
    assert sum(1 for _ in iterator) == 31  # drained: workers blocked on full queues would take 5 s to stop


# ------------------------------------------------------------------------------------------------------------
# mixup in the pipeline
# ------------------------------------------------------------------------------------------------------------
def test_train_pipeline_with_mixup_gives_soft_targets_and_turns_off(solid_folder):
    root, _ = solid_folder
    data = create_dataset(None, "train", split_dir=root, batch_size=4, image_size=8, num_parallel_workers=1,
                          mixup=0.8, cutmix=1.0, label_smoothing=0.1, mixup_off_epoch=1,
                          auto_augment="rand-m9-mstd0.5-inc1", re_prob=0.25, re_mode="pixel")
    assert data.get_dataset_size() == 3
    iterator = data.create_tuple_iterator(output_numpy=True, num_epochs=2)
    epochs = [[(x, y) for x, y in iterator] for _ in range(2)]
    for batches in epochs:
        assert len(batches) == 3
        for x, y in batches:
            assert x.shape == (4, 3, 8, 8) and y.shape == (4, 3) and y.dtype == np.float32
            np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-5)
    on_value = 0.9 + 0.1 / 3
    assert all(np.allclose(y.max(1), on_value) for _, y in epochs[1])  # epoch 1: plain smoothed one-hots
    assert not all(np.allclose(y.max(1), on_value) for _, y in epochs[0])


def test_set_epoch_turns_mixup_off_when_each_epoch_has_its_own_iterator(solid_folder):
    root, _ = solid_folder
    data = create_dataset(None, "train", split_dir=root, batch_size=4, image_size=8, num_parallel_workers=1,
                          mixup=0.8, cutmix=1.0, label_smoothing=0.1, mixup_off_epoch=1)
    maxima = []
    for epoch in range(2):
        data.mixup_fn.set_epoch(epoch)
        maxima.append([y.max(1) for _, y in data.create_tuple_iterator(output_numpy=True, num_epochs=1)])
    on_value = 0.9 + 0.1 / 3
    assert not all(np.allclose(m, on_value) for m in maxima[0])
    assert all(np.allclose(m, on_value) for m in maxima[1])


def test_bad_batch_and_shard_arguments_are_refused(solid_folder):
    root, _ = solid_folder
    with pytest.raises(ValueError, match="even"):
        create_dataset(None, "train", split_dir=root, batch_size=3, image_size=8, mixup=0.8)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        create_dataset(None, "train", split_dir=root, batch_size=16, image_size=8)
    with pytest.raises(ValueError, match="shard"):
        create_dataset(None, "val", split_dir=root, batch_size=4, image_size=8, num_shards=2)
    with pytest.raises(ValueError, match="shard_id"):
        create_dataset(None, "val", split_dir=root, batch_size=4, image_size=8, num_shards=2, shard_id=2)


# ------------------------------------------------------------------------------------------------------------
# embedded digits
# ------------------------------------------------------------------------------------------------------------
def test_digits_are_written_once_and_load_through_imagefolder(tmp_path, monkeypatch):
    from sklearn.datasets import load_digits

    root = prepare_digits(str(tmp_path))
    assert find_classes(os.path.join(root, "train")) == [str(d) for d in range(10)]
    train, _, _ = list_image_folder(os.path.join(root, "train"))
    val, _, _ = list_image_folder(os.path.join(root, "val"))
    assert len(train) + len(val) == 1797 and len(val) == 360
    counts = np.bincount([label for _, label in val], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified
    digits = load_digits()
    path, label = val[0]
    index = int(os.path.basename(path)[:4])
    assert label == digits.target[index]
    img = Image.open(path)
    assert img.mode == "L" and img.size == (8, 8)
    np.testing.assert_array_equal(np.asarray(img), np.round(digits.images[index] * 255 / 16).astype(np.uint8))

    import sklearn.datasets
    monkeypatch.setattr(sklearn.datasets, "load_digits", lambda: pytest.fail("digits written twice"))
    assert prepare_digits(str(tmp_path)) == root
    with pytest.raises(ValueError, match="digits split"):
        prepare_digits(str(tmp_path), seed=1)

    data = create_dataset(root, "val", batch_size=64, image_size=16, num_parallel_workers=1)
    rows = _epoch(data)
    assert len(rows) == 360 and rows[0][0].shape == (3, 16, 16) and data.class_names[3] == "3"


def test_raw_bytes_helper_makes_a_real_16_bit_png(tmp_path):
    data = png16_rgb_bytes(np.full((2, 3, 3), 1000, np.uint16))
    img = Image.open(io.BytesIO(data))
    assert img.size == (3, 2)
