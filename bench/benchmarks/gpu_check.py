"""The GPU check: the CUDA paths (bf16 autocast, fused AdamW on CUDA, ``train.compile=auto``, the deferred
loss reads, QLoRA's bitsandbytes backend) run, and agree with the CPU, in one command of a few minutes.

    python -m bench gpu_check --carry .gpu-carry --out results/gpu_check.json   # on the GPU machine
    python -m bench gpu_check --prepare .gpu-carry                              # here, after the download

Stages, in order, each a subprocess with a time limit, all within ``--budget-s`` seconds:

    tiny_cpu        a short real run of the tiny model on rt_polarity (TINY) on the CPU: the reference
    tiny_eager      the same run on the device, eager (train.compile=off), against tiny_cpu
    tiny_compiled   the same run on the device, train.compile=auto (compiled on CUDA), against tiny_cpu
    qlora_bnb       the run with QLoRA on the device, backend bnb against backend ours (needs bitsandbytes)
    nf4             our NF4 bytes against bitsandbytes' on the device (bench.benchmarks.nf4_check)
    speed           ``bench speed`` on the roberta_base shape, eager: every registered variant, inference too
    speed_compiled  ``bench speed`` on roberta_base, compiled (--compile auto), the variants of the device's
                    speed targets (bench.benchmarks.speed_targets), with the time that is left

On CUDA, training and ``bench speed`` run under bf16 autocast. Runs are compared by
``bench.benchmarks.run_agreement`` (metrics, train losses, logits, within its TOLERANCE). A stage's status
is passed, failed, timed out or skipped (with the reason); the speed stages pass when they ran and report
their targets met and missed. Without the device (no CUDA) every stage is skipped and the verdict says
"no CUDA". One JSON file holds it all: the environment, each stage, the verdict.

``--carry DIR`` (what ``make gpu-carry`` fills; docs/speed.md) holds wheels of what the GPU machine lacks,
installed first with ``pip install --no-index --no-deps --target`` into a temporary folder that every stage
has on its PYTHONPATH, and ``DIR/cache``: the peft-bench cache with the task's corpus (PEFT_BENCH_CACHE),
as that machine reaches no registry. ``--prepare DIR`` fills ``DIR/cache`` here and checks that the
repository plus DIR fit in what a run carries (CARRY_LIMIT).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.plural import plural

ROOT = Path(__file__).resolve().parents[2]  # the repository: bench/benchmarks/gpu_check.py
BUDGET_S = 420.0  # the stages' seconds in all: with the install and the imports, under 8 minutes
MIN_STAGE_S = 15.0  # a stage that would get less is skipped
TAIL = 3000  # characters of a failed command's output kept in the JSON
TASK = "rt_polarity"  # an offline task: its corpus is carried in the cache
TINY = [
    "model=tiny", f"task={TASK}", "task.max_train_samples=512", "task.max_eval_samples=256", "train.epochs=2",
    "model.dropout=0", "train.lr=0.002", "seed=0",
]  # fmt: skip  # 32 steps: the deferred loss reads (every 10 steps on CUDA) and a tail
LORA = [*TINY, "variant=lora"]
QLORA = [*TINY, "variant=qlora", "variant.r=8", "variant.dropout=0", "train.compile=off"]
PACKAGES = (
    "torch", "transformers", "peft", "datasets", "hydra-core", "omegaconf", "bitsandbytes", "pyarrow",
    "huggingface-hub", "fsspec", "numpy", "pandas", "scipy", "scikit-learn", "scikit-posthocs",
)  # fmt: skip
PASSED, FAILED, TIMED_OUT, SKIPPED = "passed", "failed", "timed out", "skipped"
NO_CUDA = "no CUDA"


@dataclass
class Check:
    """Where the stages run: the device, a work folder, the subprocesses' environment, the deadline, and
    the runs made so far (stage name -> run folder)."""

    device: str
    work: Path
    env: dict[str, str]
    deadline: float  # time.monotonic()
    runs: dict[str, Path] = field(default_factory=dict)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def command(self, name: str, args: list[str], cap: float, env: dict[str, str] | None = None) -> dict:
        """``python args`` with at most ``cap`` seconds (and what is left); its status and, unless it
        passed, the tail of its output (all of it in ``work/<name>.log``)."""
        timeout = max(1.0, min(cap, self.left()))
        log = self.work / f"{name}.log"
        with log.open("w") as out:
            try:
                proc = subprocess.run(
                    [sys.executable, *args], cwd=ROOT, env=env or self.env, stdout=out,
                    stderr=subprocess.STDOUT, timeout=timeout,
                )  # fmt: skip
                status = PASSED if proc.returncode == 0 else FAILED
                reason = "" if status == PASSED else f"exited with {proc.returncode}"
            except subprocess.TimeoutExpired:
                status, reason = TIMED_OUT, f"stopped after {timeout:.0f} s"
        result = {"status": status, "command": " ".join(["python", *args])}
        if status != PASSED:
            result |= {"reason": reason, "output_tail": log.read_text(errors="replace")[-TAIL:]}
        return result

    def train(self, name: str, overrides: list[str], cap: float) -> dict:
        """``python -m bench train overrides`` into ``work/<name>``; its run folder joins ``runs``."""
        results = self.work / name
        result = self.command(
            name, ["-m", "bench", "train", *overrides], cap, self.env | {"PEFT_BENCH_RESULTS": str(results)}
        )
        folders = sorted(p.parent for p in results.glob("**/metrics.json"))
        if folders:
            self.runs[name] = folders[0]
        return result


# -- stages ----------------------------------------------------------------------------------------
def compared(check: Check, result: dict, reference: str, other: str) -> dict:
    """``result`` of the command that made run ``other``, with how it agrees with run ``reference``."""
    from bench.benchmarks.run_agreement import agreement
    from bench.results.run_folder import RunFolder

    if result["status"] != PASSED:
        return result
    if reference not in check.runs or other not in check.runs:
        missing = [n for n in (reference, other) if n not in check.runs]
        return result | {"status": FAILED, "reason": f"no run of {', '.join(missing)} to compare"}
    found = agreement(RunFolder(check.runs[reference]), RunFolder(check.runs[other]))
    reason = {} if found["passed"] else {"reason": f"outside the tolerance: {found.get('outside_tolerance')}"}
    return result | {"status": PASSED if found["passed"] else FAILED, "agreement": found, **reason}


def tiny_cpu(check: Check) -> dict:
    return check.train("tiny_cpu", [*LORA, "device=cpu"], cap=150)


def tiny_eager(check: Check) -> dict:
    result = check.train("tiny_eager", [*LORA, f"device={check.device}", "train.compile=off"], cap=150)
    return compared(check, result, "tiny_cpu", "tiny_eager")


def tiny_compiled(check: Check) -> dict:
    result = check.train("tiny_compiled", [*LORA, f"device={check.device}", "train.compile=auto"], cap=240)
    return compared(check, result, "tiny_cpu", "tiny_compiled")


def qlora_bnb(check: Check) -> dict:
    from bench.benchmarks.nf4_check import unavailable

    why = unavailable(check.device) or ("" if check.device.startswith("cuda") else "backend bnb is CUDA only")
    if why:
        return {"status": SKIPPED, "reason": why}
    on_device = [*QLORA, f"device={check.device}"]
    ours = check.train("qlora_ours", [*on_device, "variant.backend=ours"], cap=120)
    if ours["status"] != PASSED:
        return ours
    bnb = check.train("qlora_bnb", [*on_device, "variant.backend=bnb"], cap=120)
    return compared(check, bnb, "qlora_ours", "qlora_bnb")


def nf4(check: Check) -> dict:
    out = check.work / "nf4.json"
    args = ["-m", "bench.benchmarks.nf4_check", "--device", check.device, "--json", str(out)]
    result = check.command("nf4", args, cap=120)
    if result["status"] != PASSED:
        return result
    found = json.loads(out.read_text())
    if found["passed"] is None:
        return {"status": SKIPPED, "reason": found["skipped"]}
    status = {"status": PASSED if found["passed"] else FAILED}
    return result | status | ({} if found["passed"] else {"reason": "differs from bitsandbytes"}) | found


def target_variants(device_type: str) -> list[str]:
    """The variants that the speed targets of ``device_type`` name (bench.benchmarks.speed_targets)."""
    from bench.benchmarks.speed_targets import TARGETS, VS_PEFT

    names = [n.removesuffix(f" {VS_PEFT}") for n, by in TARGETS.items() if device_type in by]
    return list(dict.fromkeys(v for n in names if n != VS_PEFT for v in n.split("/")))


def speed_stage(check: Check, name: str, options: list[str], cap: float) -> dict:
    """``bench speed`` on roberta_base with ``options``; its rows and ratios, and the targets by verdict."""
    out = check.work / f"{name}.json"
    args = ["-m", "bench", "speed", "--shape", "roberta_base", "--device", check.device, *options]
    result = check.command(name, [*args, "--out", str(check.work / f"{name}.csv"), "--json", str(out)], cap)
    if result["status"] != PASSED:
        return result
    found = json.loads(out.read_text())
    verdicts: dict[str, list[str]] = {}
    for ratio in found["ratios"]:
        verdicts.setdefault(ratio["verdict"], []).append(ratio["ratio"])
    return result | {"targets": verdicts, **found}


def speed(check: Check) -> dict:
    return speed_stage(check, "speed", ["--compile", "off"], cap=180)


def speed_compiled(check: Check) -> dict:
    device_type = check.device.split(":")[0]
    options = ["--compile", "auto", "--no-inference", "--steps", "10", "--warmup", "3"]
    variants = ",".join(target_variants(device_type))
    return speed_stage(check, "speed_compiled", [*options, "--variants", variants], cap=check.left())


STAGES: dict[str, Callable[[Check], dict]] = {
    "tiny_cpu": tiny_cpu,
    "tiny_eager": tiny_eager,
    "tiny_compiled": tiny_compiled,
    "qlora_bnb": qlora_bnb,
    "nf4": nf4,
    "speed": speed,
    "speed_compiled": speed_compiled,
}


# -- the check -------------------------------------------------------------------------------------
def missing_device(device: str) -> str:
    """Why ``device`` cannot be checked here ("" when it can)."""
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        return f"{NO_CUDA} (torch.cuda.is_available() is False)"
    return ""


def install(carry: Path, site: Path) -> dict:
    """The wheels in ``carry`` installed into ``site`` without an index; what was installed."""
    wheels = sorted(str(p) for p in carry.glob("*.whl"))
    if not wheels:
        return {"wheels": [], "status": PASSED}
    pip = ["-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir"]
    proc = subprocess.run(
        [sys.executable, *pip, "--target", str(site), *wheels], capture_output=True, text=True
    )
    names = [Path(w).name for w in wheels]
    if proc.returncode != 0:
        return {"wheels": names, "status": FAILED, "output_tail": (proc.stdout + proc.stderr)[-TAIL:]}
    return {"wheels": names, "status": PASSED}


def stage_env(site: Path | None, carry: Path | None) -> dict[str, str]:
    """The stages' environment: ``site`` and the repository on PYTHONPATH, the carried cache, offline."""
    paths = [str(p) for p in (site, ROOT) if p is not None]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    if carry is not None and (carry / "cache").is_dir():
        env["PEFT_BENCH_CACHE"] = str((carry / "cache").resolve())
    return env


def environment(device: str) -> dict[str, Any]:
    """The machine, torch's view of the device, and the versions of the packages the stages use."""
    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "device": device,
        "cuda_available": cuda,
        "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name() if cuda else None,
        "bf16_supported": torch.cuda.is_bf16_supported() if cuda else None,
        "versions": versions,
    }


def verdict(stages: dict[str, dict], missing: str) -> str:
    """Without the device, "no CUDA (...): nothing checked"; else passed, or the stages that failed and
    that timed out, then the stages skipped."""
    if missing:
        return f"{missing}: nothing checked"
    by: dict[str, list[str]] = {}
    for name, stage in stages.items():
        by.setdefault(stage["status"], []).append(name)
    said = [f"{status}: {', '.join(by[status])}" for status in (FAILED, TIMED_OUT) if status in by]
    said = said or [f"{PASSED} ({plural(len(stages) - len(by.get(SKIPPED, [])), 'stage')})"]
    return "; ".join(said + ([f"{SKIPPED}: {', '.join(by[SKIPPED])}"] if SKIPPED in by else []))


def run_stages(check: Check, names: list[str]) -> dict[str, dict]:
    """Each stage in turn, timed; one that raises fails with its error, one left too little time skips."""
    stages = {}
    for name in names:
        if check.left() < MIN_STAGE_S:
            stages[name] = {
                "status": SKIPPED,
                "reason": f"out of time ({check.left():.0f} s of the budget left)",
            }
            continue
        start = time.monotonic()
        print(f"gpu_check: {name} ...", flush=True)
        try:
            stages[name] = STAGES[name](check)
        except Exception as e:
            stages[name] = {"status": FAILED, "reason": f"{type(e).__name__}: {e}"}
        stages[name]["seconds"] = round(time.monotonic() - start, 1)
        print(f"gpu_check: {name} {stages[name]['status']} in {stages[name]['seconds']} s", flush=True)
    return stages


def run_check(device: str, names: list[str], budget_s: float, carry: Path | None, work: Path) -> dict:
    """The whole check: install what ``carry`` holds, then the stages ``names``; the JSON document."""
    start = time.monotonic()
    missing = missing_device(device)
    site, installed = None, None
    if carry is not None and not missing:
        site = work / "site"
        installed = install(carry, site)
        sys.path.insert(0, str(site))  # the comparisons read the runs' files with the carried packages
    doc: dict[str, Any] = {"environment": environment(device), "carried": installed, "budget_s": budget_s}
    if missing:
        stages = {name: {"status": SKIPPED, "reason": missing} for name in names}
    else:
        check = Check(device, work, stage_env(site, carry), deadline=start + budget_s)
        stages = run_stages(check, names)
    return doc | {
        "stages": stages,
        "verdict": verdict(stages, missing),
        "seconds": round(time.monotonic() - start, 1),
    }


def write(doc: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")


def prepare(carry: Path) -> int:
    """Fill ``carry/cache`` with the check's corpus and say whether the repository plus ``carry`` fit."""
    from bench.benchmarks.carry import CARRY_LIMIT, carry_bytes, copy_task_data  # omegaconf: here only

    copy_task_data(TASK, carry / "cache")
    size = carry_bytes(ROOT, carry)
    fits = size["total"] <= CARRY_LIMIT
    mib = {k: f"{v / 2**20:.1f} MiB" for k, v in size.items()}
    print(
        f"carried: repository {mib['repository']} + {carry} {mib['carried']} = {mib['total']} "
        f"of {CARRY_LIMIT / 2**20:.0f} MiB: {'fits' if fits else 'too big'}"
    )
    return 0 if fits else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="peft-bench gpu_check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/gpu_check.json", help="the JSON file to write")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="the device to check")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--budget-s", type=float, default=BUDGET_S, help="seconds for all the stages")
    parser.add_argument("--carry", help="the folder of wheels and cache to use (make gpu-carry fills it)")
    parser.add_argument(
        "--prepare", metavar="DIR", help="fill DIR's cache and check the carried size; no check"
    )
    args = parser.parse_args(argv)
    if args.prepare:
        return prepare(Path(args.prepare))
    names = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in names if s not in STAGES]
    if unknown or not names:
        parser.error(f"unknown stage(s) {unknown or names}; choose from {', '.join(STAGES)}")
    carry = Path(args.carry) if args.carry else None
    if carry is not None and not carry.is_dir():
        parser.error(f"--carry {carry} is not a folder (make gpu-carry fills it)")
    with tempfile.TemporaryDirectory(prefix="peft-bench-gpu-check-") as work:
        doc = run_check(args.device, names, args.budget_s, carry, Path(work))
    write(doc, Path(args.out))
    print(f"gpu_check: {doc['verdict']}; wrote {args.out}")
    return 0 if doc["verdict"].startswith((PASSED, NO_CUDA)) else 1


if __name__ == "__main__":
    sys.exit(main())
