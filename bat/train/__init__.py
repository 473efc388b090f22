"""Masked-beat pretraining: ``objective`` (masks and loss), ``metrics`` (AUROC, F1), ``evaluate`` (held-out
scores, baselines, report) and ``recipe`` (the one training recipe every launcher calls)."""

from bat.train.recipe import PretrainConfig, PretrainRecipe, load_encoder, run_pretrain

__all__ = ["PretrainConfig", "PretrainRecipe", "load_encoder", "run_pretrain"]
