"""A features_only model trains as a backbone: a small FPN-style segmentation head on a tiny Twins, in GRAPH mode,
on a synthetic task made here (bright squares on a noisy background, one mask per image)."""
import mindspore as ms
import numpy as np
from mindspore import nn, ops

from mszoo.models import create_model


class FPNSegHead(nn.Cell):
    """Lateral 1x1 convs to one width, top-down nearest upsampling and sums, a 3x3 conv to one logit per pixel of
    the finest map, upsampled to the input size."""

    def __init__(self, in_channels, width=16):
        super().__init__()
        self.lateral = nn.CellList([nn.Conv2d(c, width, 1, has_bias=True) for c in in_channels])
        self.out = nn.Conv2d(width, 1, 3, pad_mode="same", has_bias=True)

    def construct(self, maps, size):
        x = self.lateral[-1](maps[-1])
        for i in range(len(maps) - 2, -1, -1):
            lat = self.lateral[i](maps[i])
            x = lat + ops.interpolate(x, size=lat.shape[2:], mode="nearest")
        return ops.interpolate(self.out(x), size=size, mode="bilinear", align_corners=False)


class Segmenter(nn.Cell):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone
        self.head = FPNSegHead(backbone.feature_info.channels())

    def construct(self, x):
        return self.head(self.backbone(x), x.shape[2:])


def squares(batch, size, rng):
    """Images with one bright square each on a noisy background, and the squares' masks."""
    images = rng.randn(batch, 3, size, size).astype(np.float32) * 0.5
    masks = np.zeros((batch, 1, size, size), np.float32)
    for b in range(batch):
        side = rng.randint(size // 4, size // 2)
        top, left = rng.randint(0, size - side, size=2)
        masks[b, 0, top:top + side, left:left + side] = 1.0
        images[b] += 2.0 * masks[b]
    return ms.Tensor(images), ms.Tensor(masks)


def test_a_features_only_backbone_trains_a_segmentation_head_in_graph_mode(graph_mode):
    ms.set_seed(0)
    backbone = create_model("twins_pcpvt_small", features_only=True, embed_dims=(16, 32, 48, 64),
                            num_heads=(1, 2, 3, 4), depths=(1, 1, 1, 1))
    net = Segmenter(backbone)
    loss_fn = nn.BCEWithLogitsLoss()
    optimizer = nn.Adam(net.trainable_params(), learning_rate=2e-3)

    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss, grads

    backbone_idx = [i for i, p in enumerate(optimizer.parameters) if p.name.startswith("patch_embeds.0.")]
    before = {i: optimizer.parameters[i].asnumpy().copy() for i in backbone_idx}
    rng = np.random.RandomState(0)
    net.set_train(True)
    losses = []
    for _ in range(40):
        loss, grads = step(*squares(8, 32, rng))
        losses.append(float(loss.asnumpy()))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5]), losses
    first_embed = [grads[i].asnumpy() for i in backbone_idx]  # the backbone's very first layer gets gradients
    assert all(np.isfinite(g).all() and np.abs(g).max() > 0 for g in first_embed)
    assert all(np.abs(optimizer.parameters[i].asnumpy() - before[i]).max() > 0 for i in backbone_idx)
