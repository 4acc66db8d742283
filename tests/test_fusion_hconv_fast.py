"""The training-time identities: HConv as matmuls, the classify head projecting after pooling.

Each is compared with the direct computation (``Conv1d`` over the layer axis; projecting every
frame, then pooling) on the same parameters: outputs and every gradient agree within float
rounding, and the parameters keep their names and shapes, so checkpoints load unchanged.
"""

from __future__ import annotations

import pytest
import torch

from featcache.fusion import build_interface
from featcache.fusion.hconv import HConv
from featcache.heads.classify import ClassifyHead
from featcache.train.model import FusionModel


def _grads(module, x):
    return [p.grad.clone() for p in module.parameters()] + [x.grad.clone()]


@pytest.mark.parametrize("layers,dim", [(1, 8), (2, 6), (5, 12), (13, 24), (25, 32), (28, 9)])
def test_hconv_matmul_equals_conv1d_outputs_and_gradients(layers, dim):
    torch.manual_seed(layers)
    hconv = HConv(layers, dim)
    x = torch.randn(layers, 3, 7, dim, dtype=torch.float64, requires_grad=True)
    hconv.double()
    fast = hconv.fuse(x)  # (B, T, D_out)
    weights = torch.randn_like(fast)
    (fast * weights).sum().backward()
    fast_grads = _grads(hconv, x)
    hconv.zero_grad()
    x.grad = None
    reference = hconv.fuse_conv1d(x)
    (reference * weights).sum().backward()
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)
    for got, want in zip(fast_grads, _grads(hconv, x), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_hconv_keeps_conv1d_parameter_names_so_checkpoints_load():
    hconv = HConv(13, 24)
    shapes = {k: tuple(v.shape) for k, v in hconv.state_dict().items()}
    assert shapes == {"convs.0.weight": (24, 24, 5), "convs.0.bias": (24,),
                      "convs.2.weight": (12, 24, 5), "convs.2.bias": (12,)}  # fmt: skip
    # a state_dict of plain Conv1d modules (what older checkpoints hold) loads and computes
    plain = torch.nn.Sequential(torch.nn.Conv1d(24, 24, 5, 3, 2), torch.nn.ReLU(),
                                torch.nn.Conv1d(24, 12, 5, 3, 2), torch.nn.ReLU())  # fmt: skip
    fresh = HConv(13, 24)
    fresh.convs.load_state_dict(plain.state_dict())
    x = torch.randn(13, 2, 4, 24)
    expected = plain(x.permute(1, 2, 3, 0).reshape(8, 24, 13)).reshape(2, 4, 24)
    torch.testing.assert_close(fresh.fuse(x), expected, rtol=1e-5, atol=1e-6)


def test_classify_head_projecting_after_pooling_equals_per_frame():
    torch.manual_seed(0)
    head = ClassifyHead(16, 5).double()
    features = torch.randn(4, 9, 16, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([9, 3, 1, 0])  # the last row has no valid frame
    mask = torch.arange(9)[None] < lengths[:, None]  # (B, T)
    target = torch.randn(4, 5, dtype=torch.float64)
    fast = head(features, mask)
    (fast * target).sum().backward()
    fast_grads = _grads(head, features)
    head.zero_grad()
    features.grad = None
    reference = head.forward_per_frame(features, mask)
    (reference * target).sum().backward()
    torch.testing.assert_close(fast, reference, rtol=1e-12, atol=1e-12)
    for got, want in zip(fast_grads, _grads(head, features), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_fusion_model_logits_and_gradients_equal_the_conv1d_per_frame_model():
    """Float32, the training dtype: the whole hconv + classify model, both paths."""
    torch.manual_seed(1)
    interface = build_interface("hconv", [(13, 32)])
    model = FusionModel(interface, ClassifyHead(interface.output_dim, 4))
    x = torch.randn(13, 3, 11, 32, requires_grad=True)
    mask = torch.arange(11)[None] < torch.tensor([11, 6, 2])[:, None]
    labels = torch.tensor([0, 3, 1])
    loss = torch.nn.functional.cross_entropy(model([x], mask), labels)
    loss.backward()
    fast_grads = _grads(model, x)
    model.zero_grad()
    x.grad = None
    logits = model.head.forward_per_frame(interface.fuse_conv1d(x), mask)
    torch.nn.functional.cross_entropy(logits, labels).backward()
    torch.testing.assert_close(model([x], mask), logits, rtol=1e-5, atol=1e-6)
    for got, want in zip(fast_grads, _grads(model, x), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
