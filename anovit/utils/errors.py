"""Exceptions raised by anovit: each message names the file or field and what was expected."""


class AnovitError(Exception):
    """Base class of every error anovit raises on bad input or missing resources."""


class DatasetError(AnovitError, ValueError):
    """A dataset folder, image or mask is missing, corrupt or laid out wrongly."""


class CheckpointError(AnovitError, ValueError):
    """A checkpoint is missing, unsafe, or does not match its configuration."""


class OfflineError(AnovitError, RuntimeError):
    """A resource needs the network (weights, datasets) and is not available locally."""


class ConfigError(AnovitError, ValueError):
    """A configuration field (config.json, training.json, a job or a CLI argument) has a bad value."""


class TrainingError(AnovitError, RuntimeError):
    """Training cannot go on (e.g. the loss is no longer finite)."""
