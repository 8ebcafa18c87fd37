"""namjax: exact node attributions (NAM) and their visualisation (NIV) for GCNs, in JAX."""

from namjax.graph import Graph, GraphError
from namjax.model import GCN, DeviceGraph, GCNConfig, device_graph, gcn_apply, gcn_params

__all__ = [
    "GCN",
    "DeviceGraph",
    "GCNConfig",
    "Graph",
    "GraphError",
    "device_graph",
    "gcn_apply",
    "gcn_params",
]
