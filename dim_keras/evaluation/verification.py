"""Speaker verification: trials, cosine scores and the equal error rate.

A verification trial asks whether two items (utterances or chunks of them)
come from the same speaker. Each trial is scored by the cosine similarity of
the two items' embeddings, and the scores are summed up by the equal error
rate (EER): the error rate at the threshold where false acceptances (a
different-speaker pair scored at or above the threshold) are as frequent
among different-speaker trials as false rejections (a same-speaker pair
scored below it) among same-speaker trials. 0 is perfect, 0.5 is chance.

- `equal_error_rate`: the EER of similarity scores and same-speaker labels,
  where the false positive and false negative rates cross on the ROC curve;
- `verification_trials`: seeded, balanced same/different-speaker pairs;
- `cosine_scores`: the cosine similarity of the pairs' embeddings;
- `speaker_verification_eer`: all three, on embeddings and speaker labels.
"""

import numpy as np


def _check_scores_and_labels(scores, same):
    scores = np.asarray(scores, dtype="float64").reshape(-1)
    same = np.asarray(same).reshape(-1)
    if len(scores) != len(same):
        raise ValueError(
            "scores and same need the same length. "
            f"Received: len(scores)={len(scores)}, len(same)={len(same)}"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError(
            "scores need to be finite. "
            f"Received: {int(np.sum(~np.isfinite(scores)))} non-finite "
            "scores"
        )
    same = same.astype(bool)
    positives = int(np.sum(same))
    if positives == 0 or positives == len(same):
        raise ValueError(
            "The equal error rate needs both same-speaker and "
            "different-speaker trials. "
            f"Received: {positives} same, {len(same) - positives} different"
        )
    return scores, same


def equal_error_rate(scores, same):
    """The equal error rate of similarity scores, and its threshold.

    A trial is accepted when its score is at or above a threshold. Along the
    ROC curve (scikit-learn's `roc_curve`, every threshold kept), the false
    positive rate (FPR) grows and the false negative rate (FNR, `1 - TPR`)
    falls; the EER is where they meet, interpolated linearly between the
    last ROC point with `FPR < FNR` and the first with `FPR >= FNR` (the
    threshold likewise). Tied scores of both classes make one diagonal step
    of the curve, so the EER is then taken on its line.

    Args:
        scores: float array `[T]`, higher means more alike.
        same: bool array `[T]`, True for same-speaker trials.

    Returns:
        `(eer, threshold)`: floats; `eer` in `[0, 1]`.

    Raises:
        ValueError: when the lengths differ, a score is not finite, or the
            trials hold only one class.
    """
    from sklearn.metrics import roc_curve

    scores, same = _check_scores_and_labels(scores, same)
    fpr, tpr, thresholds = roc_curve(same, scores, drop_intermediate=False)
    fnr = 1.0 - tpr
    gap = fpr - fnr  # -1 at the first point (nothing accepted), +1 at last.
    k = int(np.argmax(gap >= 0))
    if gap[k] == 0 or k == 0:
        return float(fpr[k]), float(thresholds[k])
    # gap[k - 1] < 0 < gap[k]: the crossing lies between the two points.
    alpha = -gap[k - 1] / (gap[k] - gap[k - 1])
    eer = fpr[k - 1] + alpha * (fpr[k] - fpr[k - 1])
    if np.isfinite(thresholds[k - 1]):
        threshold = thresholds[k - 1] + alpha * (
            thresholds[k] - thresholds[k - 1])
    else:  # The first point's threshold is +inf: nothing above it.
        threshold = thresholds[k]
    return float(eer), float(threshold)


def verification_trials(labels, num_trials, seed=0):
    """Seeded, balanced same- and different-speaker trials.

    `num_trials // 2` same-speaker pairs and the rest different-speaker
    pairs are drawn, each set uniformly and without repetition among the
    distinct unordered pairs `{i, j}`, `i != j`, of items with those labels.
    The trials are returned in a seeded random order.

    Args:
        labels: array `[N]` of speaker labels (ints or strings), one per
            item (an utterance or a chunk of one).
        num_trials: int >= 2, how many trials.
        seed: int, seed of the draw.

    Returns:
        `(i, j, same)`: int64 arrays `[num_trials]` of item indices, and a
        bool array `[num_trials]`, True where `labels[i] == labels[j]`.

    Raises:
        ValueError: when there are fewer than 2 speakers, or fewer distinct
            pairs of either kind than asked for.
    """
    labels = np.asarray(labels).reshape(-1)
    if int(num_trials) != num_trials or num_trials < 2:
        raise ValueError(
            f"num_trials needs to be an int >= 2. Received: "
            f"num_trials={num_trials}"
        )
    num_trials = int(num_trials)
    speakers, codes = np.unique(labels, return_inverse=True)
    if len(speakers) < 2:
        raise ValueError(
            "Verification trials need at least 2 speakers. "
            f"Received: {len(speakers)} speaker(s) among {len(labels)} items"
        )
    # Items sorted by speaker: each speaker's items form one block.
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes).astype("int64")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    ends = starts + counts
    num_same = num_trials // 2
    num_different = num_trials - num_same

    # Same-speaker pairs: speaker s has counts[s] choose 2 of them. Inside a
    # block, pair r is (a, b), a < b, counted by b: r = b (b - 1) / 2 + a.
    same_counts = counts * (counts - 1) // 2
    same_offsets = np.concatenate([[0], np.cumsum(same_counts)[:-1]])
    # Different-speaker pairs: (p, q), p < q in sorted order, q past p's
    # block; sorted item p starts N - ends[speaker of p] of them.
    total_items = len(labels)
    sorted_codes = codes[order]
    different_counts = total_items - ends[sorted_codes]
    different_offsets = np.concatenate(
        [[0], np.cumsum(different_counts)[:-1]])
    available = {"same": int(same_counts.sum()),
                 "different": int(different_counts.sum())}
    for kind, wanted in (("same", num_same), ("different", num_different)):
        if wanted > available[kind]:
            raise ValueError(
                f"Asked for {wanted} {kind}-speaker trials, but the labels "
                f"give only {available[kind]} distinct {kind}-speaker pairs. "
                f"Received: num_trials={num_trials}, {len(labels)} items, "
                f"{len(speakers)} speakers"
            )

    rng = np.random.default_rng(seed)
    pick = rng.choice(available["same"], size=num_same, replace=False)
    # The last offset at or below `pick` (speakers of one item start none).
    speaker = np.searchsorted(same_offsets, pick, side="right") - 1
    local = pick - same_offsets[speaker]
    b = np.floor((1 + np.sqrt(1 + 8 * local.astype("float64"))) / 2)
    b = b.astype("int64")
    # Guard the square root's rounding: b (b - 1) / 2 <= local < b (b + 1) / 2.
    b -= (b * (b - 1) // 2 > local)
    b += ((b + 1) * b // 2 <= local)
    a = local - b * (b - 1) // 2
    same_i = order[starts[speaker] + a]
    same_j = order[starts[speaker] + b]

    pick = rng.choice(available["different"], size=num_different,
                      replace=False)
    p = np.searchsorted(different_offsets, pick, side="right") - 1
    # The last offset at or below `pick` is p's: items of the last block
    # start no pairs, and their offsets (the total) lie above every pick.
    q = ends[sorted_codes[p]] + (pick - different_offsets[p])
    different_i = order[p]
    different_j = order[q]

    i = np.concatenate([same_i, different_i]).astype("int64")
    j = np.concatenate([same_j, different_j]).astype("int64")
    same = np.concatenate([np.ones(num_same, bool),
                           np.zeros(num_different, bool)])
    # A random order, and a random side for each item of a pair.
    shuffle = rng.permutation(num_trials)
    swap = rng.random(num_trials) < 0.5
    i, j, same = i[shuffle], j[shuffle], same[shuffle]
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    return i, j, same


def cosine_scores(embeddings, i, j):
    """Cosine similarity of the embeddings of pairs `(i[t], j[t])`.

    A zero embedding has a cosine similarity of 0 with everything.

    Args:
        embeddings: array `[N, ...]` (flattened to `[N, D]`).
        i: int array `[T]`, first items.
        j: int array `[T]`, second items.

    Returns:
        float64 array `[T]` in `[-1, 1]`.

    Raises:
        ValueError: when `i` and `j` differ in length or index past `N`.
    """
    embeddings = np.asarray(embeddings, dtype="float64")
    embeddings = embeddings.reshape(len(embeddings), -1)
    i = np.asarray(i).reshape(-1)
    j = np.asarray(j).reshape(-1)
    if len(i) != len(j):
        raise ValueError(
            "i and j need the same length. "
            f"Received: len(i)={len(i)}, len(j)={len(j)}"
        )
    for name, index in (("i", i), ("j", j)):
        if len(index) and (index.min() < 0 or index.max() >= len(embeddings)):
            raise ValueError(
                f"{name} indexes past the embeddings. Received: "
                f"{name} in [{index.min()}, {index.max()}], "
                f"embeddings.shape={embeddings.shape}"
            )
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.maximum(norms, 1e-12)
    scores = np.sum(unit[i] * unit[j], axis=1)
    return np.clip(scores, -1.0, 1.0)


def speaker_verification_eer(embeddings, labels, num_trials=10000, seed=0):
    """The EER of cosine-scored, balanced verification trials.

    Args:
        embeddings: array `[N, ...]`, one embedding per item.
        labels: array `[N]`, the items' speakers.
        num_trials: int, trials drawn by `verification_trials`.
        seed: int, seed of the draw.

    Returns:
        Dict with `eer`, `threshold` (of cosine similarity), `trials`,
        `same_trials`, `different_trials`, `items`, `speakers`, `scoring`
        and `seed`.

    Raises:
        ValueError: when embeddings and labels differ in length, or as
            `verification_trials` does.
    """
    embeddings = np.asarray(embeddings)
    labels = np.asarray(labels).reshape(-1)
    if len(embeddings) != len(labels):
        raise ValueError(
            "embeddings and labels need the same number of rows. "
            f"Received: embeddings.shape={embeddings.shape}, "
            f"labels.shape={labels.shape}"
        )
    i, j, same = verification_trials(labels, num_trials, seed=seed)
    eer, threshold = equal_error_rate(cosine_scores(embeddings, i, j), same)
    return {
        "eer": eer,
        "threshold": threshold,
        "trials": int(len(same)),
        "same_trials": int(np.sum(same)),
        "different_trials": int(np.sum(~same)),
        "items": int(len(labels)),
        "speakers": int(len(np.unique(labels))),
        "scoring": "cosine",
        "seed": int(seed),
    }
