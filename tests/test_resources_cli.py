"""python -m unas.resources: report of an architecture's resource graph, one-line errors."""
import json
import zipfile

from dataclasses import dataclass
from typing import Any

import pytest

from search_spaces.base import Architecture
from unas.errors import ArchitectureError
from unas.resources import add_op, new_graph
from unas.resources.__main__ import main


@dataclass(frozen=True)
class BranchyArch(Architecture):
    """Input -> a wide branch and a big-then-small branch -> concatenation -> dense."""

    space = "test_resources_branchy"
    wide: int

    def to_dict(self) -> dict[str, Any]:
        return {"wide": self.wide}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BranchyArch":
        if not isinstance(data.get("wide"), int):
            raise ArchitectureError("wide: expected an integer")
        return cls(data["wide"])

    def build(self, input_shape, num_classes):
        raise NotImplementedError("not needed by the resource report")

    def resource_graph(self, input_shape, num_classes):
        h, w, c = input_shape
        g = new_graph()
        add_op(g, "input", "INPUT", input_shape)
        add_op(g, "wide", "CONV_2D", (h, w, self.wide), ["input"], macs=h * w * self.wide * c,
               params=c * self.wide + self.wide, size_bytes=c * self.wide + 4 * self.wide)
        add_op(g, "big", "CONV_2D", (h, w, 10), ["input"], macs=h * w * 10 * c,
               params=c * 10 + 10, size_bytes=c * 10 + 40)
        add_op(g, "small", "MAX_POOL_2D", (h, w, 1), ["big"])
        add_op(g, "cat", "CONCATENATION", (h, w, self.wide + 1), ["wide", "small"])
        add_op(g, "flat", "RESHAPE", (h * w * (self.wide + 1),), ["cat"])
        add_op(g, "fc", "FULLY_CONNECTED", (num_classes,), ["flat"],
               macs=h * w * (self.wide + 1) * num_classes)
        return g


def test_report(tmp_path, capsys):
    path = tmp_path / "arch.json"
    path.write_text(BranchyArch(5).to_json())
    assert main([str(path), "--input-shape", "2,2,1", "--classes", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["operator", "op", "output", "shape", "bytes", "MACs", "live", "bytes"]
    assert [line.split()[0] for line in lines[2:9]] == ["input", "big", "small", "wide", "cat",
                                                        "flat", "fc"]
    # big: 4 + 40; small: 4 + 40 + 4 (input waits for wide); wide: 4 + 4 + 20; cat: 4+20+24
    assert [int(line.split()[-1]) for line in lines[2:9]] == [4, 44, 48, 28, 48, 48, 27]
    assert "peak memory (optimal order): 48 bytes" in out
    # default order: wide (4+20) then big (4+20+40=64)
    assert "peak memory (default order): 64 bytes (optimal saves 16 bytes, 25.0%)" in out
    assert "model size: 75 bytes" in out  # wide 5 + 4*5, big 10 + 4*10
    assert "MACs: 132" in out  # wide 4*5, big 4*10, fc 24*3


@pytest.mark.parametrize("content, args, message", [
    (None, ["--input-shape", "2,2,1", "--classes", "3"], "cannot read"),
    ("{not json", ["--input-shape", "2,2,1", "--classes", "3"], "not valid JSON"),
    ('{"space": "nope"}', ["--input-shape", "2,2,1", "--classes", "3"], "unknown architecture space"),
    ('{"space": "test_resources_branchy", "wide": "x"}', ["--input-shape", "2,2,1",
                                                          "--classes", "3"], "wide"),
    ('{"space": "test_resources_branchy", "wide": 2}', ["--input-shape", "2,x", "--classes", "3"],
     "--input-shape"),
    ('{"space": "test_resources_branchy", "wide": 2}', ["--input-shape", "2,2,1", "--classes", "0"],
     "--classes"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, args, message):
    path = tmp_path / "arch.json"
    if content is not None:
        path.write_text(content)
    assert main([str(path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_search_pareto_file_is_reported_like_its_architecture(tmp_path, capsys):
    """A search's pareto/<id>.json (unas.report.write_pareto_models) holds the architecture under
    'architecture' (and the proposed one beside it); the report is the architecture's."""
    arch_path, pareto_path = tmp_path / "arch.json", tmp_path / "3.json"
    arch_path.write_text(BranchyArch(5).to_json())
    pareto_path.write_text(json.dumps({
        "id": 3, "architecture": json.loads(BranchyArch(5).to_json()),
        "proposed_architecture": json.loads(BranchyArch(7).to_json()),
        "objectives": {"error": 0.1}, "test_error": None, "model": "models/3.keras"}))
    args = ["--input-shape", "2,2,1", "--classes", "3"]
    assert main([str(arch_path), *args]) == 0
    expected = capsys.readouterr().out
    assert main([str(pareto_path), *args]) == 0
    assert capsys.readouterr().out == expected


def _zip(path):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")


@pytest.mark.parametrize("name, write, message", [
    ("model.tflite", lambda p: p.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(range(256))),
     "got a .tflite model"),
    ("model.keras", _zip, "got a Keras model"),
    ("garbage.json", lambda p: p.write_bytes(bytes(range(128, 256))), "got a binary file"),
    ("list.json", lambda p: p.write_text("[1, 2]"), "expected the JSON of an architecture"),
    ("other.json", lambda p: p.write_text('{"id": 3}'), "or a search's pareto/<id>.json"),
])
def test_models_and_garbage_name_the_file_and_what_was_expected(tmp_path, capsys, name, write,
                                                                message):
    path = tmp_path / name
    write(path)
    assert main([str(path), "--input-shape", "2,2,1", "--classes", "3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and message in err and err.count("\n") == 1
