"""namjax: exact node attributions (NAM) and their visualisation (NIV) for GCNs, in JAX."""

from namjax.datasets import DatasetError, load_dataset, load_planetoid_graph
from namjax.graph import Graph, GraphError
from namjax.io import ModelError, load_model, model_info, save_model
from namjax.model import GCN, DeviceGraph, GCNConfig, device_graph, gcn_apply, gcn_params
from namjax.nam import Attribution, nam, paths
from namjax.perturb import Perturbation, deletion_curves
from namjax.subgraph import KHop, khop
from namjax.train import TrainResult, accuracy, predict, train
from namjax.views.niv import NIVError, niv, niv_bars, niv_paths, write_figure

__all__ = [
    "GCN",
    "Attribution",
    "DatasetError",
    "DeviceGraph",
    "GCNConfig",
    "Graph",
    "GraphError",
    "KHop",
    "ModelError",
    "NIVError",
    "Perturbation",
    "TrainResult",
    "accuracy",
    "deletion_curves",
    "device_graph",
    "gcn_apply",
    "gcn_params",
    "khop",
    "load_dataset",
    "load_model",
    "load_planetoid_graph",
    "model_info",
    "nam",
    "niv",
    "niv_bars",
    "niv_paths",
    "paths",
    "predict",
    "save_model",
    "train",
    "write_figure",
]
