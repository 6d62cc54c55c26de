"""A few optimizer steps on a model with a variant applied, for the reference tests."""

import torch


def train_a_few_steps(model, variant, batch, steps: int = 3, lr: float = 1e-2, seed: int = 0):
    """Make adapter weights non-zero with a few AdamW steps on random labels (for reference checks)."""
    torch.manual_seed(seed)
    labels = torch.randint(0, model.config.num_labels, (batch["input_ids"].shape[0],))
    opt = torch.optim.AdamW(variant.param_groups(model, lr, 0.0))
    model.train()
    for step in range(1, steps + 1):
        loss = model(**batch, labels=labels).loss
        extra = variant.extra_loss(model)
        if extra is not None:
            loss = loss + extra
        loss.backward()
        opt.step()
        variant.on_step_end(model, step, steps)
        opt.zero_grad()
    return model.eval()
