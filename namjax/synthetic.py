"""Seeded synthetic citation-like graphs for scale tests and benchmarks.

The model is a degree-corrected stochastic block model:

* every node gets a community (community sizes drawn from a Dirichlet, so mildly unbalanced) and
  a degree propensity ``θ`` from a power law ``p(θ) ∝ θ^-γ`` on ``[1, θ_max]``;
* ``N · avg_degree / 2`` edges are drawn: one endpoint with probability ``∝ θ``, the other
  ``∝ θ`` within the same community (probability ``homophily``) or anywhere; self-loops and
  duplicates are dropped, so the realised average degree is slightly below ``avg_degree``;
* features are a binary bag of words, row-normalised as in Kipf's Planetoid preprocessing: each
  word comes from the node's community topic (a community-specific ranking of a Zipf vocabulary)
  with probability ``topic_strength``, else from the shared background ranking;
* labels are the communities, a fraction ``label_noise`` replaced by a uniformly random class;
* splits follow Planetoid: ``train_per_class`` nodes per class, then ``num_val`` and ``num_test``.

Everything is vectorised numpy (no Python loop over nodes or edges).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from namjax.graph import Graph, GraphError


def citation_graph(
    num_nodes: int,
    *,
    avg_degree: float = 10.0,
    num_classes: int = 8,
    num_features: int = 500,
    degree_exponent: float = 3.0,
    max_degree: float | None = None,
    homophily: float = 0.8,
    words_per_node: float = 20.0,
    topic_strength: float = 0.4,
    label_noise: float = 0.05,
    train_per_class: int = 20,
    num_val: int = 500,
    num_test: int = 1000,
    seed: int = 0,
) -> Graph:
    """Sample a citation-like :class:`Graph` with ``num_nodes`` nodes (same seed, same graph).

    ``max_degree`` caps the degree propensity (default ``sqrt(num_nodes)``, as hubs in citation
    graphs stay far below ``N``). Features are ``(N, num_features)`` float32 CSR; labels ``(N,)``
    int32 in ``0..num_classes-1``.
    """
    _check_args(
        num_nodes,
        avg_degree,
        num_classes,
        num_features,
        degree_exponent,
        homophily,
        topic_strength,
        label_noise,
        train_per_class,
        num_val,
        num_test,
    )
    rng = np.random.default_rng(seed)
    community = rng.choice(num_classes, size=num_nodes, p=rng.dirichlet(np.full(num_classes, 5.0)))
    theta = _power_law(rng, num_nodes, degree_exponent, max_degree or max(num_nodes**0.5, 2.0))
    adjacency = _edges(rng, community, theta, num_classes, avg_degree, homophily)
    features = _bag_of_words(
        rng, community, num_classes, num_features, words_per_node, topic_strength
    )
    labels = community.astype(np.int32)
    noisy = rng.random(num_nodes) < label_noise
    labels[noisy] = rng.integers(0, num_classes, int(noisy.sum()))
    train, val, test = _splits(rng, labels, num_classes, train_per_class, num_val, num_test)
    return Graph.from_scipy(
        adjacency,
        features,
        labels,
        train_mask=train,
        val_mask=val,
        test_mask=test,
        num_classes=num_classes,
        name=f"synthetic-{num_nodes}-s{seed}",
    )


def _check_args(
    n,
    avg_degree,
    num_classes,
    num_features,
    gamma,
    homophily,
    topic,
    noise,
    train_per_class,
    num_val,
    num_test,
) -> None:
    if n < 2:
        raise GraphError(f"num_nodes must be at least 2, got {n}")
    if not 0 < avg_degree < n:
        raise GraphError(f"avg_degree must be in (0, num_nodes), got {avg_degree}")
    if num_classes < 2 or num_features < 1:
        raise GraphError(
            f"need num_classes >= 2 and num_features >= 1, got {num_classes}, {num_features}"
        )
    if gamma <= 1:
        raise GraphError(f"degree_exponent must be > 1, got {gamma}")
    for name, p in (("homophily", homophily), ("topic_strength", topic), ("label_noise", noise)):
        if not 0 <= p <= 1:
            raise GraphError(f"{name} must be in [0, 1], got {p}")
    if train_per_class * num_classes + num_val + num_test > n:
        raise GraphError(
            f"splits need {train_per_class * num_classes + num_val + num_test} "
            f"nodes but the graph has {n}"
        )


def _power_law(rng: np.random.Generator, n: int, gamma: float, cap: float) -> np.ndarray:
    """``n`` samples of ``p(θ) ∝ θ^-gamma`` on ``[1, cap]`` by inverse transform."""
    a = 1.0 - gamma
    u = rng.random(n)
    return (1.0 + u * (cap**a - 1.0)) ** (1.0 / a)


def _edges(rng, community, theta, num_classes, avg_degree, homophily) -> sp.csr_matrix:
    """Symmetric CSR adjacency (unit weights, no self-loops, no duplicates)."""
    n = len(community)
    m = round(n * avg_degree / 2)
    # nodes sorted by community; each community is a contiguous range of the cumulative θ
    order = np.argsort(community, kind="stable")
    cum = np.cumsum(theta[order])
    bounds = np.searchsorted(community[order], np.arange(num_classes + 1))
    cum0 = np.concatenate([[0.0], cum])
    lo, hi = cum0[bounds[:-1]], cum0[bounds[1:]]

    def draw(start: np.ndarray, width: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(cum, start + rng.random(len(start)) * width, side="right")
        return order[np.minimum(pos, n - 1)]

    u = draw(np.zeros(m), np.full(m, cum[-1]))
    inside = rng.random(m) < homophily
    cu = community[u]
    v = draw(np.where(inside, lo[cu], 0.0), np.where(inside, hi[cu] - lo[cu], cum[-1]))
    keep = u != v
    u, v = u[keep], v[keep]
    key = np.sort(np.minimum(u, v).astype(np.int64) * n + np.maximum(u, v))
    key = key[np.concatenate([[True], key[1:] != key[:-1]])]  # drop duplicate edges
    a, b = key // n, key % n
    rows, cols = np.concatenate([a, b]), np.concatenate([b, a])
    data = np.ones(len(rows), np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(n, n))


def _bag_of_words(rng, community, num_classes, vocab, words_per_node, topic) -> sp.csr_matrix:
    """Row-normalised binary ``(N, vocab)`` CSR bag of words with community-dependent topics."""
    n = len(community)
    counts = 1 + rng.poisson(max(words_per_node - 1.0, 0.0), n)
    node = np.repeat(np.arange(n), counts)
    zipf = np.cumsum(1.0 / np.arange(1, vocab + 1) ** 1.1)
    rank = np.minimum(np.searchsorted(zipf, rng.random(len(node)) * zipf[-1]), vocab - 1)
    ranking = np.argsort(rng.random((num_classes, vocab)), axis=1)  # one permutation per topic
    from_topic = rng.random(len(node)) < topic
    word = np.where(from_topic, ranking[community[node], rank], rank)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    x = sp.csr_matrix((np.ones(len(node), np.float32), word, indptr), shape=(n, vocab))
    x.sum_duplicates()
    x.data[:] = 1.0
    x.data /= np.repeat(np.diff(x.indptr), np.diff(x.indptr)).astype(np.float32)
    return x


def _splits(rng, labels, num_classes, per_class, num_val, num_test):
    """Planetoid-style boolean masks: ``per_class`` train nodes per class, then val and test."""
    n = len(labels)
    perm = rng.permutation(n)
    by_class = perm[np.argsort(labels[perm], kind="stable")]
    starts = np.searchsorted(labels[by_class], np.arange(num_classes))
    rank = np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))
    train_idx = by_class[rank < per_class]
    rest = perm[~np.isin(perm, train_idx)]
    masks = [np.zeros(n, bool) for _ in range(3)]
    masks[0][train_idx] = True
    masks[1][rest[:num_val]] = True
    masks[2][rest[num_val : num_val + num_test]] = True
    return masks
