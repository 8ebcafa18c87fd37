"""namjax: exact node attributions (NAM) and their visualisation (NIV) for GCNs, in JAX."""

from namjax.datasets import DatasetError, load_dataset, load_planetoid_graph
from namjax.graph import Graph, GraphError
from namjax.model import GCN, DeviceGraph, GCNConfig, device_graph, gcn_apply, gcn_params

__all__ = [
    "GCN",
    "DatasetError",
    "DeviceGraph",
    "GCNConfig",
    "Graph",
    "GraphError",
    "device_graph",
    "gcn_apply",
    "gcn_params",
    "load_dataset",
    "load_planetoid_graph",
]
