"""Where a training run's memory goes: peak RSS (and on a GPU peak allocated memory) per phase of a step.

    meter = PhaseMeter()                       # samples this process's RSS every 2 ms on a thread
    meter.phase("load"); model = ...           # label what the process is doing now
    trainer = SFTTrainer(..., callbacks=[PhaseCallback(meter)])   # labels forward, loss, backward, optimizer, eval
    trainer.train(); meter.stop()
    meter.peaks                                 # {"load": bytes, "forward": bytes, ...}, the highest RSS in each

The callback labels the phases of a step with hooks on the model's backbone (its decoder stack): "forward" while
the backbone runs, "loss" from its output until the gradient of its output arrives (the LM head, the loss and the
head's backward), "backward" for the backbone's backward, "optimizer" around the optimizer step, "eval" for
forwards outside training mode, "reference" for DPO's and KTO's reference forward (no gradient), "save" from the
end of a step that saves until the checkpoint is written (and published), and "after step" for logging. Each
phase's wall time is kept too (`seconds`), so the same profile says where a step's time goes. The sampler is a
thread, so a peak shorter than its period can be missed; `ru_maxrss` (the kernel's own peak) bounds it.
"""

from __future__ import annotations

import resource
import threading
import time
from typing import Any

import torch
from transformers import TrainerCallback


def _rss_reader():
    """A function returning this process's resident set size in bytes (psutil when there, else /proc)."""
    try:
        import psutil

        process = psutil.Process()
        return lambda: process.memory_info().rss
    except ImportError:  # psutil comes with accelerate; /proc/self/statm is the fallback on Linux
        import os

        page = os.sysconf("SC_PAGE_SIZE")

        def read() -> int:
            with open("/proc/self/statm", encoding="ascii") as f:
                return int(f.read().split()[1]) * page

        return read


class PhaseMeter:
    """Peak RSS per labelled phase, sampled on a daemon thread; on CUDA also the peak allocated per phase."""

    def __init__(self, period_s: float = 0.002) -> None:
        import torch

        self.peaks: dict[str, int] = {}
        self.gpu_peaks: dict[str, int] = {}
        self.seconds: dict[str, float] = {}  # wall time spent in each phase: where a step's time goes
        # CPU time (all threads, user + system) and minor page faults per phase: what other work on a shared machine
        # moves far less than wall time, and what the allocator's choices cost (each fresh page is a fault).
        self.cpu_seconds: dict[str, float] = {}
        self.faults: dict[str, int] = {}
        self.current = "start"
        self._since = time.perf_counter()
        self._cpu_since = time.process_time()
        self._faults_since = _minor_faults()
        self._cuda = torch.cuda.is_available()
        self._read = _rss_reader()
        self._period = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self._note(self.current, self._read())
            time.sleep(self._period)

    def _note(self, phase: str, rss: int) -> None:
        if rss > self.peaks.get(phase, 0):
            self.peaks[phase] = rss

    def phase(self, name: str) -> None:
        """Start phase `name` (the previous one ends here)."""
        if name == self.current:
            return
        self._note(self.current, self._read())
        now, cpu, faults = time.perf_counter(), time.process_time(), _minor_faults()
        self.seconds[self.current] = self.seconds.get(self.current, 0.0) + now - self._since
        self.cpu_seconds[self.current] = self.cpu_seconds.get(self.current, 0.0) + cpu - self._cpu_since
        self.faults[self.current] = self.faults.get(self.current, 0) + faults - self._faults_since
        self._since, self._cpu_since, self._faults_since = now, cpu, faults
        if self._cuda:
            import torch

            peak = torch.cuda.max_memory_allocated()
            self.gpu_peaks[self.current] = max(self.gpu_peaks.get(self.current, 0), peak)
            torch.cuda.reset_peak_memory_stats()
        self.current = name

    def stop(self) -> None:
        """End sampling (the last phase is closed)."""
        self.phase("end")
        self._stop.set()
        self._thread.join()

    @staticmethod
    def max_rss() -> int:
        """The kernel's peak RSS of this process so far, in bytes (Linux reports kilobytes)."""
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _minor_faults() -> int:
    """This process's minor page faults so far (each a fresh page the kernel mapped and zeroed)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _backbone(model: Any) -> Any:
    """The decoder stack under a (peft-wrapped) causal LM: the module whose output the LM head reads."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(base, base.base_model_prefix, base)


class PhaseCallback(TrainerCallback):
    """Labels the phases of each training step on a PhaseMeter, and counts the tokens trained, the step time and
    the CPU time of the steps (which other work on the machine slows far less than the wall time)."""

    def __init__(self, meter: PhaseMeter) -> None:
        self.meter = meter
        self.tokens = 0
        self.step_seconds = 0.0
        self.step_cpu_seconds = 0.0  # the process's CPU time (all threads, user + system) inside steps
        self._began = 0.0
        self._cpu_began = 0.0
        self._hooked = False

    def _pre(self, module, args, kwargs):
        if not module.training:
            self.meter.phase("eval")
            return
        if not torch.is_grad_enabled():
            self.meter.phase("reference")  # DPO's and KTO's reference forward: its tokens count once, with the policy's
            return
        self.meter.phase("forward")
        mask, ids = kwargs.get("attention_mask"), kwargs.get("input_ids")
        if mask is not None and mask.dim() == 2:
            self.tokens += int(mask.sum())
        elif ids is not None:
            self.tokens += ids.numel()

    def _post(self, module, args, kwargs, output):
        if not module.training:
            return
        self.meter.phase("loss")  # the LM head (the reference's too) and the loss, until the backbone's gradient
        hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state
        if hidden.requires_grad:
            hidden.register_hook(lambda grad: self.meter.phase("backward"))

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if not self._hooked and model is not None:
            backbone = _backbone(model)
            backbone.register_forward_pre_hook(self._pre, with_kwargs=True)
            backbone.register_forward_hook(self._post, with_kwargs=True)
            self._hooked = True
        self.meter.phase("train start")

    def on_step_begin(self, args, state, control, **kwargs):
        self._began = time.perf_counter()
        self._cpu_began = time.process_time()

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.meter.phase("optimizer")

    def on_optimizer_step(self, args, state, control, **kwargs):
        self.meter.phase("after step")

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds += time.perf_counter() - self._began
        self.step_cpu_seconds += time.process_time() - self._cpu_began
        # The trainer logs, evaluates (the hooks label "eval") and saves after this callback; the flags say which.
        self.meter.phase("save" if control.should_save else "after step")

    def on_evaluate(self, args, state, control, **kwargs):
        self.meter.phase("save" if control.should_save else "after step")

    def on_save(self, args, state, control, **kwargs):
        self.meter.phase("after step")  # after the callbacks before this one (the run's, which publishes the adapter)
