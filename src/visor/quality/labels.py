"""Likely label errors from vectors: out-of-sample class probabilities from each item's nearest
neighbours (itself left out), fed to cleanlab's `find_label_issues` and label-quality scores.

Arrays in, arrays out: which vectors and labels, and where the answers go, is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEIGHBOURS = 10
SMOOTHING = 0.01  # probability mass spread over every class, so none is exactly zero


@dataclass(frozen=True)
class LabelIssues:
    quality: np.ndarray  # (n,) cleanlab's self-confidence: the probability of the given label
    issue: np.ndarray  # (n,) bool: cleanlab finds the label likely wrong
    suggested: np.ndarray  # (n,) int: the most probable class
    probabilities: np.ndarray  # (n, K)


def neighbour_probabilities(
    neighbours: np.ndarray, similarities: np.ndarray, labels: np.ndarray, num_classes: int
) -> np.ndarray:
    """(n, K) class probabilities of each item from its neighbours' labels (rows of
    `neighbours`: indices of other items, -1 for none), weighted by similarity, smoothed.
    Items never vote for themselves, so the probabilities are out of sample."""
    n, k = neighbours.shape
    weights = np.where(neighbours >= 0, np.clip(similarities, 0, None) + 1e-6, 0.0)
    votes = np.zeros((n, num_classes))
    rows = np.repeat(np.arange(n), k)
    valid = neighbours.ravel() >= 0
    np.add.at(
        votes,
        (rows[valid], labels[neighbours.ravel()[valid]]),
        weights.ravel()[valid],
    )
    total = votes.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        probs = np.where(total > 0, votes / np.maximum(total, 1e-12), 1.0 / num_classes)
    probs = (1 - SMOOTHING) * probs + SMOOTHING / num_classes
    return probs / probs.sum(axis=1, keepdims=True)


def label_issues(labels: np.ndarray, probabilities: np.ndarray) -> LabelIssues:
    """cleanlab's verdict on each label given out-of-sample `probabilities` (n, K)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels, dtype=np.int64)
    quality = get_label_quality_scores(labels, probabilities, method="self_confidence")
    # n_jobs=1: with more, cleanlab forks a process pool, and a fork of a process running
    # threads (the server's, DuckDB's) can leave the child waiting forever on a lock it copied
    # held (a label-errors job hung so on a machine with 2 physical cores). The work is small.
    issue = find_label_issues(labels, probabilities, filter_by="prune_by_noise_rate", n_jobs=1)
    return LabelIssues(
        quality=np.asarray(quality, dtype=np.float64),
        issue=np.asarray(issue, dtype=bool),
        suggested=probabilities.argmax(axis=1),
        probabilities=probabilities,
    )
