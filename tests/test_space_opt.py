"""TinyNAS search-space optimisation: sizes and boards, exact peaks, seeding, ranking, the CLI."""
import math

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from search_spaces.mbconv import MBConvSpace, Operator
from unas.space_opt.boards import BOARDS, format_bytes, get_board, parse_bytes
from unas.errors import ArchitectureError, ConfigError
from unas.space_opt import main
from unas.space_opt.fast import check_against_resource_model, operator_costs
from unas.space_opt.rank import ConfigScore, grid_search, rank_configurations, score
from unas.space_opt.sweep import ConfigSamples, sweep


@pytest.mark.parametrize("text,expected", [
    ("320KB", 320 * 1024), ("1MB", 1 << 20), ("512kib", 512 * 1024), ("1.5MB", 3 << 19),
    ("65536", 65536), (" 2 M ", 2 << 20), ("100B", 100), (4096, 4096)])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["3XB", "", "KB", "-1KB", "0", "1.5", "1e3KB", "0.1KB", None])
def test_parse_bytes_rejects_with_one_line(text):
    with pytest.raises(ConfigError, match="^--sram: expected") as info:
        parse_bytes(text, "--sram")
    assert "\n" not in str(info.value)


def test_format_bytes_round_trips():
    for size in (100, 320 * 1024, 1 << 20, 3 << 19):
        assert parse_bytes(format_bytes(size)) == size


def test_boards_are_mcunets():
    assert (get_board("STM32F746").sram_bytes, get_board("stm32f746").flash_bytes) == (
        320 * 1024, 1 << 20)
    assert (BOARDS["stm32h743"].sram_bytes, BOARDS["stm32h743"].flash_bytes) == (
        512 * 1024, 2 << 20)
    assert (BOARDS["stm32f412"].sram_bytes, BOARDS["stm32f412"].flash_bytes) == (
        256 * 1024, 1 << 20)
    assert (BOARDS["stm32f765"].sram_bytes, BOARDS["stm32f765"].flash_bytes) == (
        512 * 1024, 1 << 20)
    assert all("MCUNet" in BOARDS[name].source
               for name in ("stm32f412", "stm32f746", "stm32f765", "stm32h743"))
    with pytest.raises(ConfigError, match="stm32f412"):
        get_board("esp32")


def test_one_board_table_for_both_tools():
    """space_opt and the board harness read one table, so both accept every board name."""
    from tflm_runtime.board import targets
    from tflm_runtime.board.__main__ import _parser as board_parser
    from unas.space_opt.cli import _budget, _parser as space_opt_parser

    assert BOARDS is targets.BOARDS and get_board is targets.get_board
    assert {"stm32f412", "stm32f446", "stm32f746", "stm32f765", "stm32f767",
            "stm32h743"} <= set(BOARDS)
    for name, board in BOARDS.items():
        assert board.cpu in targets.CPUS and board.mhz > 0
        assert board.sram_bytes <= targets.EMULATED_RAM_BYTES
        assert board.flash_bytes <= targets.EMULATED_FLASH_BYTES
        assert board_parser().parse_args(["m.tflite", "--board", name.upper()]).board == name
        budget = _budget(space_opt_parser().parse_args(["--board", name]))
        assert (budget.sram_bytes, budget.flash_bytes) == (board.sram_bytes, board.flash_bytes)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["tflm", "codegen"]), st.sampled_from([1, 3]))
def test_fast_costs_equal_the_resource_models(seed, engine, channels):
    from unas.resources.engine import peak_memory_bytes

    arch = MBConvSpace(resolution=[48, 64, 80]).random_architecture(np.random.default_rng(seed))
    graph = arch.resource_graph((1, 1, channels), 10)
    costs = operator_costs(arch.operators((1, 1, channels), 10), engine)
    assert costs.peak_bytes == peak_memory_bytes(graph, engine)
    assert costs.macs == sum(d["macs"] for _, d in graph.nodes(data=True))
    assert costs.size_bytes == sum(d["size_bytes"] for _, d in graph.nodes(data=True))
    assert check_against_resource_model(arch, (1, 1, channels), 10, engine) == costs


def test_fast_costs_follow_the_execution_model_on_a_small_chain():
    ops = [Operator("in", "INPUT", (4, 4, 2), ()),
           Operator("dw", "DEPTHWISE_CONV_2D", (4, 4, 2), ("in",), 288),
           Operator("add", "ADD", (4, 4, 2), ("in", "dw")),
           Operator("fc", "FULLY_CONNECTED", (3,), ("add",), 96, 99, 108)]
    # tflm: in + dw + add live while the add runs; codegen: the dw cannot overwrite "in" (the
    # add still needs it), so it needs no scratch either; the add overwrites "in"
    assert operator_costs(ops, "tflm") == (384, 96, 108)
    assert operator_costs(ops, "codegen") == (384, 64, 108)
    # a depthwise conv that does run in place has one input channel, padded for its 3x3 window
    # (6 x 6 + 1 byte of word overrun), live in the arena while it runs, and the engine only lets
    # it when that pays: with 2 channels, in place (32 + 37) is above input + output (64), with
    # 8 channels (128 + 37) it is below 256
    chain = [ops[0], ops[1], Operator("fc", "FULLY_CONNECTED", (3,), ("dw",), 96, 99, 108)]
    assert operator_costs(chain, "tflm") == (384, 64, 108)
    assert operator_costs(chain, "codegen") == (384, 64, 108)
    wide = [Operator("in", "INPUT", (4, 4, 8), ()),
            Operator("dw", "DEPTHWISE_CONV_2D", (4, 4, 8), ("in",), 1152),
            Operator("fc", "FULLY_CONNECTED", (3,), ("dw",), 384, 387, 396)]
    assert operator_costs(wide, "codegen") == (1536, 128 + 37, 396)
    with pytest.raises(ConfigError, match="--engine"):
        operator_costs(ops, "tvm")


def test_fast_costs_disagreement_is_reported(monkeypatch):
    import unas.space_opt.fast as fast

    exact = fast.operator_costs
    monkeypatch.setattr(fast, "operator_costs",
                        lambda ops, engine: exact(ops, engine)._replace(peak_bytes=1))
    arch = MBConvSpace(0.2, 48).random_architecture(np.random.default_rng(0))
    with pytest.raises(ArchitectureError, match="differ from unas.resources"):
        check_against_resource_model(arch, (48, 48, 3), 10, "tflm")


def test_codegen_peak_is_below_tflm_thanks_to_in_place_operators():
    ops = MBConvSpace(0.5, 96).random_architecture(np.random.default_rng(2)).operators(
        (96, 96, 3), 10)
    assert operator_costs(ops, "codegen").peak_bytes < operator_costs(ops, "tflm").peak_bytes


def test_sweep_is_seeded_and_independent_of_workers_and_of_other_configs():
    configs = [(0.2, 48), (0.3, 64)]
    one = sweep(configs, samples=4, seed=7, workers=1, num_classes=10, progress=False)
    two = sweep(configs, samples=4, seed=7, workers=2, num_classes=10, progress=False)
    alone = sweep([(0.3, 64)], samples=4, seed=7, workers=1, num_classes=10, progress=False)
    other = sweep(configs, samples=4, seed=8, workers=1, num_classes=10, progress=False)
    for a, b in zip(one.configs, two.configs):
        assert a.label == b.label
        for field in ("macs", "peak_bytes", "size_bytes"):
            assert np.array_equal(getattr(a, field), getattr(b, field))
    assert np.array_equal(one.configs[1].macs, alone.configs[0].macs)
    assert not np.array_equal(one.configs[1].macs, other.configs[1].macs)
    assert one.timing.samples == 8 and one.timing.verified == 2 and one.timing.costs_s > 0


def test_sweep_measures_what_the_resource_graph_says():
    from unas.resources.engine import peak_memory_bytes

    result = sweep([(0.4, 80)], samples=3, seed=1, num_classes=10, progress=False)
    rng = np.random.default_rng(np.random.SeedSequence(1).spawn(108)[2 * 12 + 2].spawn(1)[0])
    space = MBConvSpace(0.4, 80)
    for i in range(3):
        graph = space.random_architecture(rng).resource_graph((80, 80, 3), 10)
        assert result.configs[0].macs[i] == sum(d["macs"] for _, d in graph.nodes(data=True))
        assert result.configs[0].size_bytes[i] == sum(
            d["size_bytes"] for _, d in graph.nodes(data=True))
        assert result.configs[0].peak_bytes[i] == peak_memory_bytes(graph, "codegen")


samples_strategy = st.lists(st.tuples(st.integers(1, 100), st.integers(1, 50), st.integers(1, 50)),
                            min_size=1, max_size=20)


@settings(max_examples=50, deadline=None)
@given(st.lists(samples_strategy, min_size=1, max_size=5), st.integers(1, 50), st.integers(1, 50))
def test_ranking_is_by_mean_flops_of_fitting_samples(per_config, sram, flash):
    configs = [ConfigSamples(0.2 + 0.1 * i, 48, *(np.array(col, dtype=np.int64)
                                                  for col in zip(*rows)))
               for i, rows in enumerate(per_config)]
    ranked = rank_configurations(configs, sram, flash)
    for s, rows in ((score(c, sram, flash), rows) for c, rows in zip(configs, per_config)):
        fits = [m for m, p, z in rows if p <= sram and z <= flash]
        assert s.fitting == len(fits) and s.samples == len(rows)
        assert (s.label in [r.label for r in ranked]) == bool(fits)
        if fits:
            assert math.isclose(s.mean_flops, sum(fits) / len(fits))
            assert s.max_flops == max(fits)
    means = [r.mean_flops for r in ranked]
    assert means == sorted(means, reverse=True)
    bigger = rank_configurations(configs, sram + 10, flash + 10)
    assert len(bigger) >= len(ranked)


def test_min_fit_fraction_drops_configurations_where_few_samples_fit():
    rare = ConfigSamples(1.0, 224, np.array([100, 1, 1, 1]), np.array([1, 9, 9, 9]),
                         np.array([1, 1, 1, 1]))
    common = ConfigSamples(0.2, 48, np.array([5, 6, 7, 8]), np.array([1, 1, 1, 9]),
                           np.array([1, 1, 1, 1]))
    assert [s.label for s in rank_configurations([rare, common], 5, 5)] == ["w1-r224", "w0.2-r48"]
    assert [s.label for s in rank_configurations([rare, common], 5, 5, 0.5)] == ["w0.2-r48"]
    assert grid_search([rare, common], [5], [5], 0.8)[0].best is None


def test_grid_cells_hold_the_best_of_each_budget():
    configs = [ConfigSamples(0.2, 48, np.array([5, 6]), np.array([10, 30]), np.array([10, 10])),
               ConfigSamples(0.5, 48, np.array([9, 20]), np.array([20, 30]), np.array([40, 40]))]
    cells = {(c.sram_bytes, c.flash_bytes): c.best for c in grid_search(configs, [5, 20, 30],
                                                                         [10, 50])}
    assert cells[(5, 10)] is None
    assert cells[(20, 10)].label == "w0.2-r48" and cells[(30, 10)].mean_flops == 5.5
    assert cells[(20, 50)].label == "w0.5-r48" and cells[(30, 50)].mean_flops == 14.5


def test_cli_small_sweep_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["--board", "stm32f412", "--sram", "96KB", "--samples", "6", "--widths", "0.2,0.3",
            "--resolutions", "48,64", "--classes", "10", "--workers", "1", "--out", str(out),
            "--quiet", "--grid", "--grid-sram", "64KB,128KB", "--grid-flash", "256KB,1MB"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "96KB SRAM / 1MB Flash: best configuration" in printed
    for name in ("ranking.md", "flops_cdf.png", "search.yaml", "grid.md", "grid.png"):
        assert (out / name).stat().st_size > 0
    assert (out / "flops_cdf.png").read_bytes()[:4] == b"\x89PNG"
    config = yaml.safe_load((out / "search.yaml").read_text())
    best = printed.split("best configuration ")[1].split()[0]
    w, r = float(best[1:best.index("-")]), int(best.split("-r")[1])
    assert config["search_space"] == {"name": "mbconv",
                                      "bounds": {"width_mult": w, "resolution": r}}
    assert config["objectives"]["peak_memory_bytes"] == 96 * 1024
    assert config["objectives"]["model_size_bytes"] == 1 << 20
    assert config["dataset"]["image_size"] == [r, r] and config["target"]["engine"] == "codegen"
    ranking = (out / "ranking.md").read_text()
    assert f"| 1 | {best} |" in ranking
    grid = (out / "grid.md").read_text()
    assert "| 1MB |" in grid and "128KB" in grid


def test_search_yaml_is_a_valid_experiment_config(tmp_path):
    from unas import config as config_module
    template = tmp_path / "template.yaml"
    template.write_text(yaml.safe_dump({"dataset": {"name": "mnist"},
                                        "objectives": {"error": 0.3, "peak_memory_bytes": 1,
                                                       "model_size_bytes": 1, "macs": 1},
                                        "search": {"rounds": 3},
                                        "pruning": {"enabled": True, "start_epoch": 1,
                                                    "end_epoch": 2},
                                        "training": {"epochs": 3}}))
    out = tmp_path / "out"
    assert main(["--sram", "128KB", "--flash", "512KB", "--samples", "4", "--widths", "0.2",
                 "--resolutions", "48,64", "--classes", "10", "--channels", "1", "--quiet",
                 "--template", str(template), "--out", str(out)]) == 0
    cfg = config_module.load_config(out / "search.yaml")
    assert cfg.search_space.name == "mbconv" and cfg.search.rounds == 3
    assert cfg.objectives.error == 0.3 and cfg.objectives.peak_memory_bytes == 128 * 1024
    assert not cfg.pruning.enabled and cfg.pruning.end_epoch == 2
    assert cfg.dataset.name == "mnist" and cfg.dataset.image_size in ((48, 48), (64, 64))


@pytest.mark.parametrize("argv,message", [
    (["--sram", "3XB", "--flash", "1MB"], "--sram: expected a size"),
    (["--board", "esp32"], "--board: expected one of"),
    (["--sram", "320KB"], "expected --flash too"),
    ([], "expected --board"),
    (["--board", "stm32f746", "--engine", "tvm"], "--engine: expected one of codegen, tflm"),
    (["--board", "stm32f746", "--samples", "0"], "--samples: expected an integer >= 1"),
    (["--board", "stm32f746", "--widths", "0.25"], "--widths: expected values from"),
    (["--board", "stm32f746", "--nope"], "unrecognized arguments"),
    (["--board", "stm32f746", "--template", "/nonexistent.yaml"], "--template: cannot read"),
    (["--board", "stm32f746", "--dataset", "digits", "--samples", "2", "--widths", "0.2",
      "--resolutions", "48", "--quiet"], "dataset.image_size: expected null for digits"),
    (["--sram", "1KB", "--flash", "1KB", "--samples", "2", "--widths", "0.2",
      "--resolutions", "48", "--quiet"], "of its samples fitting 1KB SRAM / 1KB Flash"),
    (["--board", "stm32f746", "--min-fit-fraction", "2"], "--min-fit-fraction: expected"),
])
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys, tmp_path):
    assert main(argv + ["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_config_score_fraction():
    s = ConfigScore(0.5, 96, 10, 4, 1.0, (1.0,), 1)
    assert s.fit_fraction == 0.4 and s.label == "w0.5-r96"
