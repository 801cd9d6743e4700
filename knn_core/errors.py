"""The exceptions users of knn_core catch."""


class DataError(ValueError):
    """A data source is missing, corrupt or not MNIST-shaped; the message names the file and the problem."""


class EmptyDrawingError(ValueError):
    """A drawing or photo holds no ink, so there is no digit to classify."""


class ImageError(ValueError):
    """The input is not an image we can read: not PNG/JPEG, damaged, wrong shape, or too big to be a digit."""
