"""The web application: upload a clip or an image, see the verdict, ``p_fake`` over time and the faces.

``pipeline.web.app.create_app(detector, scorer, config, web)`` builds the Flask app around models
loaded once by the caller; ``python -m pipeline serve`` (:mod:`pipeline.cli.serve`) runs it on
waitress. Nothing heavy is imported here.
"""
