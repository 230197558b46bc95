"""Run a function over many items in worker processes, with a progress bar."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
R = TypeVar("R")


def parallel_map(
    fn: Callable[[T], R],
    items: Iterable[T],
    threads: int,
    desc: str,
    chunksize: int = 16,
) -> Iterator[R]:
    """Yield fn(item) in input order, using `threads` processes (in-process when 1).

    The progress bar goes to stderr, which a Snakemake step script redirects to
    its log file.
    """
    items = list(items)
    bar = tqdm(total=len(items), desc=desc, file=sys.stderr, mininterval=2.0, unit="img")
    try:
        if threads <= 1 or len(items) < 2:
            for item in items:
                yield fn(item)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=threads) as pool:
            for result in pool.map(fn, items, chunksize=max(1, min(chunksize, len(items) // (4 * threads) or 1))):
                yield result
                bar.update()
    finally:
        bar.close()
        logging.getLogger(__name__).info("%s: %d items", desc, bar.n)
