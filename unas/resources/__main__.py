"""``python -m unas.resources ARCH.json --input-shape 28,28,1 --classes 10``: memory report.

Prints every operator (in the optimal order) with its output shape, bytes, MACs and the live bytes
while it runs, then peak memory, the saving over the default order, model size, MACs and
parameters. ``ARCH.json`` is an architecture's JSON (``Architecture.to_json()``) or a search's
``pareto/<id>.json``, whose ``architecture`` key holds it. Bad input (a missing file, a .tflite or
.keras model, not JSON, an unknown space, a bad shape) prints one line to stderr naming the file
or option and what was expected, and exits with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from unas.errors import ArchitectureError, ConfigError, UnasError


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(d) for d in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise ConfigError(f"--input-shape: expected positive integers separated by commas "
                          f"(e.g. 28,28,1), got {text!r}")
    return shape


_EXPECTED = ("expected the JSON of an architecture (Architecture.to_json(), with a 'space' key) "
             "or a search's pareto/<id>.json (with an 'architecture' key)")
_NOT_JSON = {".tflite": "a .tflite model", ".keras": "a Keras model", ".h5": "a Keras model"}


def _load_architecture(path: str):
    try:
        importlib.import_module("search_spaces.registry")  # registers every space
    except ImportError:
        pass
    from search_spaces import architecture_from_json

    suffix = Path(path).suffix.lower()
    if suffix in _NOT_JSON:
        raise ConfigError(f"{path}: {_EXPECTED}, got {_NOT_JSON[suffix]}")
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the architecture file ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: {_EXPECTED}, got a binary file") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); "
                          f"{_EXPECTED}") from None
    if isinstance(data, dict) and "space" not in data and "architecture" in data:
        data = data["architecture"]  # a search's pareto/<id>.json (unas.report)
    if not isinstance(data, dict) or "space" not in data:
        raise ConfigError(f"{path}: {_EXPECTED}")
    try:
        return architecture_from_json(data)
    except ArchitectureError as err:
        raise ArchitectureError(f"{path}: {err}") from None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m unas.resources", description=__doc__.split("\n")[0])
    parser.add_argument("architecture", help="JSON file of an architecture (Architecture.to_json()) "
                                             "or a search's pareto/<id>.json")
    parser.add_argument("--input-shape", required=True, help="input shape without batch, e.g. 28,28,1")
    parser.add_argument("--classes", required=True, type=int, help="number of output classes")
    args = parser.parse_args(argv)
    try:
        from unas.resources.report import resource_report

        shape = _shape(args.input_shape)
        if args.classes < 1:
            raise ConfigError(f"--classes: expected an integer >= 1, got {args.classes}")
        arch = _load_architecture(args.architecture)
        report = resource_report(arch.resource_graph(shape, args.classes))
    except UnasError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
