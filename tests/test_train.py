"""Training one candidate: optimiser and schedule, pruning hook, determinism, saved model."""
from __future__ import annotations

import json

import numpy as np
import pytest

from search_spaces import get_space
from unas.config import LearningRateStep, PruningConfig, TrainingConfig
from unas.data import DatasetSpec, load_dataset
from unas.evaluation import EvalTask
from unas.train.optim import learning_rate_values, make_optimizer
from unas.train.pruning_hook import pruning_for

TINY = DatasetSpec(name="digits", validation_split=0.2, max_train=256, augment=False)


@pytest.fixture(scope="module")
def data():
    from unas.train.trainer import DataPipeline

    splits = load_dataset(TINY, np.random.default_rng(0))
    return DataPipeline(splits, TINY, batch_size=64)


@pytest.fixture(scope="module")
def arch():
    space = get_space("cnn", max_blocks=1, max_layers=1, max_channels=8, min_dense_layers=0, max_dense_layers=0)
    return space.random_architecture(np.random.default_rng(4))


def test_step_schedule_and_decoupled_weight_decay():
    cfg = TrainingConfig(optimizer="sgdw", learning_rate=0.01, momentum=0.9, weight_decay=1e-4,
                         lr_steps=(LearningRateStep(2, 0.005), LearningRateStep(4, 0.001)), epochs=6)
    assert learning_rate_values(cfg) == ([2, 4], [0.01, 0.005, 0.001])
    opt = make_optimizer(cfg, steps_per_epoch=10)
    schedule = opt.learning_rate if callable(opt.learning_rate) else opt._learning_rate
    rates = [float(schedule(step)) for step in (0, 19, 20, 39, 40, 59)]
    assert rates == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.001, 0.001])
    assert opt.get_config()["weight_decay"] == pytest.approx(1e-4)
    assert opt.get_config()["momentum"] == pytest.approx(0.9)
    adamw = make_optimizer(TrainingConfig(optimizer="adamw", learning_rate=5e-4, weight_decay=1e-5), 10)
    assert type(adamw).__name__ == "AdamW" and adamw.get_config()["weight_decay"] == pytest.approx(1e-5)


def test_pruning_hook_is_the_identity_when_off(arch):
    model = object()
    trained, callbacks, materialise = pruning_for(model, arch, PruningConfig(enabled=False), 0.5, 10)
    assert trained is model and callbacks == [] and materialise() == (model, arch)


def test_training_with_pruning_materialises_the_predicted_smaller_network(data):
    from search_spaces.cnn_arch import CNNArchitecture, ConvBlock, ConvLayer
    from unas.train.pruning import pruned_architecture
    from unas.train.trainer import train_candidate

    arch = CNNArchitecture(blocks=(ConvBlock(False, (ConvLayer("full", 3, 8, 1, False, True, True),)),),
                           pool_type="max", pool_size=2, dense_units=(12,))

    cfg = TrainingConfig(learning_rate=0.05, batch_size=64, epochs=2)
    pruning = PruningConfig(enabled=True, target_sparsity=(0.1, 0.9), start_epoch=0, end_epoch=1)
    outcome = train_candidate(arch, data, cfg, pruning, 0.5, seed=11)
    shape, classes = tuple(data.splits.input_shape), int(data.splits.num_classes)
    assert outcome.arch == pruned_architecture(arch, shape, classes, 0.5)
    assert outcome.arch != arch
    assert outcome.model.count_params() < arch.build(shape, classes).count_params()
    assert 0.0 <= outcome.val_error <= 1.0 and 0.0 <= outcome.test_error <= 1.0


def test_training_is_deterministic_and_reports_both_errors(data, arch):
    from unas.train.trainer import train_candidate

    cfg = TrainingConfig(learning_rate=0.05, batch_size=64, epochs=2)
    first = train_candidate(arch, data, cfg, PruningConfig(), None, seed=11)
    again = train_candidate(arch, data, cfg, PruningConfig(), None, seed=11)
    assert 0.0 <= first.val_error <= 1.0 and 0.0 <= first.test_error <= 1.0
    assert len(first.curve["loss"]) == 2 and len(first.curve["val_accuracy"]) == 2
    assert first.val_error == pytest.approx(1.0 - first.curve["val_accuracy"][-1])
    assert first.curve == again.curve and first.val_error == again.val_error
    assert first.arch == arch


def test_nan_loss_is_an_error(data, arch):
    import dataclasses

    from unas.train.trainer import DataPipeline, train_candidate

    poisoned = data.splits.x_train.copy()
    poisoned[::3] = np.nan
    bad = DataPipeline(dataclasses.replace(data.splits, x_train=poisoned), TINY, batch_size=64)
    with pytest.raises(FloatingPointError, match="diverged"):
        train_candidate(arch, bad, TrainingConfig(batch_size=64, epochs=2), PruningConfig(), None, 1)


def test_worker_evaluator_saves_a_loadable_model(tmp_path, arch):
    from unas.tfenv import keras
    from unas.train.worker import TrainingEvaluator

    evaluator = TrainingEvaluator(TINY, 0, TrainingConfig(batch_size=64, epochs=1),
                                  PruningConfig(), str(tmp_path))
    evaluate = evaluator()
    result = evaluate(EvalTask(id=7, arch=json.loads(arch.to_json()), seed=3))
    assert result.status == "ok" and result.final_arch is None
    assert result.model_path == "models/7.keras"
    model = keras.models.load_model(tmp_path / result.model_path)
    assert model.count_params() == arch.build((8, 8, 1), 10).count_params()
    assert [p.name for p in (tmp_path / "models").iterdir()] == ["7.keras"]


def test_batch_norm_momentum_setting_reaches_the_model(data):
    from unas.tfenv import keras
    from unas.train.trainer import train_candidate

    space = get_space("cnn", max_blocks=1, max_layers=1, max_channels=4, min_dense_layers=0,
                      max_dense_layers=0)
    rng = np.random.default_rng(0)
    arch = next(a for a in (space.random_architecture(rng) for _ in range(200))
                if any(layer.batch_norm for layer in a.layers))
    cfg = TrainingConfig(batch_size=64, epochs=1, batch_norm_momentum=0.5)
    model = train_candidate(arch, data, cfg, PruningConfig(), None, seed=2).model
    momenta = [layer.momentum for layer in model.layers
               if isinstance(layer, keras.layers.BatchNormalization)]
    assert momenta and all(m == 0.5 for m in momenta)
