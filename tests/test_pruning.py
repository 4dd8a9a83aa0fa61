"""Structured pruning: channel groups, masks with feedback, schedule, and materialisation."""
import numpy as np
import pytest

from search_spaces.cnn_arch import CNNArchitecture, ConvBlock, ConvLayer
from search_spaces.mlp import DenseLayer, MLPArchitecture
from unas.train.pruning import find_groups, keep_count, make_pruning, pruned_architecture

SHAPE = (8, 8, 1)


def graph_size_bytes(graph):
    return sum(d["size_bytes"] for _, d in graph.nodes(data=True))


def graph_macs(graph):
    return sum(d["macs"] for _, d in graph.nodes(data=True))

CLASSES = 4


def conv(channels, kernel=3, stride=1, bn=True, relu=True, pre_pool=False):
    return ConvLayer("full", kernel, channels, stride, pre_pool, bn, relu)


def dw(kernel=3, bn=True):
    return ConvLayer("depthwise", kernel, None, 1, False, bn, True)


def branchy_cnn(second=8):
    """Block 0: conv(8)+dw; block 1 parallel: conv(8) -> ADD; block 2: conv(6);
    block 3 parallel: conv(second) -> CONCAT (second != 6) or ADD; then dense 12, logits."""
    return CNNArchitecture(
        blocks=(ConvBlock(False, (conv(8), dw())),
                ConvBlock(True, (conv(8, kernel=1, bn=False),)),
                ConvBlock(False, (conv(6, stride=2),)),
                ConvBlock(True, (conv(second, kernel=5, stride=2), dw(bn=False)))),
        pool_type="avg", pool_size=2, dense_units=(12,))


def randomise(model, rng):
    """Random weights and BN statistics, so that masking and slicing are really exercised."""
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, var = weights
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.5, beta.shape),
                               rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2.0, var.shape)])
        else:
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in weights])


def finalise(callbacks):
    for cb in callbacks:
        cb.on_train_end()


def test_groups_follow_add_concat_and_depthwise():
    arch = branchy_cnn(second=5)
    ops = arch.plan(SHAPE, CLASSES)
    groups = find_groups(ops)
    seg = groups.segments
    # the two branches joined by ADD share one group; the depthwise follows its input
    assert seg("b0_l0_conv") == seg("b1_l0_conv") == seg("b0_l1_conv") == seg("b1_join")
    # CONCATENATION lays out both inputs' groups side by side
    assert [n for _, n in seg("b3_join")] == [6, 5]
    assert seg("b3_join") == seg("b2_l0_conv") + seg("b3_l0_conv")
    # the class layer and the input are never pruned
    prunable = groups.prunable()
    assert seg("logits")[0][0] not in prunable and seg("input")[0][0] not in prunable
    assert len(prunable) == 4  # {b0,b1}, b2, b3, d0


def test_keep_count_never_reaches_zero():
    assert keep_count(1, 0.99) == 1
    assert keep_count(128, 0.99) == 1
    assert keep_count(10, 0.5) == 5
    assert keep_count(10, 0.0) == 10


@pytest.mark.parametrize("second", [5, 7])
def test_materialised_model_equals_masked_model(second):
    """second=7 with target 0.5 gives 6 -> 3 and 7 -> 4: kept apart; 5 -> 2 vs 3 as well."""
    rng = np.random.default_rng(0)
    arch = branchy_cnn(second)
    model = arch.build(SHAPE, CLASSES)
    randomise(model, rng)
    masked, callbacks, materialise = make_pruning(model, arch, 0.5, 0, 1, steps_per_epoch=4)
    finalise(callbacks)
    small, small_arch = materialise()
    assert small_arch == pruned_architecture(arch, SHAPE, CLASSES, 0.5)
    x = rng.uniform(0, 1, (16, *SHAPE)).astype(np.float32)
    expected = masked(x, training=False).numpy()
    got = small(x, training=False).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # the smaller network is really smaller
    g_small = small_arch.resource_graph(SHAPE, CLASSES)
    g_full = arch.resource_graph(SHAPE, CLASSES)
    assert graph_size_bytes(g_small) < graph_size_bytes(g_full)
    assert graph_macs(g_small) < graph_macs(g_full)
    assert small.count_params() < model.count_params()


def test_equal_widths_never_turn_a_concatenation_into_an_add():
    # 6 and 7 channels at 0.5 keep 3 and round(3.5) = 4; at 0.45: round(3.3)=3 and round(3.85)=4;
    # find a sparsity where both round to the same count and check the wiring is kept
    arch = branchy_cnn(second=7)
    for sparsity in np.linspace(0.05, 0.95, 37):
        small = pruned_architecture(arch, SHAPE, CLASSES, float(sparsity))
        kinds = {op.name: op.layer for op in small.plan(SHAPE, CLASSES)}
        assert kinds["b3_join"] == "concat"
        assert kinds["b1_join"] == "add"


def test_pruned_channels_emit_exactly_zero_even_with_bn_and_bias():
    from unas.tfenv import keras

    rng = np.random.default_rng(1)
    arch = branchy_cnn(5)
    model = arch.build(SHAPE, CLASSES)
    randomise(model, rng)
    masked, callbacks, _ = make_pruning(model, arch, 0.6, 0, 1, steps_per_epoch=2)
    finalise(callbacks)
    probe = keras.Model(masked.input, [masked.get_layer("b0_l1_conv_mask").output,
                                       masked.get_layer("d0_dense_mask").output])
    dw_out, dense_out = probe(rng.uniform(0, 1, (4, *SHAPE)).astype(np.float32), training=False)
    for name, out, size in (("b0_l1_conv_mask", dw_out, 8), ("d0_dense_mask", dense_out, 12)):
        mask = masked.get_layer(name)._parts[0][0].numpy()
        assert (mask == 0).sum() == size - keep_count(size, 0.6)
        per_channel = np.abs(out.numpy()).reshape(-1, size).sum(axis=0)
        assert (per_channel[mask == 0] == 0).all()      # pruned: exactly zero, BN shift included
    # without the mask the depthwise conv's BN shift would make those channels non-zero
    raw = keras.Model(masked.input, masked.get_layer("b0_l1_conv_bn").get_output_at(1))
    raw_channels = np.abs(raw(rng.uniform(0, 1, (4, *SHAPE)).astype(np.float32)).numpy())
    assert (raw_channels.reshape(-1, 8).sum(axis=0) > 0).all()


def test_pruned_weights_keep_receiving_gradients():
    from unas.tfenv import keras, tf

    rng = np.random.default_rng(2)
    arch = branchy_cnn(5)
    model = arch.build(SHAPE, CLASSES)
    masked, callbacks, _ = make_pruning(model, arch, 0.5, 0, 1, steps_per_epoch=2)
    finalise(callbacks)
    x = tf.constant(rng.uniform(0, 1, (8, *SHAPE)).astype(np.float32))
    y = tf.constant(rng.integers(0, CLASSES, 8))
    kernel = model.get_layer("d0_dense").kernel
    with tf.GradientTape() as tape:
        loss = keras.losses.sparse_categorical_crossentropy(y, masked(x, training=True),
                                                            from_logits=True)
    grad = tape.gradient(loss, kernel).numpy()
    mask = masked.get_layer("d0_dense_mask")._parts[0][0].numpy()
    pruned = np.flatnonzero(mask == 0)
    assert len(pruned) > 0
    assert np.abs(grad[:, pruned]).sum() > 0  # feedback: pruned units still learn


def test_training_reaches_the_target_and_matches_prediction():
    from unas.tfenv import keras

    rng = np.random.default_rng(3)
    arch = branchy_cnn(5)
    keras.utils.set_random_seed(3)
    model = arch.build(SHAPE, CLASSES)
    masked, callbacks, materialise = make_pruning(model, arch, 0.7, start_epoch=1, end_epoch=2,
                                                  steps_per_epoch=4)
    masked.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = rng.uniform(0, 1, (32, *SHAPE)).astype(np.float32)
    y = rng.integers(0, CLASSES, 32)
    history = masked.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=callbacks)
    assert np.isfinite(history.history["loss"]).all()
    small, small_arch = materialise()
    assert small_arch == pruned_architecture(arch, SHAPE, CLASSES, 0.7)
    np.testing.assert_allclose(small(x, training=False).numpy(),
                               masked(x, training=False).numpy(), rtol=1e-4, atol=1e-4)


def test_mlp_pruning_materialises():
    rng = np.random.default_rng(4)
    arch = MLPArchitecture(layers=(DenseLayer(20, True, True), DenseLayer(16, False, True)))
    model = arch.build(SHAPE, CLASSES)
    randomise(model, rng)
    masked, callbacks, materialise = make_pruning(model, arch, 0.5, 0, 1, steps_per_epoch=2)
    finalise(callbacks)
    small, small_arch = materialise()
    assert [layer.units for layer in small_arch.layers] == [10, 8]
    x = rng.uniform(0, 1, (8, *SHAPE)).astype(np.float32)
    np.testing.assert_allclose(small(x, training=False).numpy(),
                               masked(x, training=False).numpy(), rtol=1e-4, atol=1e-4)


def test_bad_arguments_are_rejected():
    arch = branchy_cnn(5)
    model = arch.build(SHAPE, CLASSES)
    with pytest.raises(ValueError, match="target_sparsity"):
        make_pruning(model, arch, 1.0, 0, 1, 2)
    with pytest.raises(ValueError, match="start_epoch"):
        make_pruning(model, arch, 0.5, 3, 1, 2)


def test_earlier_layers_get_exactly_the_gradient_of_the_pruned_network():
    """No gradient leaks backwards through pruned channels: the masked network's gradient with
    respect to its input equals the materialised (really smaller) network's."""
    from unas.tfenv import tf

    rng = np.random.default_rng(5)
    arch = branchy_cnn(5)
    model = arch.build(SHAPE, CLASSES)
    randomise(model, rng)
    masked, callbacks, materialise = make_pruning(model, arch, 0.5, 0, 1, steps_per_epoch=2)
    finalise(callbacks)
    small, _ = materialise()
    x = tf.constant(rng.uniform(0, 1, (4, *SHAPE)).astype(np.float32))
    grads = []
    for net in (masked, small):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(net(x, training=False)))
        grads.append(tape.gradient(loss, x).numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-4, atol=1e-5)
