"""The exceptions users of knn_core catch.

Every error knn_core raises on purpose is a `KnnLabError`, so a caller (the
command line, a page) can tell a problem with its input from a bug. Each is
also a ValueError, as scikit-learn's parameter errors are.
"""


class KnnLabError(ValueError):
    """A problem with what knn_core was given; the message says what and how to fix it."""


class ParameterError(KnnLabError):
    """A parameter is out of range or of the wrong kind (k, a metric, a method, a split, a shape...)."""


class DataError(KnnLabError):
    """A data source is missing, corrupt or not MNIST-shaped; the message names the file and the problem."""


class EmptyDrawingError(KnnLabError):
    """A drawing or photo holds no ink, so there is no digit to classify."""


class ImageError(KnnLabError):
    """The input is not an image we can read: not PNG/JPEG, damaged, wrong shape, or too big to be a digit."""
