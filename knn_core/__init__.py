"""knn_core: k-nearest-neighbours on MNIST, without Streamlit.

>>> from knn_core import load_mnist, KNNClassifier
>>> ds = load_mnist()
>>> clf = KNNClassifier(n_neighbors=5).fit(ds.train_images, ds.train_labels)
>>> clf = KNNClassifier(method="idm").fit(ds.train_images, ds.train_labels)   # beyond the classics
>>> lists = neighbor_lists(ds, "euclidean", "test")    # every test digit's 50 nearest, cached on disk
>>> lists.accuracy(5)
0.9688

Where things are: data.py (every MNIST source -> Dataset), normalize.py
(a drawing -> 28x28 the MNIST way), photo.py (decoding photos and canvas
values safely), features.py (deskew, blur, downsample), search.py (the exact search),
methods/ (Method: classic metrics and recipes beyond them), classifier.py
(the estimator), vote.py (weights, ties), lists.py (neighbour lists of a
split, cached), evaluate.py (reports, sweeps), abstain.py (refusing what is
not a digit), explain.py (why a neighbour is as far as it is), cli.py (the
command line).
"""
from .abstain import Abstainer, AbstainRule, abstain_rule
from .classifier import KNNClassifier
from .data import Dataset, load_mnist, stratified_subset
from .errors import DataError, EmptyDrawingError, ImageError, KnnLabError, ParameterError
from .lists import K_MAX, NeighborLists, estimate_seconds, find_neighbors, is_cached, neighbor_lists, split_data
from .methods import PRESETS, Method, Recipe
from .normalize import canvas_to_mnist, canvas_to_mnist_stages
from .photo import canvas_from_png, photo_to_mnist
from .search import METRICS, ExactSearch
from .vote import VoteExplanation

__all__ = [
    "AbstainRule",
    "Abstainer",
    "K_MAX",
    "METRICS",
    "PRESETS",
    "DataError",
    "Dataset",
    "EmptyDrawingError",
    "ExactSearch",
    "ImageError",
    "KNNClassifier",
    "KnnLabError",
    "Method",
    "NeighborLists",
    "ParameterError",
    "Recipe",
    "VoteExplanation",
    "abstain_rule",
    "canvas_from_png",
    "canvas_to_mnist",
    "canvas_to_mnist_stages",
    "estimate_seconds",
    "find_neighbors",
    "is_cached",
    "load_mnist",
    "neighbor_lists",
    "photo_to_mnist",
    "split_data",
    "stratified_subset",
]
