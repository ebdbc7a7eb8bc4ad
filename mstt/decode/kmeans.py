"""Batched weighted k-means in torch, and deep-clustering embeddings -> binary source masks."""

from __future__ import annotations

import torch


def _squared_distances(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Points ``(batch, n, dim)``, centroids ``(batch, k, dim)`` -> squared distances ``(batch, n, k)``."""
    # The expanded form avoids materialising (batch, n, k, dim); clamp undoes rounding below 0.
    cross = torch.bmm(points, centroids.transpose(1, 2))
    d = points.pow(2).sum(-1, keepdim=True) - 2 * cross + centroids.pow(2).sum(-1).unsqueeze(1)
    return d.clamp_min_(0)


def _sample(probabilities: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One index per row of unnormalised ``(batch, n)`` probabilities, by inverse CDF."""
    # Uniform draws come from a CPU generator so that results match across devices for a seed.
    u = torch.rand(probabilities.shape[0], 1, generator=generator, dtype=torch.float64)
    cdf = probabilities.double().cumsum(-1)
    target = u.to(cdf.device) * cdf[:, -1:]
    index = torch.searchsorted(cdf, target, right=True).squeeze(1)
    return index.clamp_(max=probabilities.shape[1] - 1)


def _init_plus_plus(points: torch.Tensor, weights: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centroid drawn with probability weight * squared distance."""
    batch, n, dim = points.shape
    rows = torch.arange(batch, device=points.device)
    first = _sample(weights, generator)
    centroids = [points[rows, first]]
    closest = (points - centroids[0].unsqueeze(1)).pow(2).sum(-1)  # (batch, n)
    for _ in range(1, k):
        p = weights * closest
        # All weighted points coincide with a centroid: fall back to the weights alone.
        p = torch.where(p.sum(-1, keepdim=True) > 0, p, weights)
        nxt = points[rows, _sample(p, generator)]
        centroids.append(nxt)
        closest = torch.minimum(closest, (points - nxt.unsqueeze(1)).pow(2).sum(-1))
    return torch.stack(centroids, dim=1)


def kmeans(
    points: torch.Tensor,
    k: int,
    iterations: int = 20,
    weights: torch.Tensor | None = None,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted k-means per batch item: points ``(batch, n, dim)`` -> labels ``(batch, n)``, centroids ``(batch, k, dim)``.

    Seeded with k-means++ (deterministic for a seed, on any device). Points of weight 0 do not
    move centroids but still receive a label. A cluster that empties is re-seeded at the
    weighted point farthest from its centroid.
    """
    if points.dim() != 3:
        raise ValueError(f"points must be (batch, n, dim); got {tuple(points.shape)}")
    batch, n, dim = points.shape
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and the number of points ({n}); got {k}")
    # Half precision loses the small distance differences k-means decides on.
    x = points if points.dtype in (torch.float32, torch.float64) else points.float()
    if weights is None:
        w = torch.ones(batch, n, dtype=x.dtype, device=x.device)
    else:
        if weights.shape != (batch, n):
            raise ValueError(f"weights must be (batch, n) = {(batch, n)}; got {tuple(weights.shape)}")
        w = weights.to(x.dtype).clamp_min(0)
        # An item with no weighted point (e.g. a silent mixture) is clustered unweighted.
        w = torch.where(w.sum(-1, keepdim=True) > 0, w, torch.ones_like(w))
    generator = torch.Generator().manual_seed(seed)
    centroids = _init_plus_plus(x, w, k, generator)
    labels = _squared_distances(x, centroids).argmin(-1)
    for _ in range(iterations):
        one_hot = torch.nn.functional.one_hot(labels, k).to(x.dtype) * w.unsqueeze(-1)  # (batch, n, k)
        mass = one_hot.sum(1)  # (batch, k)
        sums = torch.bmm(one_hot.transpose(1, 2), x)  # (batch, k, dim)
        updated = sums / mass.clamp_min(torch.finfo(x.dtype).tiny).unsqueeze(-1)
        centroids = torch.where((mass > 0).unsqueeze(-1), updated, centroids)
        if bool((mass == 0).any()):
            centroids = _reseed_empty(x, w, centroids, labels, mass)
        new_labels = _squared_distances(x, centroids).argmin(-1)
        if torch.equal(new_labels, labels):
            break
        labels = new_labels
    return labels, centroids


def _reseed_empty(
    x: torch.Tensor, w: torch.Tensor, centroids: torch.Tensor, labels: torch.Tensor, mass: torch.Tensor
) -> torch.Tensor:
    """Move each empty cluster to the weighted point farthest from its own centroid."""
    rows = torch.arange(x.shape[0], device=x.device)
    centroids = centroids.clone()
    spread = (x - centroids.gather(1, labels.unsqueeze(-1).expand_as(x))).pow(2).sum(-1)
    spread = torch.where(w > 0, spread, torch.full_like(spread, -1.0))
    for j in range(centroids.shape[1]):
        empty = mass[:, j] == 0
        if not bool(empty.any()):
            continue
        far = spread.argmax(-1)
        centroids[:, j] = torch.where(empty.unsqueeze(-1), x[rows, far], centroids[:, j])
        # The chosen point cannot seed a second empty cluster in the same item.
        spread[rows[empty], far[empty]] = -1.0
    return centroids


def embeddings_to_masks(
    embedding: torch.Tensor,
    n_sources: int,
    mixture_mag: torch.Tensor | None = None,
    iterations: int = 20,
    threshold_db: float = -40.0,
    seed: int = 0,
) -> torch.Tensor:
    """Embeddings ``(batch, freq, frames, dim)`` -> binary masks ``(batch, sources, freq, frames)``.

    Clusters are fitted on the bins within ``threshold_db`` of each item's loudest bin of
    ``mixture_mag`` ``(batch, freq, frames)`` (silent bins carry no source information and would
    pull a centroid towards noise), then every bin gets the mask of its nearest centroid.
    The order of the sources is arbitrary; pair them with references by permutation.
    """
    if embedding.dim() != 4:
        raise ValueError(f"embedding must be (batch, freq, frames, dim); got {tuple(embedding.shape)}")
    batch, n_freq, frames, dim = embedding.shape
    points = embedding.reshape(batch, n_freq * frames, dim)
    weights = None
    if mixture_mag is not None:
        if mixture_mag.shape != (batch, n_freq, frames):
            raise ValueError(
                f"mixture_mag must be (batch, freq, frames) = {(batch, n_freq, frames)}; "
                f"got {tuple(mixture_mag.shape)}"
            )
        mag = mixture_mag.reshape(batch, -1).float()
        floor = mag.amax(-1, keepdim=True) * 10 ** (threshold_db / 20)
        weights = (mag > floor).float()
    labels, _ = kmeans(points, n_sources, iterations=iterations, weights=weights, seed=seed)
    masks = torch.nn.functional.one_hot(labels, n_sources).float()
    return masks.permute(0, 2, 1).reshape(batch, n_sources, n_freq, frames)
