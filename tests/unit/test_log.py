"""The peft-bench logger: notices on stderr when nothing configured logging, Hydra's handlers otherwise."""

from __future__ import annotations

import logging

from bench.log import log


def test_unconfigured_a_notice_is_one_stderr_line(monkeypatch, capsys):
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    log.warning("rebuilt the results index %s", "x/.index.jsonl")
    log.info("a run completed")
    assert (
        capsys.readouterr().err
        == "peft-bench: rebuilt the results index x/.index.jsonl\npeft-bench: a run completed\n"
    )


def test_with_a_root_handler_the_notice_goes_there_only(monkeypatch, capsys):
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    monkeypatch.setattr(logging.getLogger(), "handlers", [handler])
    log.warning("once")
    assert [r.getMessage() for r in records] == ["once"] and capsys.readouterr().err == ""
