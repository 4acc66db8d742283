"""Linear CKA between layers, computed in minibatches from feature cross-covariances.

Linear centred kernel alignment (Kornblith et al., 2019) between representations X (N, Dx) and
Y (N, Dy) of the same N items is

    CKA(X, Y) = ||Xc^T Yc||_F^2 / (||Xc^T Xc||_F * ||Yc^T Yc||_F)

with Xc, Yc the column-centred matrices. Written with feature cross-covariances instead of the
N x N Gram matrices of the usual HSIC form, it needs only X^T X, Y^T Y, X^T Y and the column sums,
which add up over chunks of rows: memory depends on the feature sizes, never on N.

Comparing every layer of one model with every layer of another needs one (Dx, Dy) cross-covariance
per layer pair. :func:`cka_layers` keeps them for a group of x layers at a time, sized to a memory
budget, and re-reads the data once per group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np

__all__ = [
    "CKAAccumulator",
    "cka_layers",
    "linear_cka",
    "iter_row_chunks",
    "x_layer_groups",
]

DEFAULT_MAX_BYTES = 512 * 2**20


class CKAAccumulator:
    """Sufficient statistics for linear CKA between the layers of two representations.

    Feed it chunks of rows (frames or utterances) with :meth:`update`; :meth:`cka` returns the
    (Lx, Ly) CKA matrix of everything seen. Rows are shifted by the first chunk's means before
    they are accumulated, which keeps the uncentred sums small and the final centring exact in
    floating point (the shifted-data covariance algorithm).

    Parameters
    ----------
    num_layers_x, num_layers_y : int
        Layers on each side.
    dim_x, dim_y : int
        Feature size of each side.
    dtype : numpy dtype, default float64
        Precision of the accumulated statistics and of the matrix products.
    y_norms : array_like, shape (Ly,), optional
        ||Yc^T Yc||_F per y layer, when already known from an earlier pass over the same rows;
        the y Gram matrices are then not accumulated again.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(1000, 2, 8))  # (N, Lx, Dx)
    >>> acc = CKAAccumulator(2, 2, 8, 8)
    >>> for start in range(0, 1000, 256):
    ...     acc.update(x[start : start + 256], x[start : start + 256])
    >>> np.allclose(np.diag(acc.cka()), 1.0)
    True
    """

    def __init__(self, num_layers_x, num_layers_y, dim_x, dim_y, dtype=np.float64, y_norms=None):
        self.shape = (num_layers_x, num_layers_y)
        self.dims = (dim_x, dim_y)
        self.dtype = np.dtype(dtype)
        self.count = 0
        self._shift_x = self._shift_y = None
        self._y_norms = None if y_norms is None else np.asarray(y_norms, dtype=np.float64)
        self._sum_x = np.zeros((num_layers_x, dim_x), self.dtype)
        self._sum_y = np.zeros((num_layers_y, dim_y), self.dtype)
        self._gram_x = np.zeros((num_layers_x, dim_x, dim_x), self.dtype)
        self._gram_y = None
        if y_norms is None:
            self._gram_y = np.zeros((num_layers_y, dim_y, dim_y), self.dtype)
        self._cross = np.zeros((num_layers_x * dim_x, num_layers_y * dim_y), self.dtype)

    @staticmethod
    def nbytes(num_layers_x, num_layers_y, dim_x, dim_y, dtype=np.float64) -> int:
        """Bytes the statistics take, whatever the number of rows."""
        size = num_layers_x * dim_x * (num_layers_y * dim_y + dim_x + 1)
        size += num_layers_y * dim_y * (dim_y + 1)
        return size * np.dtype(dtype).itemsize

    def update(self, x, y) -> None:
        """Add a chunk of rows: ``x`` (n, Lx, Dx) and ``y`` (n, Ly, Dy), row i of both the same item."""
        x = np.asarray(x)
        y = np.asarray(y)
        n = x.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"x has {n} rows but y has {y.shape[0]}")
        if x.shape[1:] != (self.shape[0], self.dims[0]) or y.shape[1:] != (
            self.shape[1],
            self.dims[1],
        ):
            raise ValueError(
                f"chunk shapes {x.shape}, {y.shape} do not match {self.shape}, {self.dims}"
            )
        if n == 0:
            return
        if self._shift_x is None:
            self._shift_x = x.mean(axis=0, dtype=self.dtype)  # (Lx, Dx)
            self._shift_y = y.mean(axis=0, dtype=self.dtype)  # (Ly, Dy)
        x = np.subtract(x, self._shift_x, dtype=self.dtype)  # one copy per chunk, in self.dtype
        y = np.subtract(y, self._shift_y, dtype=self.dtype)
        self.count += n
        self._sum_x += x.sum(axis=0)
        self._sum_y += y.sum(axis=0)
        xt = x.transpose(1, 0, 2)  # (Lx, n, Dx)
        yt = y.transpose(1, 0, 2)  # (Ly, n, Dy)
        self._gram_x += xt.transpose(0, 2, 1) @ xt  # (Lx, Dx, Dx)
        if self._gram_y is not None:
            self._gram_y += yt.transpose(0, 2, 1) @ yt  # (Ly, Dy, Dy)
        self._cross += x.reshape(n, -1).T @ y.reshape(n, -1)  # (Lx*Dx, Ly*Dy)

    def y_norms(self) -> np.ndarray:
        """||Yc^T Yc||_F per y layer, shape (Ly,); reusable as ``y_norms`` for later passes."""
        if self._y_norms is not None:
            return self._y_norms
        return _centred_norms(self._gram_y, self._sum_y, self.count)

    def cka(self) -> np.ndarray:
        """The (Lx, Ly) linear CKA matrix; NaN where a layer is constant over all rows."""
        if self.count < 2:
            raise ValueError("CKA needs at least two rows")
        lx, ly = self.shape
        dx, dy = self.dims
        n = self.count
        norm_x = _centred_norms(self._gram_x, self._sum_x, n)  # (Lx,)
        norm_y = self.y_norms()  # (Ly,)
        mx = self._sum_x / n  # (Lx, Dx)
        my = self._sum_y / n  # (Ly, Dy)
        hsic = np.empty((lx, ly))
        for i in range(lx):  # one x layer at a time keeps the temporaries small
            # Xc^T Yc = X^T Y - n mx my^T (on the shifted data)
            block = self._cross[i * dx : (i + 1) * dx].reshape(dx, ly, dy)  # (Dx, Ly, Dy)
            block = block - n * mx[i][:, None, None] * my[None, :, :]
            hsic[i] = (block**2).sum(axis=(0, 2))
        with np.errstate(divide="ignore", invalid="ignore"):
            return hsic / (norm_x[:, None] * norm_y[None, :])


def _centred_norms(gram, sums, n) -> np.ndarray:
    """Frobenius norms of the centred Gram matrices ``gram - n m m^T``, one per layer."""
    m = sums / n  # (L, D)
    centred = gram - n * m[:, :, None] * m[:, None, :]  # (L, D, D)
    return np.sqrt((centred.astype(np.float64) ** 2).sum(axis=(1, 2)))


def linear_cka(x, y, *, chunk_size: int = 4096, dtype=np.float64) -> float:
    """Linear CKA between two representations of the same items, in chunks of rows.

    Parameters
    ----------
    x : array_like, shape (N, Dx)
    y : array_like, shape (N, Dy)
    chunk_size : int
        Rows per minibatch; memory is O(Dx * Dy), independent of N.

    Returns
    -------
    float
        In [0, 1]; 1 when y is an orthogonal transform of x, up to scale and offset.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"expected 2-D arrays, got shapes {x.shape} and {y.shape}")
    acc = CKAAccumulator(1, 1, x.shape[1], y.shape[1], dtype=dtype)
    for start in range(0, x.shape[0], chunk_size):
        stop = start + chunk_size
        acc.update(x[start:stop, None, :], y[start:stop, None, :])
    return float(acc.cka()[0, 0])


def x_layer_groups(
    num_layers_x, num_layers_y, dim_x, dim_y, max_bytes=DEFAULT_MAX_BYTES, dtype=np.float64
) -> list[list[int]]:
    """Split x's layers into groups whose accumulator fits ``max_bytes`` (at least one layer each)."""
    per_group = 1
    while per_group < num_layers_x and (
        CKAAccumulator.nbytes(per_group + 1, num_layers_y, dim_x, dim_y, dtype) <= max_bytes
    ):
        per_group += 1
    layers = list(range(num_layers_x))
    return [layers[i : i + per_group] for i in range(0, num_layers_x, per_group)]


def cka_layers(
    read: Callable[[Sequence[int]], Iterable[tuple[np.ndarray, np.ndarray]]],
    num_layers_x: int,
    num_layers_y: int,
    dim_x: int,
    dim_y: int,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    dtype=np.float64,
) -> np.ndarray:
    """CKA between every layer of x and every layer of y, within a memory budget.

    Parameters
    ----------
    read : callable
        ``read(x_layers)`` returns an iterable of chunks ``(x, y)``: x (n, len(x_layers), Dx) holds
        the listed x layers, y (n, Ly, Dy) all y layers, for the same rows in the same order every
        time it is called. It is called once per group of x layers.
    num_layers_x, num_layers_y, dim_x, dim_y : int
        Sizes of the two sides.
    max_bytes : int
        Budget for the accumulated statistics; it sets how many x layers share one pass.

    Returns
    -------
    numpy.ndarray, shape (Lx, Ly)
    """
    out = np.empty((num_layers_x, num_layers_y))
    y_norms = None  # the y Gram matrices are accumulated in the first pass only
    for group in x_layer_groups(num_layers_x, num_layers_y, dim_x, dim_y, max_bytes, dtype):
        acc = CKAAccumulator(len(group), num_layers_y, dim_x, dim_y, dtype, y_norms=y_norms)
        for x, y in read(group):
            acc.update(x, y)
        out[group] = acc.cka()
        y_norms = acc.y_norms()
    return out


def iter_row_chunks(
    pieces: Iterable[tuple[np.ndarray, np.ndarray]], chunk_rows: int = 2048
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Regroup (x, y) pieces of any size (one per utterance, say) into chunks of about ``chunk_rows``.

    Small pieces are concatenated so that the matrix products stay efficient; a piece larger than
    ``chunk_rows`` passes through whole.
    """
    xs, ys, rows = [], [], 0
    for x, y in pieces:
        if len(x) == 0:
            continue
        xs.append(x)
        ys.append(y)
        rows += len(x)
        if rows >= chunk_rows:
            yield np.concatenate(xs), np.concatenate(ys)
            xs, ys, rows = [], [], 0
    if xs:
        yield np.concatenate(xs), np.concatenate(ys)
