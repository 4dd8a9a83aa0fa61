"""Errors of the board harness (all :class:`unas.errors.UnasError`: one line, said to the user)."""
from unas.errors import ArchitectureError, UnasError


class BoardError(UnasError):
    """The board build or run failed: toolchain missing, compiler error, QEMU timeout or crash,
    or outputs that differ from the host build's."""


class ModelDoesNotFitError(ArchitectureError):
    """The model's image does not fit the target board's Flash or SRAM (the linker said so)."""
