#!/usr/bin/env python3
"""Score a directory of video clips: one CSV row per clip with p_fake (1 = fake).

    python score_videos.py clips/ -o scores.csv

See ``python score_videos.py --help`` and README.md.
"""

import sys

from pipeline.cli.score import main

if __name__ == "__main__":
    sys.exit(main())
