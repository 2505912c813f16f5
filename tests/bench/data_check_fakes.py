"""Stand-ins for the data check's child process: one that never ends and one that eats memory."""

from __future__ import annotations

import sys
import time

if __name__ == "__main__":
    if sys.argv[1:] and '"hog"' in sys.argv[1]:
        held = []
        while True:
            held.append(bytearray(50 * 2**20))  # touched pages: resident memory
            time.sleep(0.05)
    time.sleep(3600)
