"""Per-block gradient checkpointing (timm's ``set_grad_checkpointing``) with MindSpore's recompute.

A recomputed block keeps only its input for the backward pass; its inner activations are computed again
when the backward pass reaches it (``Cell.recompute()``: a graph pass in GRAPH mode, a re-run of the
block with the random state restored in PyNative mode). Gradients are the same; a training step costs
one more forward pass of the blocks. Random ops inside a block (drop path) must draw the same numbers in
the recomputation. GRAPH mode (training's default) does: its recompute pass reuses the forward's random
mask. PyNative mode re-runs the block, and MindSpore's CPU random ops do not follow the random state
that its recompute restores, so the recomputed drop-path masks would differ from the forward's: with
drop path in PyNative mode checkpointing is refused.

MindSpore configures recompute once per cell and has no public way to undo it, so enabling is final for
a model: ``enable=False`` on a checkpointed model is refused (build the model again instead).
"""
import mindspore as ms


def _drop_path_rate(block):
    return max((getattr(cell, "drop_prob", 0.0) for _, cell in block.cells_and_names()), default=0.0)


def checkpoint_blocks(blocks, enable=True):
    """Recompute every cell of ``blocks`` in the backward pass; returns whether checkpointing is on.

    Idempotent; ``enable=False`` is accepted for blocks that were never checkpointed."""
    blocks = list(blocks)
    done = [getattr(block, "grad_checkpointing", False) for block in blocks]
    if not enable:
        if any(done):
            raise ValueError("gradient checkpointing cannot be turned off again (MindSpore's recompute is set once "
                             "per cell): build the model again without it")
        return False
    if ms.get_context("mode") == ms.PYNATIVE_MODE and any(_drop_path_rate(block) > 0 for block in blocks):
        raise ValueError("grad_checkpointing with drop path needs GRAPH mode (mode: graph): in PyNative mode "
                         "MindSpore's recompute would draw new drop-path masks (or set drop_path_rate: 0)")
    for block, already in zip(blocks, done):
        if not already:
            block.recompute()
            block.grad_checkpointing = True
    return True
