"""namjax: exact node attributions (NAM) and their visualisation (NIV) for GCNs, in JAX."""

from namjax.datasets import DatasetError, load_dataset, load_planetoid_graph
from namjax.graph import Graph, GraphError
from namjax.model import GCN, DeviceGraph, GCNConfig, device_graph, gcn_apply, gcn_params
from namjax.niv import NIVError, niv, niv_bars, niv_paths, write_figure

__all__ = [
    "GCN",
    "DatasetError",
    "DeviceGraph",
    "GCNConfig",
    "Graph",
    "GraphError",
    "NIVError",
    "device_graph",
    "gcn_apply",
    "gcn_params",
    "load_dataset",
    "load_planetoid_graph",
    "niv",
    "niv_bars",
    "niv_paths",
    "write_figure",
]
