"""The synthetic citation-graph generator: determinism, degree law, homophily, features, splits,
and that a GCN learns its labels."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from namjax.graph import GraphError
from namjax.synthetic import citation_graph


@pytest.fixture(scope="module")
def g20k():
    return citation_graph(20_000, label_noise=0.0, seed=3)


def test_same_seed_same_graph_other_seed_other_graph():
    a, b, c = (citation_graph(2_000, seed=s) for s in (1, 1, 2))
    assert a.fingerprint == b.fingerprint
    assert (a.features != b.features).nnz == 0
    assert np.array_equal(a.train_mask, b.train_mask)
    assert a.fingerprint != c.fingerprint


def test_structure_is_a_clean_undirected_graph(g20k):
    a = g20k.adjacency
    assert (a != a.T).nnz == 0
    assert a.diagonal().sum() == 0
    assert set(np.unique(a.data)) == {1.0}
    # realised average degree: close to the request, below it (self-loops, duplicates dropped)
    avg = a.nnz / g20k.num_nodes
    assert 9.0 < avg <= 10.0


def test_degrees_follow_the_power_law(g20k):
    """The CCDF of a degree-corrected SBM with θ ~ θ^-3 falls like d^-2 in its tail."""
    d = np.diff(g20k.adjacency.indptr)
    slope = np.log((d >= 80).mean() / (d >= 20).mean()) / np.log(80 / 20)
    assert -2.6 < slope < -1.6
    assert d.max() > 10 * np.median(d)  # hubs exist, far above the typical node


def test_homophily_matches_the_model(g20k):
    """An edge stays in its community with probability h + (1 - h) Σ π_c² (before dedup)."""
    lab = g20k.labels  # label_noise=0: labels are the communities
    a = sp.coo_matrix(g20k.adjacency)
    inside = (lab[a.row] == lab[a.col]).mean()
    share = np.bincount(lab) / len(lab)
    weights = np.bincount(lab, weights=np.diff(g20k.adjacency.indptr))
    pi = weights / weights.sum()  # community shares of edge endpoints (θ-weighted)
    expected = 0.8 + 0.2 * (pi**2).sum()
    assert abs(inside - expected) < 0.02
    assert share.min() > 0.02  # Dirichlet(5) shares: unbalanced but no empty community


def test_features_are_row_normalised_community_bags_of_words(g20k):
    x = g20k.features
    assert sp.issparse(x) and x.dtype == np.float32 and x.shape == (20_000, 500)
    np.testing.assert_allclose(np.asarray(x.sum(axis=1)).ravel(), 1.0, rtol=1e-5)
    # binary bag of words: within a row every stored value is 1/len(row)
    lengths = np.repeat(np.diff(x.indptr), np.diff(x.indptr))
    np.testing.assert_allclose(x.data, 1.0 / lengths, rtol=1e-6)
    # the community's favourite word is far more frequent inside the community than outside
    lab = g20k.labels
    present = (x > 0).astype(np.float32)
    inside = np.asarray(present[lab == 0].mean(axis=0)).ravel()
    outside = np.asarray(present[lab != 0].mean(axis=0)).ravel()
    top = np.argmax(inside - outside)
    assert inside[top] > 3 * outside[top]


def test_labels_noise_and_planetoid_splits():
    g = citation_graph(5_000, num_classes=5, label_noise=0.2, seed=0)
    clean = citation_graph(5_000, num_classes=5, label_noise=0.0, seed=0)
    flipped = (g.labels != clean.labels).mean()
    assert 0.1 < flipped < 0.2  # 20% redrawn uniformly, 1/5 of those land on the same class
    assert np.array_equal(np.bincount(g.labels[g.train_mask]), np.full(5, 20))
    assert (g.val_mask.sum(), g.test_mask.sum()) == (500, 1000)
    masks = g.train_mask.astype(int) + g.val_mask + g.test_mask
    assert masks.max() == 1  # disjoint


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_nodes": 1}, "num_nodes"),
        ({"num_nodes": 100, "avg_degree": 0}, "avg_degree"),
        ({"num_nodes": 100, "homophily": 1.5}, "homophily"),
        ({"num_nodes": 100, "degree_exponent": 1.0}, "degree_exponent"),
        ({"num_nodes": 1000}, "splits need"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs, message):
    with pytest.raises(GraphError, match=message):
        citation_graph(**kwargs)


@pytest.mark.slow
def test_a_gcn_learns_the_communities():
    """Attributions are only meaningful on a model that learned something: far above chance."""
    from namjax.training import train

    g = citation_graph(10_000, seed=0)
    result = train(g, seed=0)
    assert result.test_accuracy > 0.7  # chance is about 1/8
