"""Exceptions raised by anovit: each message names the file or field and what was expected."""


class AnovitError(Exception):
    """Base class of every error anovit raises on bad input or missing resources."""


class DatasetError(AnovitError, ValueError):
    """A dataset folder, image or mask is missing, corrupt or laid out wrongly."""


class CheckpointError(AnovitError, ValueError):
    """A checkpoint is missing, unsafe, or does not match its configuration."""


class OfflineError(AnovitError, RuntimeError):
    """A resource needs the network (weights, datasets) and is not available locally."""
