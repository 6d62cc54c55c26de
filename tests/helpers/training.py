"""A few optimizer steps of the project's own train_step on a model with a variant applied."""

import torch

from bench.run.loop import train_step


def train_a_few_steps(model, variant, batch, steps: int = 3, lr: float = 1e-2, seed: int = 0):
    """Make adapter weights non-zero with a few AdamW steps on random labels (for reference checks)."""
    torch.manual_seed(seed)
    labels = torch.randint(0, model.config.num_labels, (batch["input_ids"].shape[0],))
    optimizer = torch.optim.AdamW(variant.param_groups(model, lr, 0.0))
    model.train()
    for step in range(1, steps + 1):
        train_step(model, variant, optimizer, [{**batch, "labels": labels}], step, steps, torch.device("cpu"))
    return model.eval()
