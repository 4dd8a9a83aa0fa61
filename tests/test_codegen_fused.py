"""Row-streamed inverted-residual blocks: fused C vs TFLM byte for byte, memory as predicted.

Small MBConv models (expansion or none, strides 1/2, kernels 3/5/7, odd widths, residual or
not, ADD operands in either order, 'same' and 'valid' padding, depthwise channel counts that
are multiples of four, have a tail past the last four-channel group, or are below four) are
generated, built with ``-Wall -Wextra -Werror -fsanitize=address,undefined`` and run on random
inputs next to TFLM; each must really contain its fused steps, and its SRAM must equal
``unas.resources.engine.peak_memory_bytes`` of its resource graph. On the emulated Cortex-M4
(DSP instructions instead of the host's portable lane arithmetic) the same models must match
TFLM too.
"""
import re
import shutil

import numpy as np
import pytest
from tiny_models import int8_tflite

from tflm_runtime.codegen.generator import generate
from tflm_runtime.codegen.verify import compare_with_tflm
from tflm_runtime.tflite_model import parse_tflite, resource_graph
from unas.resources.engine import FUSED_OP, engine_graph, fusable_chains, peak_memory_bytes
from unas.resources.graph import first_input

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def _block(L, x, expand, kernel, stride, out_c, padding="same", residual=None):
    """expand (1x1, ReLU6) -> depthwise -> project (1x1, linear) [-> ADD]; ``residual`` is
    'first' / 'second' (the block input's ADD operand) or None."""
    y = L.Conv2D(x.shape[-1] * expand, 1, activation="relu6")(x) if expand else x
    y = L.DepthwiseConv2D(kernel, strides=stride, padding=padding, activation="relu6")(y)
    y = L.Conv2D(out_c, 1)(y)
    if residual == "first":
        return L.Add()([x, y])
    if residual == "second":
        return L.Add()([y, x])
    return y


#: name -> (input shape, stem channels, blocks as _block arguments, fused steps expected)
CASES = {
    "k3_s1_residual": ((9, 7, 5), 5, [(3, 3, 1, 5, "same", "first")], 1),
    "k5_s2_odd": ((11, 13, 3), 3, [(4, 5, 2, 6, "same", None)], 1),
    "k7_valid": ((12, 9, 4), 4, [(3, 7, 1, 5, "valid", None)], 1),
    "k3_s2_valid_even": ((10, 8, 3), 3, [(6, 3, 2, 4, "valid", None)], 1),
    "k5_add_operands_swapped": ((7, 9, 3), 3, [(5, 5, 1, 3, "same", "second")], 1),
    "no_expand_residual": ((8, 8, 6), 6, [(0, 3, 1, 6, "same", "first")], 1),
    "no_expand_k5_s2": ((17, 15, 1), 8, [(0, 5, 2, 3, "same", None)], 1),
    "three_channels_scalar": ((9, 10, 2), 3, [(0, 3, 1, 3, "same", "first")], 1),
    # expansion 5: 15 channels (three past the last group of four), where fusing still pays
    # against the unfused block with its depthwise plane live only while it runs
    "k3x5_any_tail": ((8, 9, 3), 3, [(5, (3, 5), 1, 4, "same", None)], 1),
    "two_blocks": ((13, 11, 4), 4, [(4, 3, 2, 8, "same", None), (3, 5, 1, 8, "same", "first")],
                   2),
}


def _models():
    from unas.tfenv import keras
    L = keras.layers
    models = {}
    for name, (shape, stem, blocks, _) in CASES.items():
        inp = keras.Input(shape)
        x = L.Conv2D(stem, 3, padding="same", activation="relu")(inp)  # not the graph input
        for args in blocks:
            x = _block(L, x, *args)
        models[name] = (keras.Model(inp, L.GlobalAveragePooling2D()(x)), shape)
    return models


#: (seed, samples) of the random inputs conftest's ``comparisons`` runs ``blobs`` on
COMPARISON_INPUTS = (5, 6)


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(99)
    return {name: int8_tflite(model, rng, randomise=True) for name, (model, _) in _models().items()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fused_blocks_are_bit_exact_with_tflm_under_sanitizers(comparisons, name):
    assert comparisons[name].bit_exact, comparisons[name].first_difference


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_model_runs_its_blocks_fused(comparisons, name):
    source = (comparisons[name].generated.out_dir / "model.c").read_text()
    assert source.count("unas_fused_block_s8(") == CASES[name][3]


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_sram_equals_the_prediction_and_the_plan_is_tight(blobs, comparisons, name):
    gen = comparisons[name].generated
    graph = resource_graph(parse_tflite(blobs[name]))
    assert gen.sram_bytes == peak_memory_bytes(graph, "codegen")
    assert gen.arena_bytes == gen.predicted_arena_bytes
    gen.plan.check()


def _mid_channels(name):
    shape, stem, blocks, _ = CASES[name]
    expand = blocks[0][0]
    return stem * expand if expand else stem


@pytest.mark.parametrize("name", sorted(CASES))
def test_depthwise_groups_use_widened_taps_and_only_the_tail_keeps_int8_taps(comparisons, name):
    """Four-channel groups read generation-time widened taps; the int8 copy is stored only for
    channels past the last group."""
    source = (comparisons[name].generated.out_dir / "model.c").read_text()
    mid_c = _mid_channels(name)
    assert (".dw_wide = NULL" in source) == (mid_c < 4)
    assert (".dw_weights = NULL" in source) == (mid_c % 4 == 0)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_generator_calls_the_depthwise_row_of_the_kernel_size(comparisons, name):
    """Square 3/5/7 kernels with four-channel groups get their unrolled row function, anything
    else the general one; only those are referenced."""
    source = (comparisons[name].generated.out_dir / "model.c").read_text()
    _, stem, blocks, _ = CASES[name]
    expected, channels = [], stem
    for expand, kernel, _, out_c, _, _ in blocks:
        k_h, k_w = kernel if isinstance(kernel, tuple) else (kernel, kernel)
        mid_c = channels * expand if expand else channels
        unrolled = k_h == k_w and k_h in (3, 5, 7) and mid_c >= 4
        expected.append(f"unas_fused_dw_row_{k_h}x{k_w}" if unrolled else "unas_fused_dw_row_any")
        channels = out_c
    assert re.findall(r"\.dw_row_kernel = (\w+)", source) == expected
    assert set(re.findall(r"unas_fused_dw_row_\w+", source)) == set(expected)


BOARD_CASES = ["k3_s1_residual", "k5_s2_odd", "k7_valid", "three_channels_scalar",
               "k3x5_any_tail"]


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None
                    or shutil.which("qemu-system-arm") is None, reason="needs the board toolchain")
@pytest.mark.parametrize("name", BOARD_CASES)
def test_fused_blocks_on_cortex_m4_match_tflm(blobs, tmp_path, name):
    """The DSP build (SXTB16/SMLABB/SMLATT lanes, SMMULR requantisation) is bit-exact too."""
    from tflm_runtime.board import generate_model_sources, measure_c_model
    from tflm_runtime.board.sources import read_model_sources
    from tflm_runtime.codegen.verify import run_tflm

    path = tmp_path / f"{name}.tflite"
    path.write_bytes(blobs[name])
    sources = generate_model_sources(path, tmp_path / "c")
    header = read_model_sources(sources)
    assert "unas_fused_block_s8(" in (header.directory / "model.c").read_text()
    x = np.random.default_rng(11).integers(-128, 128, size=(3, header.input_bytes), dtype=np.int8)
    result = measure_c_model(sources, cpu="cortex-m4", inputs=x)
    np.testing.assert_array_equal(result.outputs, result.host_outputs)
    expected = run_tflm(blobs[name], x.reshape(3, *CASES[name][0]))
    np.testing.assert_array_equal(result.outputs, expected.reshape(3, -1))


def test_the_step_buffer_overlaps_no_live_tensor(comparisons):
    """The rows buffer is a planned tensor alive only while its fused step runs."""
    plan = comparisons["two_blocks"].generated.plan
    temps = [t for t in plan.tensors.values() if t.name.endswith("#temp")]
    assert len(temps) == 2
    for temp in temps:
        assert temp.last == temp.first + 1  # placed right before its step, freed by it
        for other in plan.tensors.values():
            alive = not (other.last < temp.first or temp.last < other.first)
            if other is not temp and alive:
                assert other.end <= temp.offset or temp.end <= other.offset


def test_a_depthwise_conv_that_changes_the_channel_count_is_not_fused(tmp_path):
    """Depth multiplier 2 is no inverted-residual chain: the model runs as separate kernels."""
    from unas.tfenv import keras
    L = keras.layers
    inp = keras.Input((10, 10, 3))
    y = L.Conv2D(12, 1, activation="relu6")(inp)
    y = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(y)
    model = keras.Model(inp, L.Conv2D(4, 1)(y))
    blob = int8_tflite(model, np.random.default_rng(1), randomise=True)
    assert fusable_chains(resource_graph(parse_tflite(blob))) == []
    gen = generate(parse_tflite(blob), tmp_path / "multiplier2")
    assert "unas_fused_block_s8(" not in (gen.out_dir / "model.c").read_text()


def test_engine_and_generator_agree_on_what_is_fused(blobs):
    """The generator's plan holds exactly the fused nodes the engine graph has."""
    for name, blob in blobs.items():
        graph = engine_graph(resource_graph(parse_tflite(blob)), "codegen")
        fused = [n for n, d in graph.nodes(data=True) if d["op"] == FUSED_OP]
        assert len(fused) == CASES[name][3]
        for node in fused:
            chain = graph.nodes[node]["fused"]
            assert first_input(graph, node) == chain.source
            assert graph.nodes[f"{node}#temp"]["bytes"] == chain.temp_bytes


@pytest.mark.slow
def test_mbconv_space_architecture_fused_bit_exact_and_predicted_from_the_architecture(
        tmp_path):
    """The search predicts from the MBConv space's own resource graph (no kernel attributes:
    the engine infers them); the generated code must agree, fused and bit-exact."""
    from search_spaces.mbconv import MBConvSpace
    from unas.export.quantize import keras_to_int8_tflite
    from unas.space_opt.fast import operator_costs

    rng = np.random.default_rng(8)
    space = MBConvSpace(width_mult=0.2, resolution=48)
    archs, blobs = {}, {}
    for i in range(1):
        archs[f"mb{i}"] = arch = space.random_architecture(rng)
        model = arch.build((48, 48, 3), 5)
        for layer in model.layers:  # non-trivial biases and BN statistics
            weights = layer.get_weights()
            if weights:
                layer.set_weights([w + rng.normal(scale=0.1, size=w.shape).astype(w.dtype)
                                   if w.ndim == 1 else w for w in weights])
        blobs[f"mb{i}"] = keras_to_int8_tflite(
            model, rng.uniform(0, 1, size=(8, 48, 48, 3)).astype("float32"))
    results = compare_with_tflm(blobs, tmp_path, rng, samples=3, sanitize=True)
    for name, result in results.items():
        assert result.bit_exact, result.first_difference
        gen = result.generated
        assert "unas_fused_block_s8(" in (gen.out_dir / "model.c").read_text()
        graph = archs[name].resource_graph((48, 48, 3), 5)
        assert gen.sram_bytes == peak_memory_bytes(graph, "codegen")
        assert gen.sram_bytes == operator_costs(archs[name].operators((48, 48, 3), 5),
                                                "codegen").peak_bytes
