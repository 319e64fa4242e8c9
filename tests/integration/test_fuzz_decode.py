"""Fuzz the decode and probe front end with random and mutated bytes: it may refuse a file, but
never crash with anything else, never hang, and never hand out malformed frames."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import DecodeError
from pipeline.video.decode import DecodeTimeoutError, decode_size_wh, iter_frames, sampling_fps
from pipeline.video.probe import probe_video

TIME_BOUND_S = 20.0


@pytest.fixture(scope="module")
def seed_clip(tmp_path_factory) -> bytes:
    from tests.helpers import make_lavfi_clip

    path = make_lavfi_clip(tmp_path_factory.mktemp("fuzz") / "seed.mp4", size="96x64", duration_s=1.0)
    return path.read_bytes()


def _front_end(path) -> None:
    started = time.monotonic()
    try:
        info = probe_video(path, timeout_s=TIME_BOUND_S)
        for frame in iter_frames(
            path, info, sample_fps=sampling_fps(info, 5.0, 10), max_frames=10, timeout_s=TIME_BOUND_S
        ):
            width, height = decode_size_wh(info)
            assert frame.rgb.shape == (height, width, 3)
    except (DecodeError, DecodeTimeoutError, TimeoutError):
        pass
    assert time.monotonic() - started < 2 * TIME_BOUND_S + 5


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=4096))
def test_random_bytes(tmp_path, data):
    path = tmp_path / "fuzz.mp4"
    path.write_bytes(data)
    _front_end(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n_flips=st.integers(1, 200), cut=st.floats(0.05, 1.0))
def test_mutated_clip(tmp_path, seed_clip, seed, n_flips, cut):
    rng = np.random.default_rng(seed)
    data = bytearray(seed_clip[: max(1, int(len(seed_clip) * cut))])
    for pos in rng.integers(0, len(data), n_flips):
        data[pos] = int(rng.integers(0, 256))
    path = tmp_path / "fuzz.mp4"
    path.write_bytes(bytes(data))
    _front_end(path)
