"""Options of the ``kkt`` attack (``audit schema kkt``).

Defaults: the option set that recovered members on the bench's 100-image MNIST MLP in short runs, one lever at a
time (bench/kkt_levers.py, bench/results/kkt_levers.json; docs/kkt.md has the table).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from auditor import AttackConfig

MAX_RUNS = 20


class KktConfig(AttackConfig):
    candidates_per_class: int | None = Field(
        None, ge=1, le=500, description="Candidates per class (None: the smaller of 2x the members per class and 50).")
    steps: int = Field(50_000, ge=1, description="Optimisation step cap (all restarts together).")
    seconds: float = Field(120.0, gt=0, description="Optimisation time budget (all restarts and the auto probe together).")
    form: Literal["margin", "loss", "auto"] = Field(
        "margin", description="Stationarity form: multiclass margin (homogeneous nets, no weight decay), cross-entropy loss "
        "(weight decay), or auto: probe both and keep the lower normalised residual.")
    weight_decay: float | None = Field(
        None, gt=0, description="Loss form: the target's weight decay; the coefficients start at 1/(members x weight_decay).")
    auto_probe: float = Field(0.1, gt=0, lt=0.5, description="auto: share of the time budget each form is probed for.")
    lambda_per_class: bool = Field(
        True, description="Margin form: one coefficient per (candidate, wrong class) instead of one for the strongest wrong class.")
    lambda_min: float = Field(0.4, ge=0, description="Lower bound on each candidate's coefficient (penalty 5*relu(lambda_min - lambda)^2).")
    alpha: float = Field(20.0, gt=0, description="ReLU surrogate: forward ReLU, derivative sigmoid(alpha*z).")
    alpha_schedule: tuple[float, ...] | None = Field(
        None, min_length=1, description="Soft-to-sharp continuation: each run spends an equal share of its steps and time at each "
        "alpha in turn (e.g. [5, 20, 80, 320]), each stage with its own learning-rate schedule. None: alpha throughout. On a tiny "
        "net trained to exact stationarity this recovered every training point where a fixed alpha did not (docs/kkt.md).")
    relu_slope: Literal["sigmoid", "exact"] = Field(
        "sigmoid", description="ReLU derivative during reconstruction: sigmoid(alpha z) (the papers), or the exact step 1[z > 0] "
        "whose own derivative in z is alpha*sigmoid'(alpha z) (the weights' gradients are then exact at a training point).")
    layer_normalised: bool = Field(
        False, description="Divide each layer's residual by its squared weight norm (else the plain sum over layers).")
    optimizer: Literal["sgd", "adam"] = Field("sgd", description="Optimiser of the candidates x (lambda always uses SGD with momentum).")
    lr_x: float = Field(0.5, gt=0, description="Learning rate of the candidates (SGD with momentum 0.9, or Adam).")
    lr_lambda: float = Field(0.03, gt=0, description="Learning rate of the coefficients (SGD with momentum 0.9).")
    schedule: Literal["constant", "cosine"] = Field("cosine", description="Learning-rate schedule over the time budget.")
    final_lr: float = Field(0.02, gt=0, le=1, description="cosine: final learning rate as a share of the initial one.")
    init_scale: float = Field(0.002, gt=0, description="Candidates start at N(0, 1) * init_scale in the network's input space.")
    restarts: int | None = Field(
        None, ge=1, le=20, description="Independent runs (new seed); the candidates of all are kept. None: one "
        "per restart_seconds of the time budget (a run's yield of distinct members levels off after a few minutes, and "
        "runs from different seeds find partly different members).")
    restart_seconds: float = Field(150.0, gt=0, description="restarts=None: the time budget per run.")
    restart_steps: int = Field(
        5000, ge=1, description="restarts=None: the step cap per run. A run settles on its members within a few thousand steps "
        "(docs/kkt.md), so a fast device that reaches the cap early spends the time left on further runs (at most 20 in all).")
    float64: Literal["off", "final", "all"] = Field(
        "off", description="Float64 arithmetic: never, in the last final_phase share of each run, or throughout.")
    final_phase: float = Field(0.2, gt=0, lt=1, description="Share of each run spent in float64 when float64='final'.")
    min_share: float = Field(
        -1.0, description="A candidate counts as converged when it explains at least min_share/m of the weights "
        "(its share of <theta, sum> relative to the average candidate) and the model gives it its label; a negative value keeps every candidate.")
    output: Literal["exact", "stretch"] = Field(
        "stretch", description="Map back to pixels exactly (clamped to [0, 1]) or stretch each reconstruction's range to [0, 1].")
    max_output: int | None = Field(None, ge=1, description="Hand at most this many converged candidates to scoring (best first).")

    def runs(self, seconds: float) -> int:
        """How many independent runs are planned for ``seconds``: ``restarts``, or one per ``restart_seconds`` (at least 1,
        at most 20)."""
        return self.restarts or max(1, min(MAX_RUNS, int(seconds // self.restart_seconds)))

    def next_run(self, r: int, planned: int, seconds_left: float, steps_left: int, steps_per_s: float | None) -> tuple[float, int] | None:
        """Time and step allowance of run ``r`` (from 0), or None: stop.

        The planned runs (:meth:`runs`) share what is left of the budget equally. With ``restarts=None`` each run stops at
        ``restart_steps``; when the planned runs end early on that cap, further runs follow while the time left affords at
        least half a run at the speed measured so far (``steps_per_s``)."""
        if steps_left < 1 or (r > 0 and seconds_left <= 0):
            return None
        if r < planned:
            share = planned - r
            run_seconds, run_steps = max(seconds_left, 1e-3) / share, max(1, steps_left // share)
        elif (self.restarts is None and r < MAX_RUNS and steps_per_s is not None
              and seconds_left * steps_per_s >= self.restart_steps / 2):
            run_seconds, run_steps = min(seconds_left, self.restart_seconds), steps_left
        else:
            return None
        return run_seconds, run_steps if self.restarts is not None else min(run_steps, self.restart_steps)
