"""knn_core: k-nearest-neighbours on MNIST, without Streamlit.

>>> from knn_core import load_mnist, KNNClassifier
>>> ds = load_mnist()
>>> clf = KNNClassifier(n_neighbors=5).fit(ds.train_images, ds.train_labels)
"""
from .classifier import KNNClassifier, VoteExplanation
from .data import Dataset, load_mnist
from .errors import DataError, EmptyDrawingError, ImageError
from .normalize import canvas_to_mnist, canvas_to_mnist_stages
from .photo import canvas_from_png, photo_to_mnist
from .search import METRICS, ExactSearch

__all__ = [
    "Dataset",
    "DataError",
    "EmptyDrawingError",
    "ExactSearch",
    "ImageError",
    "KNNClassifier",
    "METRICS",
    "VoteExplanation",
    "canvas_from_png",
    "canvas_to_mnist",
    "canvas_to_mnist_stages",
    "load_mnist",
    "photo_to_mnist",
]
