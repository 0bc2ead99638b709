#!/usr/bin/env python3
"""first_byte.py START: reads stdin to its end and prints "FIRST TOTAL": the seconds from START
(a Unix time, as `date +%s.%N` prints it) to the first byte read and to the end of the input.

Used on `docker save IMAGE | first_byte.py` to tell the time the daemon stages an export before
sending anything (the graphdriver store writes the whole export to a temporary folder first) from
the time the stream itself takes.
"""
import sys
import time


def main() -> int:
    start = float(sys.argv[1])
    first = None
    stdin = sys.stdin.buffer
    while True:
        chunk = stdin.read(1 << 20)
        if not chunk:
            break
        if first is None:
            first = time.time() - start
    end = time.time() - start
    print(f"{end if first is None else first:.3f} {end:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
