"""The device a run trains on: auto picks what the machine has; a named one is checked."""

import pytest
import torch

from bench.run.device import pick_device


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    mps = torch.backends.mps.is_available()
    expected = "cuda" if torch.cuda.is_available() else "mps" if mps else "cpu"
    assert pick_device("auto").type == expected
    with pytest.raises(ValueError, match="unknown device 'gpu'; choose auto, cpu, cuda, cuda:N or mps"):
        pick_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_on_a_machine_without_it_says_so():
    with pytest.raises(ValueError, match="device 'cuda' asks for CUDA, but this machine has none; use auto"):
        pick_device("cuda")
