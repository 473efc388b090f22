"""Scores of per-beat feature predictions: loss, macro AUROC and macro F1, overall and per feature group.

Everything is numpy on (N beats, F features) arrays: ``prob`` the predicted probability, ``truth`` the bits.
A feature that is constant among the scored beats has no AUROC (and its F1 says nothing), so it is skipped
in every macro average; ``n_features_scored`` says how many remained.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] in the loss


def auroc(score: np.ndarray, label: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); nan if label is constant."""
    label = np.asarray(label, bool)
    n_pos = int(label.sum())
    n_neg = len(label) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    values, inverse, counts = np.unique(np.asarray(score, np.float64), return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # rank of the last element of each tie group (1-based)
    ranks = (upper - (counts - 1) / 2.0)[inverse]  # average rank of each element
    return float((ranks[label].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def f1(pred: np.ndarray, label: np.ndarray) -> float:
    """F1 of the positive class; 0 when nothing is predicted or true positive."""
    pred, label = np.asarray(pred, bool), np.asarray(label, bool)
    tp = int((pred & label).sum())
    denom = int(pred.sum()) + int(label.sum())
    return 2.0 * tp / denom if denom else 0.0


def bce_loss(prob: np.ndarray, truth: np.ndarray) -> float:
    """Sum over features of the binary cross-entropy, mean over beats."""
    p = np.clip(np.asarray(prob, np.float64), EPS, 1 - EPS)
    t = np.asarray(truth, bool)
    return float(-np.where(t, np.log(p), np.log1p(-p)).sum(axis=1).mean()) if len(t) else float("nan")


def per_feature(prob: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(AUROC per feature, F1 per feature), nan for features constant in ``truth``."""
    F = truth.shape[1]
    aucs = np.array([auroc(prob[:, f], truth[:, f]) for f in range(F)])
    f1s = np.array([f1(prob[:, f] >= threshold, truth[:, f]) for f in range(F)])
    f1s[np.isnan(aucs)] = np.nan
    return aucs, f1s


def _macro(x: np.ndarray) -> float | None:
    x = x[~np.isnan(x)]
    return float(x.mean()) if len(x) else None


def score(prob: np.ndarray, truth: np.ndarray, groups: list[str]) -> dict:
    """{"loss", "auroc_macro", "f1_macro", "n_features_scored", "groups": {group: {...}}} for one predictor."""
    aucs, f1s = per_feature(prob, truth)
    out = {
        "loss": bce_loss(prob, truth),
        "auroc_macro": _macro(aucs),
        "f1_macro": _macro(f1s),
        "n_features_scored": int((~np.isnan(aucs)).sum()),
        "groups": {},
    }
    groups_arr = np.asarray(groups)
    for g in dict.fromkeys(groups):
        sel = groups_arr == g
        out["groups"][g] = {
            "auroc_macro": _macro(aucs[sel]),
            "f1_macro": _macro(f1s[sel]),
            "n_features_scored": int((~np.isnan(aucs[sel])).sum()),
        }
    return out
