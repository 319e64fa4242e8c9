#!/usr/bin/env python3
"""Build a face dataset from labelled clips: faces cropped exactly as the scanner crops them.

    python extract_faces.py SOURCES -o DATASET [--fps F] [--max-per-video N] [--stratify] [--split 0.8,0.1,0.1]

See ``python extract_faces.py --help`` and README.md.
"""

import sys

from pipeline.cli.extract import main

if __name__ == "__main__":
    sys.exit(main())
