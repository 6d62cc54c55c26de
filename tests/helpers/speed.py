"""What the speed benchmark's tests share."""

MERGE_ATOL = 1e-6  # the tiny model's fp32 logits are about 1e-2; a merge moves them by about 1e-9
