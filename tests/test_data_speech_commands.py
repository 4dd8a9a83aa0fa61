"""Speech Commands from a tiny folder / archive of synthetic 16 kHz WAV files written here."""
import math
import tarfile
from pathlib import Path

import numpy as np
import pytest
from scipy.io import wavfile

from unas.data import DatasetSpec, load_dataset
from unas.data import speech_commands
from unas.data.mfcc import frames_per_clip
from unas.data.speech_source import which_set
from unas.errors import DataError

RATE = 16000
WORDS = {"yes": 300.0, "no": 700.0, "cat": 1500.0, "dog": 2500.0}  # yes/no wanted, cat/dog unknown
SPEAKERS = 14


def _tone(freq: float, seconds: float, seed: int) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    noise = np.random.default_rng(seed).normal(0, 0.01, len(t))
    return np.clip(0.5 * np.sin(2 * np.pi * freq * t) + noise, -1, 1)


def write_dataset(root: Path, lists: bool = True) -> Path:
    """<word>/<speaker>_nohash_0.wav (int16, some shorter than 1 s), background noise and the lists:
    speakers 0-1 are validation, 2-3 testing, the rest training."""
    validation, testing = [], []
    for w, (word, freq) in enumerate(WORDS.items()):
        (root / word).mkdir(parents=True)
        for speaker in range(SPEAKERS):
            name = f"{word}/spk{speaker:02d}ab_nohash_0.wav"
            seconds = 0.8 if speaker % 3 == 0 else 1.0
            wavfile.write(root / name, RATE, (_tone(freq, seconds, 10 * w + speaker) * 32767).astype(np.int16))
            (validation if speaker < 2 else testing if speaker < 4 else []).append(name)
    (root / "_background_noise_").mkdir()
    noise = np.random.default_rng(0).normal(0, 0.3, 3 * RATE).clip(-1, 1)
    wavfile.write(root / "_background_noise_" / "white_noise.wav", RATE, (noise * 32767).astype(np.int16))
    if lists:
        (root / "validation_list.txt").write_text("\n".join(validation) + "\n")
        (root / "testing_list.txt").write_text("\n".join(testing) + "\n")
    (root / "LICENSE").write_text("CC-BY-4.0\n")
    return root


def _spec(data_dir: Path, **kwargs) -> DatasetSpec:
    return DatasetSpec(name="speech_commands", data_dir=str(data_dir), speech_words=("yes", "no"),
                       mfcc_coefficients=10, **kwargs)


def test_features_labels_and_official_partition(tmp_path, rng):
    write_dataset(tmp_path / "sc")
    s = load_dataset(_spec(tmp_path / "sc"), rng)
    assert s.input_shape == (98, 10, 1) == (frames_per_clip(), 10, 1)
    assert s.num_classes == 4 and s.class_names == ("_silence_", "_unknown_", "yes", "no")
    assert s.x_train.dtype == np.float32 and s.y_train.dtype == np.int32 and np.isfinite(s.x_train).all()
    # training: 10 speakers x 2 keywords = 20 keyword clips, + ceil(10 %) unknown, + ceil(10 %) silence,
    # both 10 % of the keyword clips only (2 each, not 3)
    for labels, keyword_count in ((s.y_train, 20), (s.y_val, 4), (s.y_test, 4)):
        counts = np.bincount(labels, minlength=4)
        assert counts[2] == counts[3] == keyword_count // 2
        assert counts[1] == counts[0] == math.ceil(keyword_count * 0.1)


def test_keywords_are_separable_by_their_features(tmp_path, rng):
    write_dataset(tmp_path)
    s = load_dataset(_spec(tmp_path), rng)
    yes, no = s.x_train[s.y_train == 2].mean(axis=0), s.x_train[s.y_train == 3].mean(axis=0)
    within = np.abs(s.x_train[s.y_train == 2] - yes).mean()
    assert np.abs(yes - no).mean() > within  # 300 Hz and 700 Hz tones give different MFCCs


def test_second_load_comes_from_the_atomic_cache(tmp_path, rng, monkeypatch):
    write_dataset(tmp_path / "sc")
    cache = tmp_path / "cache"
    first = load_dataset(_spec(tmp_path / "sc", cache_dir=str(cache)), rng)
    assert [p.suffix for p in cache.iterdir()] == [".npz"]  # no temporary files left behind

    def must_not_recompute(*args):
        raise AssertionError("features recomputed although cached")

    monkeypatch.setattr(speech_commands, "compute_features", must_not_recompute)
    second = load_dataset(_spec(tmp_path / "sc", cache_dir=str(cache)), rng)
    np.testing.assert_array_equal(first.x_test, second.x_test)
    np.testing.assert_array_equal(first.y_train, second.y_train)


def test_default_cache_lives_under_data_dir_and_depends_on_settings(tmp_path, rng):
    write_dataset(tmp_path)
    load_dataset(_spec(tmp_path), rng)
    load_dataset(DatasetSpec(name="speech_commands", data_dir=str(tmp_path), speech_words=("yes", "no"),
                             mfcc_coefficients=13), rng)
    assert len(list((tmp_path / ".unas_cache").glob("speech_commands_*.npz"))) == 2


def test_archive_matches_folder(tmp_path, rng):
    folder = write_dataset(tmp_path / "extracted")
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "speech_commands_v0.02.tar.gz", "w:gz") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname="./" + path.relative_to(folder).as_posix(), recursive=False)
    a = load_dataset(_spec(folder), np.random.default_rng(0))
    b = load_dataset(_spec(archive_dir), np.random.default_rng(0))
    np.testing.assert_allclose(a.x_val, b.x_val, rtol=1e-6)
    np.testing.assert_array_equal(a.y_test, b.y_test)


def test_hash_partition_without_lists(tmp_path, rng):
    write_dataset(tmp_path, lists=False)
    s = load_dataset(_spec(tmp_path), rng)
    paths = [f"{w}/spk{k:02d}ab_nohash_0.wav" for w in ("yes", "no") for k in range(SPEAKERS)]
    expected = {part: sum(which_set(p) == part for p in paths) for part in ("training", "validation", "testing")}
    assert np.count_nonzero(s.y_train >= 2) == expected["training"]
    assert np.count_nonzero(s.y_val >= 2) == expected["validation"]


def test_which_set_keeps_a_speaker_together():
    assert which_set("yes/abc123_nohash_0.wav") == which_set("no/abc123_nohash_4.wav")
    parts = [which_set(f"yes/{i:08x}_nohash_0.wav") for i in range(2000)]
    assert 0.05 < parts.count("validation") / 2000 < 0.15 and 0.05 < parts.count("testing") / 2000 < 0.15


def test_max_train_subsamples_with_the_generator(tmp_path):
    write_dataset(tmp_path)
    a = load_dataset(_spec(tmp_path, max_train=5), np.random.default_rng(1))
    b = load_dataset(_spec(tmp_path, max_train=5), np.random.default_rng(1))
    assert len(a.y_train) == 5
    np.testing.assert_array_equal(a.x_train, b.x_train)


def test_missing_word_error(tmp_path, rng):
    write_dataset(tmp_path)
    spec = DatasetSpec(name="speech_commands", data_dir=str(tmp_path), speech_words=("yes", "marvin"))
    with pytest.raises(DataError, match=r"no <word>/\*.wav for marvin in .*found: cat, dog, no, yes"):
        load_dataset(spec, rng)


def test_missing_dataset_error_names_the_archive_and_folder(tmp_path, rng):
    with pytest.raises(DataError) as info:
        load_dataset(_spec(tmp_path), rng)
    message = str(info.value)
    assert "speech_commands_v0.02.tar.gz" in message and str(tmp_path) in message and "\n" not in message


def test_wrong_sample_rate_is_a_one_line_error(tmp_path, rng):
    write_dataset(tmp_path)
    wavfile.write(tmp_path / "yes" / "spk05ab_nohash_0.wav", 8000, np.zeros(8000, dtype=np.int16))
    with pytest.raises(DataError, match=r"yes/spk05ab_nohash_0.wav: sample rate 8000 Hz, expected 16000 Hz"):
        load_dataset(_spec(tmp_path), rng)
