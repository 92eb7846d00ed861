"""Top-1 / top-5 / loss by hand on made-up logits, for the checkpoint evaluator (EvalNet + evaluate) and for
the exported-model meter (mszoo.metrics.ClassificationMeter): the two paths of eval.py must agree.

Tie rule: among equal logits the lower class index ranks first (a stable sort), so a tie never counts a
sample twice and both paths count it the same way."""
import math

import mindspore.dataset as ds
import numpy as np
import pytest
from mindspore import nn

from mszoo.engine.datasets import KeptLoader
from mszoo.engine.evaluator import EvalNet, evaluate
from mszoo.metrics import ClassificationMeter, format_results, results_from_counts


class PassLogits(nn.Cell):
    """A 'model' whose input already is the logits."""

    def construct(self, x):
        return x * 1.0


# 7 classes (top-5 is a real cut). Each row: logits, label, top-1 hit, top-5 hit.
CASES_7 = [
    ([0.1, 2.0, 0.5, 0.3, 0.2, 0.0, -1.0], 1, 1, 1),  # clear winner
    ([0.1, 2.0, 0.5, 0.3, 0.2, 0.0, -1.0], 6, 0, 0),  # the lowest logit
    ([0.1, 2.0, 0.5, 0.3, 0.2, 0.0, -1.0], 3, 0, 1),  # third
    ([0.1, 2.0, 0.5, 0.3, 0.2, 0.0, -1.0], 0, 0, 1),  # fifth: just inside top-5
    ([0.1, 2.0, 0.5, 0.3, 0.2, 0.0, -1.0], 5, 0, 0),  # sixth: just outside
    ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 0, 1, 1),  # all tied: class 0 ranks first
    ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 3, 0, 1),  # all tied: ranks 0-4 are classes 0-4
    ([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], 6, 0, 0),  # all tied: class 6 ranks last
    ([0.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0], 2, 0, 1),  # tied for first with a lower index: not top-1
    ([0.0, 3.0, 3.0, 0.0, 0.0, 0.0, 0.0], 1, 1, 1),
]


def _hand_loss(rows):
    """Mean cross entropy written out: log(sum(exp(z))) - z[label]."""
    return sum(math.log(sum(math.exp(z) for z in logits)) - logits[label] for logits, label, *_ in rows) / len(rows)


def _expected(rows):
    n = len(rows)
    return {"top1": 100.0 * sum(r[2] for r in rows) / n, "top5": 100.0 * sum(r[3] for r in rows) / n,
            "loss": _hand_loss(rows), "num_samples": n}


def _evaluate(rows, batch_size):
    logits = np.asarray([r[0] for r in rows], np.float32)
    labels = np.asarray([r[1] for r in rows], np.int32)
    data = ds.NumpySlicesDataset({"image": logits, "label": labels}, shuffle=False).batch(batch_size)
    return evaluate(EvalNet(PassLogits()), data)


def _meter(rows, batch_size):
    meter = ClassificationMeter()
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        meter.update(np.asarray([r[0] for r in chunk], np.float32), np.asarray([r[1] for r in chunk]))
    return meter.result()


def _check(results, expected):
    assert results["num_samples"] == expected["num_samples"]
    assert results["top1"] == pytest.approx(expected["top1"], abs=1e-4)
    assert results["top5"] == pytest.approx(expected["top5"], abs=1e-4)
    assert results["loss"] == pytest.approx(expected["loss"], abs=1e-5)


@pytest.mark.parametrize("batch_size", [10, 4, 3], ids=["one-batch", "partial-last-4-4-2", "partial-last-3x3-1"])
def test_meter_top1_top5_loss_match_hand_counts(batch_size):
    expected = _expected(CASES_7)
    assert (expected["top1"], expected["top5"]) == (30.0, 70.0)
    _check(_meter(CASES_7, batch_size), expected)


@pytest.mark.parametrize("batch_size", [10, 4, 3], ids=["one-batch", "partial-last-4-4-2", "partial-last-3x3-1"])
def test_evaluator_top1_top5_loss_match_hand_counts(batch_size, pynative):
    _check(_evaluate(CASES_7, batch_size), _expected(CASES_7))


def test_evaluator_in_graph_mode_matches_hand_counts(graph_mode):
    """The trainer validates in GRAPH mode (mode: graph): same counts, the partial batch compiled too."""
    _check(_evaluate(CASES_7, 4), _expected(CASES_7))


class _Batched:
    """A batched dataset that, as the project's pipelines do, says its batch size."""

    def __init__(self, data, batch_size):
        self.data, self.batch_size = data, batch_size

    def create_tuple_iterator(self, **kwargs):
        return self.data.create_tuple_iterator(**kwargs)


class _ShapeRecorder:
    """An EvalNet that notes the shapes it is called with."""

    def __init__(self, net):
        self.net, self.shapes = net, []

    def set_train(self, mode):
        self.net.set_train(mode)

    def __call__(self, images, labels):
        self.shapes.append((tuple(images.shape), tuple(labels.shape)))
        return self.net(images, labels)


def test_a_partial_last_batch_is_padded_to_the_batch_shape_and_counts_only_its_samples(graph_mode):
    """One shape, so one compiled eval graph per run; the padding (label -1) adds nothing to the counts."""
    logits = np.asarray([r[0] for r in CASES_7], np.float32)
    labels = np.asarray([r[1] for r in CASES_7], np.int32)
    data = ds.NumpySlicesDataset({"image": logits, "label": labels}, shuffle=False).batch(4)
    net = _ShapeRecorder(EvalNet(PassLogits()))
    _check(evaluate(net, _Batched(data, 4)), _expected(CASES_7))
    assert net.shapes == [((4, 7), (4,))] * 3  # 4 + 4 + 2 samples, the last two padded


# 3 classes, fewer than 5: top-5 is every class, so always a hit; top-1 as usual.
CASES_3 = [
    ([0.0, 0.0, 0.0], 2, 0, 1),  # all tied: class 0 first
    ([0.0, 0.0, 0.0], 0, 1, 1),
    ([5.0, -1.0, 2.0], 1, 0, 1),
    ([5.0, -1.0, 2.0], 0, 1, 1),
    ([-3.0, 4.0, 4.5], 2, 1, 1),
]


def test_fewer_classes_than_k_makes_every_sample_a_top5_hit(pynative):
    expected = _expected(CASES_3)
    assert (expected["top1"], expected["top5"]) == (60.0, 100.0)
    assert _expected(CASES_3[:2])["loss"] == pytest.approx(math.log(3))
    _check(_meter(CASES_3, 2), expected)
    _check(_evaluate(CASES_3, 2), expected)


def test_counts_are_summed_not_batch_accuracies_averaged():
    # 3 of 3 right in one batch, 0 of 1 in the last: 75%, not the mean of 100% and 0%.
    assert results_from_counts(2.0, 3, 4, 4) == {"loss": 0.5, "top1": 75.0, "top5": 100.0, "num_samples": 4}
    meter = ClassificationMeter()
    meter.update([[1.0, 0.0]] * 3, [0, 0, 0])
    meter.update([[1.0, 0.0]], [1])
    result = meter.result()
    assert (result["top1"], result["num_samples"]) == (75.0, 4)
    assert format_results(result).startswith("eval results: {'loss': ")


class _Split(_Batched):
    """A batched split of ``decoded_bytes`` that records the ``num_epochs`` of each iterator and which were stopped
    (by number; MindSpore also stops a dataset's iterator when the dataset makes another)."""

    def __init__(self, data, batch_size, decoded_bytes):
        super().__init__(data, batch_size)
        self.decoded_bytes, self.made, self.stopped = decoded_bytes, [], set()

    def create_tuple_iterator(self, **kwargs):
        number = len(self.made)
        self.made.append(kwargs["num_epochs"])
        iterator = super().create_tuple_iterator(**kwargs)
        stop = iterator.stop

        def counted_stop():
            self.stopped.add(number)
            stop()

        iterator.stop = counted_stop
        return iterator


def _split(decoded_bytes):
    logits = np.asarray([r[0] for r in CASES_7], np.float32)
    labels = np.asarray([r[1] for r in CASES_7], np.int32)
    data = ds.NumpySlicesDataset({"image": logits, "label": labels}, shuffle=False).batch(4)
    return _Split(data, 4, decoded_bytes)


def test_a_small_split_is_read_pass_after_pass_from_one_iterator_made_for_its_passes(pynative):
    split = _split(decoded_bytes=1000)
    loader = KeptLoader(split, passes=3, max_bytes=1000)
    for done in range(1, 4):
        _check(evaluate(EvalNet(PassLogits()), loader), _expected(CASES_7))
        assert (split.made, split.stopped) == ([3], {0} if done == 3 else set())  # stopped after its last pass


def test_a_split_too_big_to_keep_gets_a_new_iterator_for_every_pass(pynative):
    split = _split(decoded_bytes=1001)
    loader = KeptLoader(split, passes=3, max_bytes=1000)
    for _ in range(3):
        _check(evaluate(EvalNet(PassLogits()), loader), _expected(CASES_7))
    assert (split.made, split.stopped) == ([1, 1, 1], {0, 1, 2})


def test_an_unfinished_pass_sets_its_iterator_aside_and_is_read_again_from_a_new_one(pynative):
    """Not stopped on the spot (a stop then could wait 5 s per prefetching worker), but by close()."""
    split = _split(decoded_bytes=10)
    loader = KeptLoader(split, passes=2)
    assert evaluate(EvalNet(PassLogits()), loader, should_stop=lambda: True) is None
    assert (split.made, split.stopped) == ([2], set())
    for _ in range(2):
        _check(evaluate(EvalNet(PassLogits()), loader), _expected(CASES_7))
    assert split.made == [2, 2] and 1 in split.stopped
    loader.close()
    assert split.stopped == {0, 1}
