"""Deepfake-video scanner: ffmpeg decoding, MTCNN faces, Meso-4 scores, one ``p_fake`` per clip.

Every score this package emits is ``p_fake``: the probability that a face or a clip is
manipulated, 1 = fake, 0 = real. Importing the package is cheap: TensorFlow, MTCNN and
the model are only loaded by the functions that need them.
"""

__version__ = "0.1.0"
