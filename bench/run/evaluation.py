"""Evaluation: the model's logits on every held-out split (dev and the test splits), and their metrics.

``evaluator(model, loaders, device, task)`` is what the training loop calls at every evaluation
(``bench.run.loop.Fit``) and what ``bench.tools.reload.predict`` calls on a reloaded run. When distributed,
each rank evaluates its share and the predictions are gathered before any metric is computed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from bench.inputs.metrics import MetricTask, compute_metrics
from bench.run import distributed, loop

Outputs = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # split -> (logits, labels, idx)


def evaluator(
    model: nn.Module, loaders: dict, device: torch.device, task: MetricTask
) -> Callable[[], tuple[dict[str, float], Outputs]]:
    """A function that evaluates every eval split and returns (metrics, {split: (logits, labels, idx)}),
    each split's rows in ``idx`` order."""

    @torch.inference_mode()
    def evaluate() -> tuple[dict[str, float], Outputs]:
        model.eval()
        outputs = {}
        for split, dl in loaders.items():
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
