"""What the face loop, the follower, the rotation probe and the dataset builder use of a face detector:
the :class:`Detector` protocol.

:class:`pipeline.faces.detect.FaceDetector` (MTCNN) implements it, built by
:func:`pipeline.models.factory.load_detector`; anything else with these members (a test's stand-in) is a
detector too: the protocol is structural.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from pipeline.faces.boxes import FaceBox
from pipeline.faces.detect import DetectorConfig

if TYPE_CHECKING:
    from pipeline.faces.identity import FaceDescriber


@runtime_checkable
class Detector(Protocol):
    """Every face in batches of same-sized RGB frames, no selection (see
    :func:`pipeline.faces.select.select_faces`).

    ``config``: the detection settings used and the selection settings callers apply; ``describer``: the
    face embedding that tracks people by what they look like, or ``None`` (tracks by position alone).
    Read-only for callers."""

    @property
    def config(self) -> DetectorConfig: ...

    @property
    def describer(self) -> FaceDescriber | None: ...

    def detect(self, frames_rgb: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        """Every face per frame (uint8 (H, W, 3) RGB, all of one size), in full-resolution pixels, best first."""
        ...

    def detect_in_images(self, images_rgb: Sequence[np.ndarray]) -> list[list[FaceBox]]:
        """Every face per image as given (no shrinking), in the image's own pixels, best first."""
        ...

    def with_config(self, config: DetectorConfig) -> Detector:
        """The same networks under other settings (``self`` if unchanged)."""
        ...
