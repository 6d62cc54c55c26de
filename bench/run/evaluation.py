"""Evaluation: the model's logits on held-out splits (dev and the test splits), and their metrics.

``evaluator(model, loaders, device, task)`` is what the training loop calls at every evaluation
(``bench.run.loop.Fit``; there, by default, dev alone, the test splits once at the end) and what
``bench.tools.reload.predict`` calls on a reloaded run. When distributed, each rank evaluates its share
and the predictions are gathered before any metric is computed.

Starting a DataLoader draws a seed from torch's global generator. A split that an evaluation leaves out
(``splits``) is started all the same, so training's random stream (dropout, the next epoch's order) is
the same whichever splits each evaluation computes: a run trains the same weights with or without
``train.test_every_epoch``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np
import torch
from torch import nn

from bench.inputs.metrics import MetricTask, compute_metrics
from bench.run import distributed, loop

Outputs = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # split -> (logits, labels, idx)


def evaluator(
    model: nn.Module,
    loaders: dict,
    device: torch.device,
    task: MetricTask,
    splits: Collection[str] | None = None,
) -> Callable[[], tuple[dict[str, float], Outputs]]:
    """A function that evaluates ``splits`` of ``loaders`` (None: every one) and returns (metrics,
    {split: (logits, labels, idx)}), each split's rows in ``idx`` order; the other loaders are only
    started (see the module's docstring)."""

    @torch.inference_mode()
    def evaluate() -> tuple[dict[str, float], Outputs]:
        model.eval()
        outputs = {}
        for split, dl in loaders.items():
            if splits is not None and split not in splits:
                iter(dl)  # the seed it draws, as evaluating it would
                continue
            logits, labels, idx = [], [], []
            for batch in dl:
                idx.append(batch.pop("idx"))
                labels.append(batch.pop("labels"))
                batch = {k: v.to(device) for k, v in batch.items()}
                with loop.autocast(device):
                    logits.append(model(**batch).logits.float().cpu())
            arrays = (torch.cat(logits).numpy(), torch.cat(labels).numpy(), torch.cat(idx).numpy())
            logits_all, labels_all, idx_all = distributed.gather(arrays)  # every rank's share
            order = np.argsort(idx_all, kind="stable")
            outputs[split] = (logits_all[order], labels_all[order], idx_all[order])
        metrics = compute_metrics(task, {s: (lg, lb) for s, (lg, lb, _) in outputs.items()})
        return metrics, outputs

    return evaluate
