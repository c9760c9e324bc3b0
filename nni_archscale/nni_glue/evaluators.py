"""The hook, one obvious way per NNI evaluator style.

* :class:`ArchScaleEvaluator` wraps a ``Classification`` / ``Lightning`` evaluator: for every candidate it
  re-initialises the model, gives the Lightning module a ``configure_optimizers`` that returns the rule's param
  groups, and fits with a fresh trainer (NNI reuses one ``Trainer`` across candidates in the sequential engine,
  which Lightning 2.6 refuses to fit twice). It overrides ``evaluate()``, not ``_execute()`` (a frozen wrapper
  bypasses ``_execute`` overrides), and is ``@nni.trace``'d so ``ts`` trials can rebuild it.
* :class:`ArchScaleCallback` is a Lightning callback for users with their own ``LightningModule``: it
  re-initialises in ``setup`` and swaps in the param-group optimizer in ``on_fit_start`` (the optimizer does not
  exist in ``setup``), re-pointing any LR scheduler at the scaled rates.
* :func:`prepare_for_trial` is for ``FunctionalEvaluator`` users: one call returns the prepared model's
  optimizer (and scheduler) built on the rule's rates.
"""

from __future__ import annotations

import logging
import types
from typing import Any

import nni
import pytorch_lightning as pl
import torch
from nni.nas.evaluator import MutableEvaluator
from nni.nas.evaluator.pytorch import Lightning

from ..torch_layer.hook import HookConfig, Prepared
from .adapters import check_model, prepare_candidate

log = logging.getLogger("nni_archscale")


def _config(hook: HookConfig | dict | None, **overrides) -> HookConfig:
    """``hook`` (a :class:`HookConfig`, a dict of its options or None) with ``overrides``; an unknown key or a
    value of the wrong kind is refused here, by name (:meth:`HookConfig.from_dict`)."""
    base = _hook_options(hook)
    base.update({k: v for k, v in overrides.items() if v is not None})
    return HookConfig.from_dict(base)


def _hook_options(hook: HookConfig | dict | None) -> dict:
    """The options as given (a dict keeps only its own keys: the evaluator's weight decay falls back on the
    module's), checked as a :class:`HookConfig` now rather than at the first candidate."""
    HookConfig.of(hook)
    return hook.to_dict() if isinstance(hook, HookConfig) else dict(hook or {})


def _grouped_configure_optimizers(self):
    """``configure_optimizers`` of a Lightning module prepared by the hook: the module's optimizer class over the
    rule's param groups (every group keeps its own rate and weight decay)."""
    groups = self._archscale_groups
    opt_cls = getattr(self, "optimizer", None)
    if not (isinstance(opt_cls, type) and issubclass(opt_cls, torch.optim.Optimizer)):
        opt_cls = torch.optim.SGD
    kwargs = {"lr": groups[0]["lr"]}
    if opt_cls is torch.optim.SGD:
        cfg: HookConfig = self._archscale_config
        kwargs.update(momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    return opt_cls([dict(g) for g in groups], **kwargs)


@nni.trace
class ArchScaleEvaluator(MutableEvaluator):
    """Wrap an NNI ``Classification`` / ``Lightning`` evaluator so every candidate trains with its own
    principled init and learning rate.

    ``hook``: a :class:`HookConfig` or its dict (``base_lr``, ``init``, ``rate_rule``, ...). When
    ``use_module_optimizer`` (default), the wrapped module's optimizer class is kept
    (``Classification(optimizer=torch.optim.SGD)`` gives SGD) and only its rates come from the rule; its weight
    decay is the module's ``weight_decay`` hparam.
    """

    def __init__(self, evaluator: Lightning, hook: dict | None = None, adapter: str = "auto"):
        if not isinstance(evaluator, Lightning):
            raise TypeError(
                f"ArchScaleEvaluator wraps a Classification/Lightning evaluator, got {type(evaluator).__name__}; "
                f"for FunctionalEvaluator call prepare_for_trial() inside your function"
            )
        self.evaluator = evaluator
        self.hook = _hook_options(hook)
        self.adapter = adapter
        self.last_prepared: Prepared | None = None

    def evaluate(self, model: torch.nn.Module) -> Any:
        inner = self.evaluator
        module = inner.module
        hparams = getattr(module, "hparams", {}) or {}
        wd = float(hparams.get("weight_decay", self.hook.get("weight_decay", 0.0)) or 0.0)
        cfg = _config(self.hook, weight_decay=wd)
        prepared = prepare_candidate(model, cfg, adapter=self.adapter)
        self.last_prepared = prepared
        module._archscale_groups = prepared.groups
        module._archscale_config = cfg
        module._archscale_prepared = prepared
        module.configure_optimizers = types.MethodType(_grouped_configure_optimizers, module)
        saved_trainer = inner.trainer
        inner.trainer = saved_trainer.trace_copy().get()  # a fresh Trainer for every candidate
        try:
            return inner.evaluate(model)
        finally:
            inner.trainer = saved_trainer

    def __repr__(self) -> str:
        return f"ArchScaleEvaluator({self.evaluator!r}, hook={self.hook})"


@nni.trace
class ArchScaleCallback(pl.Callback):
    """Lightning callback: principled init in ``setup``, param-group optimizer in ``on_fit_start``.

    Works with any LightningModule; the architecture is ``pl_module.model`` (NNI ``LightningModule``) or the
    module itself. Existing LR schedulers are re-pointed at the new optimizer with the scaled rates as their
    base rates.
    """

    def __init__(self, hook: dict | None = None, adapter: str = "auto"):
        super().__init__()
        self.hook = _hook_options(hook)
        self.adapter = adapter
        self.prepared: Prepared | None = None

    @staticmethod
    def _arch(pl_module) -> torch.nn.Module:
        return getattr(pl_module, "_model", None) or pl_module

    def setup(self, trainer, pl_module, stage=None):
        if stage not in (None, "fit", pl.trainer.states.TrainerFn.FITTING):
            return
        self.prepared = prepare_candidate(self._arch(pl_module), _config(self.hook), adapter=self.adapter)

    def on_fit_start(self, trainer, pl_module):
        if self.prepared is None:
            return
        new_opts = []
        for opt in trainer.optimizers:
            wd = float(opt.defaults.get("weight_decay", 0.0) or 0.0)
            # the rule's groups (one per distinct rate: per-edge rates survive), with the user's weight decay
            groups = [{"params": list(g["params"]), "lr": g["lr"], "weight_decay": wd, "name": g["name"]}
                      for g in self.prepared.groups]
            defaults = {k: v for k, v in opt.defaults.items() if k not in ("lr", "weight_decay")}
            try:
                new = type(opt)(groups, lr=groups[0]["lr"], weight_decay=wd, **defaults)
            except TypeError:
                new = type(opt)(groups, lr=groups[0]["lr"])
            for g in new.param_groups:
                g["initial_lr"] = g["lr"]
            new_opts.append((opt, new))
        mapping = {id(old): new for old, new in new_opts}
        trainer.strategy.optimizers = [new for _, new in new_opts]
        for cfg in trainer.lr_scheduler_configs:
            sched = cfg.scheduler
            new = mapping.get(id(getattr(sched, "optimizer", None)))
            if new is not None:
                sched.optimizer = new
                sched.base_lrs = [g["lr"] for g in new.param_groups]
        log.info("archscale callback: optimizer(s) rebuilt with lr %.6g (%d group(s))", self.prepared.learning_rate,
                 len(self.prepared.groups))


def prepare_for_trial(model: torch.nn.Module, hook: HookConfig | dict | None = None, *, total_steps: int | None = None,
                      sample: dict | None = None, adapter: str = "auto", generator=None, **overrides):
    """For ``FunctionalEvaluator`` functions: re-initialise ``model`` for the current NNI sample and return
    ``(optimizer, scheduler, prepared)`` built on the rule's rates (scheduler is None without ``total_steps``
    or with ``scheduler='none'``)."""
    check_model(model, "prepare_for_trial()")
    cfg = _config(hook, **overrides)
    prepared = prepare_candidate(model, cfg, sample=sample, adapter=adapter, generator=generator)
    optimizer = prepared.make_optimizer()
    scheduler = prepared.make_scheduler(optimizer, total_steps) if total_steps else None
    return optimizer, scheduler, prepared
