"""A small hand-built graph and attribution for the NIV tests, with hostile names.

Target 0; hop 1: nodes 1, 2, 3; hop 2: nodes 4..7; node 8 is 3 hops away (outside K = 2).
Nodes 3 and 5 are training nodes.
Every node and class name is markup that must be shown literally, never run.
"""

from __future__ import annotations

import numpy as np

from namjax.graph import Graph

EDGES = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 4), (1, 5), (2, 6), (3, 7), (4, 8)]
HOPS_FROM_0 = np.array([0, 1, 1, 1, 2, 2, 2, 2, 3])
EVIL_NODE = "<img src=x onerror=alert(1)>"
EVIL_CLASS = "<script>alert(2)</script>"
NODE_NAMES = [EVIL_NODE, "<script>alert(3)</script>", "a&b", *(f"n{i}" for i in range(3, 9))]
CLASS_NAMES = [EVIL_CLASS, "<b>bold</b>"]
LABELS = np.array([0, 1, 0, 1, 0, 1, 0, 1, -1])
# contributions of sources 0..7 to target 0, per class (columns: class 0, class 1)
CONTRIB = np.array(
    [
        [0.50, -0.10],
        [-0.20, 0.30],
        [0.05, 0.20],
        [0.30, -0.05],
        [0.01, 0.02],
        [-0.40, 0.10],
        [0.00, 0.01],
        [0.02, -0.03],
    ]
)
BIAS = np.array([0.1, -0.2])
# predictions colouring all nodes (node 0 is predicted class 0, its logits say so too)
PREDICTED = np.array([0, 1, 0, 0, 1, 1, 0, 1, 0])
TRAIN = [3, 5]  # the training nodes


def evil_graph() -> Graph:
    edges = np.array(EDGES).T
    return Graph.from_edge_index(
        np.concatenate([edges, edges[::-1]], axis=1),
        num_nodes=9,
        labels=LABELS,
        node_names=NODE_NAMES,
        class_names=CLASS_NAMES,
        train_mask=np.isin(np.arange(9), TRAIN),
        name="<i>evil</i>",
    )


def evil_attribution():
    """An Attribution for target 0 (depth 2, both classes) built by hand."""
    from namjax.attribution import Attribution

    logits = CONTRIB.sum(axis=0) + BIAS
    return Attribution(
        targets=np.array([0]),
        offsets=np.array([0, 8]),
        sources=np.arange(8),
        hops=HOPS_FROM_0[:8],
        contributions=CONTRIB.astype(np.float32),
        classes=np.array([[0, 1]]),
        logits=logits[None].astype(np.float32),
        bias=BIAS[None].astype(np.float32),
        predicted=np.array([int(logits.argmax())]),
        labels=LABELS[:1],
        num_nodes=9,
        depth=2,
    )
