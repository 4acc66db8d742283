"""Linear CKA from minibatched cross-covariances: the properties users rely on."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from featcache.analysis.cka import CKAAccumulator, cka_layers, linear_cka, x_layer_groups
from featcache.analysis.frames import interpolate_time


def full_gram_cka(x, y):
    """Textbook linear CKA through centred N x N Gram matrices (HSIC form)."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k = h @ (x @ x.T) @ h
    l_ = h @ (y @ y.T) @ h
    return float((k * l_).sum() / np.sqrt((k * k).sum() * (l_ * l_).sum()))


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)) + 3.0  # offset: centring must be exact
    y = np.tanh(x @ rng.normal(size=(16, 24))) + rng.normal(scale=0.5, size=(300, 24))
    return x, y


def test_cka_of_a_representation_with_itself_is_one(data):
    x, _ = data
    assert linear_cka(x, x, chunk_size=37) == pytest.approx(1.0, abs=1e-12)


def test_cka_invariant_to_orthogonal_transform_and_isotropic_scaling(data):
    x, y = data
    q = ortho_group.rvs(16, random_state=1)
    base = linear_cka(x, y)
    assert linear_cka(x @ q, y, chunk_size=50) == pytest.approx(base, abs=1e-10)
    assert linear_cka(7.5 * x, y, chunk_size=50) == pytest.approx(base, abs=1e-10)
    assert linear_cka(x, 0.01 * y + 4.0, chunk_size=50) == pytest.approx(base, abs=1e-10)
    # but not to arbitrary linear maps: CKA is not CCA
    stretch = np.diag(np.linspace(0.1, 10, 16))
    assert abs(linear_cka(x @ stretch, y) - base) > 1e-3


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 300])
def test_minibatch_cka_equals_full_gram_implementation(data, chunk_size):
    x, y = data
    assert linear_cka(x, y, chunk_size=chunk_size) == pytest.approx(full_gram_cka(x, y), abs=1e-6)


def test_layer_matrix_matches_full_gram_per_pair_whatever_the_memory_budget():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 4, 6))  # (N, Lx, Dx)
    y = np.concatenate([x[:, :2] @ rng.normal(size=(6, 5)), rng.normal(size=(120, 1, 5))], axis=1)

    def read(group):
        for start in range(0, 120, 25):
            yield x[start : start + 25][:, group], y[start : start + 25]

    expected = np.array([[full_gram_cka(x[:, i], y[:, j]) for j in range(3)] for i in range(4)])
    for budget in (1, 10**9):  # one x layer per pass / all in one pass
        np.testing.assert_allclose(
            cka_layers(read, 4, 3, 6, 5, max_bytes=budget), expected, atol=1e-6
        )
    assert len(x_layer_groups(4, 3, 6, 5, max_bytes=1)) == 4


def test_accumulator_memory_does_not_depend_on_rows():
    acc = CKAAccumulator(2, 2, 8, 8)
    before = sum(a.nbytes for a in vars(acc).values() if isinstance(a, np.ndarray))
    rng = np.random.default_rng(3)
    for _ in range(20):
        acc.update(rng.normal(size=(500, 2, 8)), rng.normal(size=(500, 2, 8)))
    after = sum(a.nbytes for a in vars(acc).values() if isinstance(a, np.ndarray))
    assert after <= before + 2 * 2 * 8 * 8 * 2  # only the two shift vectors appear


def test_constant_layer_gives_nan_not_a_crash():
    x = np.ones((50, 1, 3))
    y = np.random.default_rng(4).normal(size=(50, 1, 3))
    acc = CKAAccumulator(1, 1, 3, 3)
    acc.update(x, y)
    assert np.isnan(acc.cka()[0, 0])


def test_time_alignment_is_the_training_alignment():
    torch = pytest.importorskip("torch")
    from featcache.fusion.align import resample_frames

    frames = np.random.default_rng(5).normal(size=(23, 2, 3)).astype(np.float32)  # (T, L, D)
    for length in (23, 46, 47, 11):
        ref = resample_frames(torch.from_numpy(frames), length).numpy()  # (length, L, D)
        np.testing.assert_allclose(interpolate_time(frames, length), ref, atol=1e-5)
        rows = [0, length // 2, length - 1]
        np.testing.assert_allclose(interpolate_time(frames, length, rows), ref[rows], atol=1e-5)
