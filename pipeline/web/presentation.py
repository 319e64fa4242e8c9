"""What the pages and the API show besides a job's own fields: the facts every page states
(model, threshold, what ``p_fake`` means, the limits) and the links attached to a job."""

from __future__ import annotations

from flask import url_for

from pipeline.web.scoring import AGGREGATION_MEANINGS, IMAGE_FORMATS, P_FAKE_MEANING, threshold_text
from pipeline.web.state import scanner_state

BYTES_PER_MB = 1024 * 1024


def page_facts() -> dict:
    """The template context of every page (a ``context_processor``): ``model_name``,
    ``threshold`` (and ``threshold_text``: as many digits as it has, e.g. 0.477), ``uncertain_below``
    (the lower threshold of the UNCERTAIN band, ``None`` for one cut, and ``uncertain_below_text``),
    ``label_rule`` (the config's, one line), ``p_fake_meaning``, ``aggregation`` (and its meaning)
    and ``limits`` (upload size in MB and bytes, duration in s, frames, fps, image formats, minutes
    kept)."""
    state = scanner_state()
    config, web = state.config, state.web
    return {
        "model_name": state.scorer.name,
        "threshold": config.threshold,
        "threshold_text": threshold_text(config.threshold),
        "uncertain_below": config.uncertain_below,
        "uncertain_below_text": None if config.uncertain_below is None else threshold_text(config.uncertain_below),
        "label_rule": config.label_rule,
        "p_fake_meaning": P_FAKE_MEANING,
        "aggregation": config.aggregation,
        "aggregation_meaning": AGGREGATION_MEANINGS.get(config.aggregation, config.aggregation),
        "limits": {
            "max_upload_mb": web.max_upload_bytes / BYTES_PER_MB,
            "max_upload_bytes": web.max_upload_bytes,
            "max_duration_s": web.max_duration_s,
            "max_frames": config.max_frames,
            "fps": config.fps,
            "image_formats": IMAGE_FORMATS,
            "keep_minutes": web.keep_s / 60,
        },
    }


def job_json(snapshot: dict) -> dict:
    """A job snapshot (:meth:`pipeline.web.jobs.JobQueue.snapshot`) with ``links``: ``self``
    (the API URL) and ``page`` (the HTML page). Needs a request context."""
    return {
        **snapshot,
        "links": {
            "self": url_for("scanner.api_job", job_id=snapshot["id"]),
            "page": url_for("scanner.job_page", job_id=snapshot["id"]),
        },
    }
