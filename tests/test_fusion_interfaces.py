"""Fusion interfaces: shapes, parameter counts and exact definitions (DESIGN.md)."""

from __future__ import annotations

import pytest
import torch

from featcache.errors import ConfigError
from featcache.fusion import build_interface
from featcache.fusion.hconv import HConv, num_convs


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _hidden(shapes, batch=2, frames=(7,), seed=0):
    g = torch.Generator().manual_seed(seed)
    frames = list(frames) * len(shapes) if len(frames) == 1 else frames
    return [
        torch.randn(n, batch, t, d, generator=g) for (n, d), t in zip(shapes, frames, strict=False)
    ]


def test_hconv_base_exact_parameter_count_and_output():
    hconv = build_interface("hconv", [(13, 768)])
    assert _params(hconv) == 4_424_832
    assert hconv.output_dim == 768
    assert hconv.layer_lengths == [13, 5, 2]
    out = hconv([torch.randn(13, 2, 3, 768)])
    assert out.shape == (2, 3, 768)


def test_hconv_large_output_1023():
    hconv = HConv(25, 1024)
    assert hconv.layer_lengths == [25, 9, 3]
    assert hconv.output_dim == 1023
    # two convs: 1024->1024 and 1024->341, kernel 5, with biases
    assert _params(hconv) == (1024 * 1024 * 5 + 1024) + (1024 * 341 * 5 + 341)
    assert hconv([torch.randn(25, 1, 2, 1024)]).shape == (1, 2, 1023)


def test_hconv_definition_no_time_mixing_and_relu_last():
    hconv = HConv(13, 16)
    x = torch.randn(13, 1, 5, 16)
    full = hconv([x])
    # frames are independent: each frame alone gives the same output
    alone = torch.cat([hconv([x[:, :, t : t + 1]]) for t in range(5)], dim=1)
    torch.testing.assert_close(full, alone)
    assert (full >= 0).all()  # ReLU after the last conv too
    kinds = [type(m).__name__ for m in hconv.convs]
    assert kinds == ["Conv1d", "ReLU", "Conv1d", "ReLU"]
    assert all(c.kernel_size == (5,) and c.stride == (3,) and c.padding == (2,)
               for c in hconv.convs if isinstance(c, torch.nn.Conv1d))  # fmt: skip


@pytest.mark.parametrize("layers,expected", [(1, 1), (2, 1), (3, 1), (8, 1), (9, 2), (13, 2),
                                             (26, 2), (27, 3), (80, 3), (81, 4)])  # fmt: skip
def test_hconv_number_of_convs(layers, expected):
    assert num_convs(layers) == expected


def test_hconv_single_layer_fbank():
    hconv = build_interface("hconv", [(1, 80)])
    assert len([m for m in hconv.convs if isinstance(m, torch.nn.Conv1d)]) == 1
    assert hconv.output_dim == 80
    assert hconv([torch.randn(1, 2, 4, 80)]).shape == (2, 4, 80)


def test_ws_equals_hand_written_softmax_weighted_sum():
    ws = build_interface("ws", [(5, 6)])
    assert torch.equal(ws.weights.detach(), torch.zeros(5))  # zero-initialised
    with torch.no_grad():
        ws.weights.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0]))
    x = torch.randn(5, 2, 3, 6)
    e = [torch.exp(torch.tensor(v)) for v in [0.5, -1.0, 2.0, 0.0, 1.0]]
    expected = sum(e[i] / sum(e) * x[i] for i in range(5))
    torch.testing.assert_close(ws([x]), expected)
    assert ws.output_dim == 6 and sum(p.numel() for p in ws.parameters()) == 5


def test_ws_layer_norm_is_parameter_free():
    ws = build_interface("ws:ln", [(3, 4)])
    assert _params(ws) == 3
    x = torch.randn(3, 1, 2, 4) * 10 + 5
    normed = (x - x.mean(-1, keepdim=True)) / torch.sqrt(
        x.var(-1, unbiased=False, keepdim=True) + 1e-5
    )
    torch.testing.assert_close(ws([x]), normed.mean(0))


@pytest.mark.parametrize(
    "name,shape,out_dim,params",
    [
        ("last", (4, 8), 8, 0),
        ("layer:2", (4, 8), 8, 0),
        ("concat", (4, 8), 8, 4 * 8 * 8 + 8),
        ("group-ws:2", (5, 8), 8, 5 + 2 * 8 * 8 + 8),
        ("gumd", (4, 8), 8, 4 * 8),
    ],
)
def test_single_model_shapes_and_parameter_counts(name, shape, out_dim, params):
    interface = build_interface(name, [shape])
    assert interface.output_dim == out_dim
    assert _params(interface) == params
    assert interface(_hidden([shape], frames=(6,))).shape == (2, 6, out_dim)


def test_layer_selection_picks_the_layer():
    x = torch.randn(4, 2, 3, 8)
    torch.testing.assert_close(build_interface("last", [(4, 8)])([x]), x[3])
    torch.testing.assert_close(build_interface("layer:1", [(4, 8)])([x]), x[1])


def test_group_ws_groups_are_contiguous():
    gws = build_interface("group-ws:2", [(5, 3)])
    assert gws.sizes == [3, 2]
    x = torch.randn(5, 1, 2, 3)
    expected = gws.proj(torch.cat([x[:3].mean(0), x[3:].mean(0)], dim=-1))
    torch.testing.assert_close(gws([x]), expected)


def test_cls_transformer_shape_and_parameters():
    cls = build_interface("cls", [(4, 8)])
    d = 8
    layer = 4 * d * d + 4 * d + 2 * (d * 2 * d) + 2 * d + d + 4 * d  # attention, ffn, 2 norms
    assert _params(cls) == d + 5 * d + layer
    assert cls([torch.randn(4, 2, 3, d)]).shape == (2, 3, d)


def test_gumd_eval_is_deterministic_argmax():
    gumd = build_interface("gumd", [(3, 4)])
    with torch.no_grad():
        gumd.logits.copy_(torch.tensor([[5.0, 0, 0, 0], [0, 5.0, 0, 0], [0, 0, 5.0, 5.1]]))
    x = torch.randn(3, 1, 2, 4)
    gumd.eval()
    out = gumd([x])
    torch.testing.assert_close(
        out, torch.stack([x[0, ..., 0], x[1, ..., 1], x[2, ..., 2], x[2, ..., 3]], -1)
    )
    gumd.train()
    torch.manual_seed(0)
    noisy = gumd([x])
    assert not torch.allclose(noisy, out)  # training mixes with Gumbel noise


def test_multi_model_interfaces_shapes_and_parameters():
    shapes = [(13, 32), (5, 24), (1, 16)]
    hidden = _hidden(shapes, frames=(10, 10, 20))
    hconv = build_interface("hconv", shapes)
    assert hconv(hidden).shape == (2, 20, 32) and _params(hconv) == _params(HConv(13, 32))
    chconv = build_interface("chconv", shapes)
    assert chconv(hidden).shape == (2, 20, 32)
    assert _params(chconv) == (3 * 32 * 32 + 32) + _params(HConv(13, 32))
    ws = build_interface("ws", shapes)
    assert ws(hidden).shape == (2, 20, 32)
    assert _params(ws) == 13 + 5 + 1 + (32 + 24 + 16) * 32 + 32
    assert [len(w) for w in ws.layer_weights()] == [13, 5, 1]
    gumd = build_interface("gumd", shapes)
    assert gumd(hidden).shape == (2, 20, 32)
    assert _params(gumd) == 13 * 32 + 5 * 24 + 16 + (32 + 24 + 16) * 32 + 32
    projected = build_interface("hconv", shapes, align_dim="project")
    assert _params(projected) == _params(HConv(13, 32)) + (24 * 32 + 32) + (16 * 32 + 32)
    assert projected(hidden).shape == (2, 20, 32)


def test_multi_model_hconv_sums_aligned_models():
    shapes = [(3, 8), (3, 8)]
    a, b = _hidden(shapes, frames=(4,))
    fused = build_interface("hconv", shapes)
    torch.testing.assert_close(fused([a, b]), fused.hconv([a + b]))


def test_unknown_interface_is_a_config_error():
    with pytest.raises(ConfigError, match="'hconf': unknown interface .did you mean hconv"):
        build_interface("hconf", [(3, 8)])
    with pytest.raises(ConfigError, match="write group-ws:K"):
        build_interface("group-ws", [(3, 8)])
    with pytest.raises(ConfigError, match="'ws:xx'.*'xx' is not 'ln'"):
        build_interface("ws:xx", [(3, 8)])
    with pytest.raises(ConfigError, match="hconv takes no argument"):
        build_interface("hconv:2", [(3, 8)])
