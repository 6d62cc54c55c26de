"""Reads an offline W&B run file (``run-<id>.wandb``) back from disk, for tests.

The file is a 7-byte header (``:W&B``, magic 0xBEE1, version 0) followed by a LevelDB-style log:
32 KiB blocks of records, each with a 7-byte header (crc32, length u16, type: 1 full, 2 first,
3 middle, 4 last); each assembled record is a ``wandb_internal_pb2.Record`` protobuf.
"""

import glob
import json
import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024


def read_records(path: str | Path) -> list:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        room = BLOCK - pos % BLOCK
        if room < 7:  # block trailer too small for a header: skip to the next block
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += room
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(pending)
            records.append(rec)
            pending = b""
    return records


def offline_run(run_dir: str | Path) -> dict:
    """The run's id, name, group, job type, tags, history rows, summary, config, metric definitions
    (``define_metric``: name or glob -> its step metric and summary policy) and artifacts (name -> type,
    metadata and file paths) read from its offline files; one offline run under ``run_dir``."""
    files = glob.glob(str(Path(run_dir) / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(files) == 1, f"expected one offline W&B run under {run_dir}, found {files}"
    return read_run(files[0])


def read_run(path: str | Path) -> dict:
    """``offline_run``'s view of one run file (``run-<id>.wandb``)."""
    out = {"history": [], "summary": {}, "config": {}, "name": None, "group": None, "tags": []}
    out.update(id=None, job_type=None, metrics={}, artifacts={})
    for rec in read_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.update(name=rec.run.display_name, group=rec.run.run_group, tags=list(rec.run.tags))
            out.update(id=rec.run.run_id, job_type=rec.run.job_type)
            out["config"].update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "metric":
            m = rec.metric
            out["metrics"][m.name or m.glob_name] = {
                "step_metric": m.step_metric,
                "hidden": m.options.hidden,
                "summary_none": m.summary.none,
            }
        elif kind == "artifact":
            a = rec.artifact
            out["artifacts"][a.name] = {
                "type": a.type,
                "metadata": json.loads(a.metadata or "{}"),
                "files": sorted(e.path for e in a.manifest.contents),
            }
        elif kind == "history":
            out["history"].append(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
            )
        elif kind == "summary":
            out["summary"].update(
                {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.summary.update}
            )
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in rec.config.update})
    return out
