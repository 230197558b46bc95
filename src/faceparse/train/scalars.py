"""mmengine's logged scalars (``{work_dir}/{timestamp}/vis_data/scalars.json``), without torch."""

from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def read_scalars(work_dir: str | Path, metric: str = "mIoU") -> tuple[list[dict], list[dict]]:
    """The logged rows, split into training rows (with ``loss``/``lr``) and validation rows
    (with ``metric`` or ``val/{metric}``), each sorted by ``step``.

    Each (re)start of a training writes a new timestamped folder; for each step the
    row of the latest run wins. Lines cut short by a killed run are skipped.
    """
    train: dict[int, dict] = {}
    val: dict[int, dict] = {}
    for path in sorted(Path(work_dir).glob("*/vis_data/scalars.json")):
        for line in path.read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                log.warning("%s: skipping an unreadable line", path)
                continue
            step = row.get("step", row.get("iter"))
            if step is None:
                continue
            row["step"] = int(step)
            if metric in row or f"val/{metric}" in row:
                val[row["step"]] = row
            elif "loss" in row or "lr" in row:
                train[row["step"]] = row
    return [train[k] for k in sorted(train)], [val[k] for k in sorted(val)]
