"""Explaining a result: what a row's codes mean in words, and the pages that show results.

- :mod:`pipeline.report.notes`: the text of every note code a scan writes into a row
  (:mod:`pipeline.scan.notes`) and what the user should do about it;
- :mod:`pipeline.report.explain`: a verdict in plain words (why the label, the reasons to trust it
  less, each person's part, the model in one line), for the web page and JSON Lines;
- :mod:`pipeline.report.html`: the batch report, one self-contained HTML page of a scan's CSV or JSON Lines;
- :mod:`pipeline.report.evaluation`: ``evaluate``'s ``report.md``, on faces and on clips.

Every surface (the command line's outputs, JSON Lines, the HTML report, the web page) takes its
words from here, so they say the same thing. This stage sits after ``scan`` (it reads rows) and
before ``training``, ``web`` and ``cli`` (which show them).
"""
