"""Batched k-means and deep-clustering embeddings -> masks."""

import torch

from mstt.decode import embeddings_to_masks, kmeans


def _blobs(batch: int = 2, per: int = 50, dim: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Three tight, far-apart clusters per batch item; returns points (batch, n, dim) and true labels."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0] * dim, [10.0] + [0.0] * (dim - 1), [0.0, 10.0] + [0.0] * (dim - 2)])
    truth = torch.arange(3).repeat_interleave(per)
    points = centres[truth] + 0.3 * torch.randn(batch, 3 * per, dim, generator=g)
    shuffle = torch.randperm(3 * per, generator=g)
    return points[:, shuffle], truth[shuffle].expand(batch, -1)


def _same_partition(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Whether two label vectors split the points the same way, up to renaming."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_kmeans_separates_well_separated_clusters():
    points, truth = _blobs()
    labels, centroids = kmeans(points, 3)
    assert labels.shape == truth.shape and labels.dtype == torch.int64
    assert centroids.shape == (2, 3, 4)
    for b in range(2):
        assert _same_partition(labels[b], truth[b])


def test_kmeans_is_deterministic_for_a_seed():
    points = torch.randn(2, 300, 5, generator=torch.Generator().manual_seed(3))
    first = kmeans(points, 4, seed=7)
    second = kmeans(points, 4, seed=7)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_kmeans_ignores_zero_weight_points_when_fitting():
    points, truth = _blobs(batch=1)
    outlier = torch.full((1, 5, 4), 1000.0)
    weights = torch.cat([torch.ones(1, points.shape[1]), torch.zeros(1, 5)], dim=1)
    labels, centroids = kmeans(torch.cat([points, outlier], dim=1), 3, weights=weights)
    # Unweighted, the far outliers would grab a centroid; weighted out, the blobs keep all three.
    assert _same_partition(labels[0, : points.shape[1]], truth[0])
    assert centroids.abs().max() < 20
    assert labels[0, points.shape[1]:].unique().numel() == 1  # outliers still get a label


def test_kmeans_handles_duplicate_points_and_empty_clusters():
    # Only two distinct points for three clusters: one cluster must end up empty or shared.
    points = torch.tensor([[[0.0, 0.0]] * 10 + [[5.0, 5.0]] * 10])
    labels, centroids = kmeans(points, 3)
    assert torch.isfinite(centroids).all()
    assert labels[0, :10].unique().numel() == 1 and labels[0, 10:].unique().numel() == 1
    assert labels[0, 0] != labels[0, 10]


def test_embeddings_to_masks_with_oracle_embeddings_gives_ideal_binary_mask():
    g = torch.Generator().manual_seed(0)
    batch, n_freq, frames, n_sources, dim = 2, 33, 20, 3, 20
    source_mags = torch.rand(batch, n_sources, n_freq, frames, generator=g)
    dominant = source_mags.argmax(1)  # (batch, freq, frames)
    ibm = torch.nn.functional.one_hot(dominant, n_sources).permute(0, 3, 1, 2).float()
    # Oracle embedding: the one-hot of the dominant source, padded to dim and unit-norm.
    embedding = torch.nn.functional.pad(ibm.permute(0, 2, 3, 1), (0, dim - n_sources))
    masks = embeddings_to_masks(embedding, n_sources, mixture_mag=source_mags.sum(1))
    assert masks.shape == ibm.shape
    for b in range(batch):
        # Cluster order is arbitrary: some permutation of the estimated masks equals the IBM.
        matched = [next(j for j in range(n_sources) if torch.equal(masks[b, j], ibm[b, i])) for i in range(n_sources)]
        assert sorted(matched) == list(range(n_sources))
    assert torch.equal(masks.sum(1), torch.ones(batch, n_freq, frames))


def test_embeddings_to_masks_leaves_silent_bins_out_of_the_fit():
    # Two sources in loud bins, plus loud-embedding junk in bins 60 dB down that would form a
    # third cluster if counted; with the -40 dB floor the two real clusters are found.
    n_freq, frames = 16, 10
    embedding = torch.zeros(1, n_freq, frames, 3)
    embedding[0, :8, :, 0] = 1.0
    embedding[0, 8:, :, 1] = 1.0
    # The junk outnumbers either source, so unweighted k-means would spend a cluster on it.
    embedding[0, :, :6, :] = torch.tensor([0.0, 0.0, 1.0])
    mag = torch.ones(1, n_freq, frames)
    mag[0, :, :6] = 1e-3
    # Several seeds: unweighted, seeds 1 and 2 merge the two sources into one cluster.
    for seed in range(4):
        masks = embeddings_to_masks(embedding, 2, mixture_mag=mag, seed=seed)
        loud = masks[0, :, :, 6:]
        low, high = loud[:, :8].flatten(1).mean(1).tolist(), loud[:, 8:].flatten(1).mean(1).tolist()
        assert {tuple(low), tuple(high)} == {(1.0, 0.0), (0.0, 1.0)}
