"""namjax: exact node attributions for graph neural networks, for every target and class at
once, in JAX.

Data flows one way: graph -> model -> engine -> attribution -> perturbation | views | tables |
jobs. The names below are the public API; submodules hold the details.
"""

from importlib.metadata import PackageNotFoundError, version

from namjax.attribution import Attribution
from namjax.datasets import load_dataset, load_planetoid_graph
from namjax.edges import EdgeAttribution, edge_contributions
from namjax.errors import (
    AttributionError,
    DatasetError,
    GraphError,
    JobError,
    ModelError,
    NamjaxError,
    OptionError,
    OutputError,
    ViewError,
)
from namjax.evaluation import Evaluation, evaluate
from namjax.explainer import explain, nam
from namjax.features import feature_contributions
from namjax.graph import Graph
from namjax.groundtruth import Benchmark, load_benchmark
from namjax.io import load_model, model_info, save_model
from namjax.layers import GCNConv, GINConv, SAGEConv, SGConv
from namjax.methods import METHODS, Method, make_method
from namjax.model import (
    GNN,
    DeviceGraph,
    GNNConfig,
    device_graph,
    forward,
    model_fingerprint,
    predict,
)
from namjax.perturb import Perturbation, deletion_curves
from namjax.pyg import from_pyg
from namjax.subgraph import KHop, khop
from namjax.training import TrainResult, accuracy, train
from namjax.views.curves import deletion_figure, write_deletion
from namjax.views.explorer import explore
from namjax.views.niv import niv, niv_bars, niv_paths, write_figure
from namjax.walks import paths

try:
    __version__ = version("namjax")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "unknown"

__all__ = [
    "GNN",
    "METHODS",
    "Attribution",
    "AttributionError",
    "Benchmark",
    "DatasetError",
    "DeviceGraph",
    "EdgeAttribution",
    "Evaluation",
    "GCNConv",
    "GINConv",
    "GNNConfig",
    "Graph",
    "GraphError",
    "JobError",
    "KHop",
    "Method",
    "ModelError",
    "NamjaxError",
    "OptionError",
    "OutputError",
    "Perturbation",
    "SAGEConv",
    "SGConv",
    "TrainResult",
    "ViewError",
    "__version__",
    "accuracy",
    "deletion_curves",
    "deletion_figure",
    "device_graph",
    "edge_contributions",
    "evaluate",
    "explain",
    "explore",
    "feature_contributions",
    "forward",
    "from_pyg",
    "khop",
    "load_benchmark",
    "load_dataset",
    "load_model",
    "load_planetoid_graph",
    "make_method",
    "model_fingerprint",
    "model_info",
    "nam",
    "niv",
    "niv_bars",
    "niv_paths",
    "paths",
    "predict",
    "save_model",
    "train",
    "write_deletion",
    "write_figure",
]
