"""Exceptions users see. Library code raises these; only CLI modules turn them into exit codes."""


class UnasError(Exception):
    """Base class: a problem the user can fix, with a one-line message saying how."""


class ConfigError(UnasError):
    """A configuration file is wrong. The message names the file, the key path and what was expected,
    e.g. ``experiments/x.yaml: search.population_size: expected an integer >= 1, got 'ten'``."""


class DataError(UnasError):
    """A dataset is missing or malformed; the message names the file looked for and how to get it."""


class ArchitectureError(UnasError):
    """An architecture is invalid or cannot be built / measured."""


class UnsupportedOperatorError(UnasError):
    """A .tflite model contains an operator this tool does not support (the message names it)."""
