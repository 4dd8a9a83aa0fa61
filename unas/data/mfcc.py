"""MFCC features of 1 s, 16 kHz clips as in the TensorFlow speech-commands example that μNAS uses:
30 ms window, 10 ms stride, magnitude-squared spectrogram, 40 mel channels between 20 Hz and 4 kHz."""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
WINDOW_SAMPLES = 480   # 30 ms
STRIDE_SAMPLES = 160   # 10 ms
LOWER_HZ, UPPER_HZ = 20.0, 4000.0
FILTERBANK_CHANNELS = 40


def frames_per_clip(samples: int = CLIP_SAMPLES) -> int:
    """Spectrogram frames of one clip: 98 for 1 s."""
    return 1 + (samples - WINDOW_SAMPLES) // STRIDE_SAMPLES


def fit_clip(waveform: np.ndarray, samples: int = CLIP_SAMPLES) -> np.ndarray:
    """Cut or zero-pad a waveform at the end to exactly ``samples`` samples."""
    out = np.zeros(samples, dtype=np.float32)
    out[:min(samples, len(waveform))] = waveform[:samples]
    return out


def mfcc_features(clips: np.ndarray, coefficients: int) -> np.ndarray:
    """``(N, CLIP_SAMPLES)`` waveforms in [-1, 1] → ``(N, frames, coefficients, 1)`` float32 MFCCs
    (TensorFlow's AudioSpectrogram + Mfcc kernels, imported lazily)."""
    from unas.tfenv import tf

    if len(clips) == 0:
        return np.zeros((0, frames_per_clip(), coefficients, 1), dtype=np.float32)
    audio = tf.constant(np.clip(clips, -1.0, 1.0).T, dtype=tf.float32)  # [samples, channels = clips]
    spectrogram = tf.raw_ops.AudioSpectrogram(input=audio, window_size=WINDOW_SAMPLES, stride=STRIDE_SAMPLES,
                                              magnitude_squared=True)
    mfcc = tf.raw_ops.Mfcc(spectrogram=spectrogram, sample_rate=SAMPLE_RATE, upper_frequency_limit=UPPER_HZ,
                           lower_frequency_limit=LOWER_HZ, filterbank_channel_count=FILTERBANK_CHANNELS,
                           dct_coefficient_count=coefficients)
    return mfcc.numpy().astype(np.float32)[..., np.newaxis]
