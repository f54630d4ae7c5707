"""Speaker verification: EER worked by hand, trials, cosine scores."""

import itertools

import numpy as np
import pytest

from dim_keras.evaluation.verification import cosine_scores
from dim_keras.evaluation.verification import equal_error_rate
from dim_keras.evaluation.verification import speaker_verification_eer
from dim_keras.evaluation.verification import verification_trials


def test_eer_of_perfectly_separated_scores_is_zero():
    eer, threshold = equal_error_rate([0.9, 0.8, 0.2, 0.1],
                                      [True, True, False, False])
    assert eer == 0.0
    # Accepting at >= 0.8 (the lowest same-speaker score) makes no error.
    assert threshold == pytest.approx(0.8)


def test_eer_of_reversed_scores_is_one():
    eer, _ = equal_error_rate([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0])
    assert eer == 1.0


def test_eer_worked_by_hand():
    # Same-speaker scores 0.9, 0.6, 0.5, 0.2 (4); different 0.8, 0.4, 0.3
    # (3). Accepting scores >= t, from the highest threshold down:
    #   t = 0.9: FNR 3/4, FPR 0    (FPR - FNR = -3/4)
    #   t = 0.8: FNR 3/4, FPR 1/3  (-5/12)
    #   t = 0.6: FNR 1/2, FPR 1/3  (-1/6)
    #   t = 0.5: FNR 1/4, FPR 1/3  (+1/12)
    # The rates cross between t = 0.6 and t = 0.5, at the fraction
    # (1/6) / (1/6 + 1/12) = 2/3 of the way: FPR stays 1/3 and
    # FNR = 1/2 - 2/3 * 1/4 = 1/3. EER = 1/3, threshold 0.6 - 2/3 * 0.1.
    scores = [0.9, 0.6, 0.5, 0.2, 0.8, 0.4, 0.3]
    same = [True] * 4 + [False] * 3
    eer, threshold = equal_error_rate(scores, same)
    assert eer == pytest.approx(1 / 3)
    assert threshold == pytest.approx(0.6 - 0.2 / 3)
    # The order of the trials does not matter.
    order = [3, 0, 6, 1, 5, 2, 4]
    assert equal_error_rate(np.take(scores, order),
                            np.take(same, order))[0] == pytest.approx(1 / 3)


def test_eer_of_a_tie_lies_on_the_diagonal_step():
    # Same 0.9, 0.5; different 0.5, 0.1. At t = 0.9: FNR 1/2, FPR 0; at
    # t = 0.5 (the tie accepts one of each): FNR 0, FPR 1/2. Halfway the two
    # rates are both 1/4, at threshold (0.9 + 0.5) / 2.
    eer, threshold = equal_error_rate([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])
    assert eer == pytest.approx(0.25)
    assert threshold == pytest.approx(0.7)


def test_eer_refuses_one_class_and_mismatched_lengths():
    with pytest.raises(ValueError, match="both same-speaker and different"):
        equal_error_rate([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="both same-speaker and different"):
        equal_error_rate([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match=r"Received: len\(scores\)=3"):
        equal_error_rate([0.1, 0.2, 0.3], [True, False])
    with pytest.raises(ValueError, match="finite"):
        equal_error_rate([0.1, np.nan], [True, False])


def test_trials_are_balanced_labelled_and_never_self_pairs():
    labels = np.repeat(["ann", "bob", "cy", "dee"], [5, 7, 1, 3])
    i, j, same = verification_trials(labels, num_trials=41, seed=3)
    assert i.dtype == np.int64 and j.dtype == np.int64
    assert len(i) == len(j) == len(same) == 41
    assert int(same.sum()) == 20  # num_trials // 2 same-speaker trials.
    assert np.all(i != j)
    np.testing.assert_array_equal(same, labels[i] == labels[j])
    # Seeded: the same seed gives the same trials, another seed others.
    again = verification_trials(labels, num_trials=41, seed=3)
    for a, b in zip((i, j, same), again):
        np.testing.assert_array_equal(a, b)
    other = verification_trials(labels, num_trials=41, seed=4)
    assert not np.array_equal(i, other[0])


def test_trials_draw_distinct_pairs_exhaustively():
    # 5 + 7 + 1 + 3 items: C(5,2) + C(7,2) + 0 + C(3,2) = 10 + 21 + 3 = 34
    # same-speaker pairs. Asking for all 34 gets each exactly once.
    labels = np.repeat([0, 1, 2, 3], [5, 7, 1, 3])
    i, j, same = verification_trials(labels, num_trials=68, seed=0)
    drawn = {frozenset(pair) for pair in zip(i[same], j[same])}
    every = {frozenset(pair)
             for pair in itertools.combinations(range(len(labels)), 2)
             if labels[pair[0]] == labels[pair[1]]}
    assert len(drawn) == 34 and drawn == every
    different = {frozenset(pair) for pair in zip(i[~same], j[~same])}
    assert len(different) == 34  # No different-speaker pair twice either.
    # 16 items: C(16,2) - 34 = 86 different-speaker pairs; 35 same are not.
    with pytest.raises(ValueError, match="only 34 distinct same-speaker"):
        verification_trials(labels, num_trials=70, seed=0)


def test_trials_need_two_speakers():
    with pytest.raises(ValueError, match="at least 2 speakers"):
        verification_trials(["a", "a", "a"], num_trials=2, seed=0)
    with pytest.raises(ValueError, match="num_trials=1"):
        verification_trials(["a", "b"], num_trials=1, seed=0)


def test_cosine_scores_closed_form_and_zero_vectors():
    embeddings = np.array([[3.0, 4.0], [4.0, 3.0], [0.0, 0.0], [-6.0, -8.0]])
    scores = cosine_scores(embeddings, [0, 0, 0, 2], [1, 3, 0, 2])
    # (3*4 + 4*3) / (5*5) = 24/25; opposite directions; itself; zero vector.
    np.testing.assert_allclose(scores, [24 / 25, -1.0, 1.0, 0.0])
    assert np.all(np.isfinite(scores))
    with pytest.raises(ValueError, match="Received: len"):
        cosine_scores(embeddings, [0, 1], [1])
    with pytest.raises(ValueError, match="indexes past"):
        cosine_scores(embeddings, [0], [4])


def test_speaker_verification_eer_separates_speakers():
    # Each speaker's items lie near its own direction: perfect verification.
    rng = np.random.default_rng(0)
    centres = np.eye(6) * 10.0
    labels = np.repeat(np.arange(6), 8)
    embeddings = centres[labels] + rng.normal(scale=0.5, size=(48, 6))
    result = speaker_verification_eer(embeddings, labels, num_trials=200)
    assert result["eer"] == 0.0
    assert result["trials"] == 200 and result["same_trials"] == 100
    assert result["speakers"] == 6 and result["items"] == 48
    # Random embeddings: around chance (0.5).
    noise = rng.normal(size=(48, 6))
    result = speaker_verification_eer(noise, labels, num_trials=300, seed=1)
    assert 0.3 < result["eer"] < 0.7
    with pytest.raises(ValueError, match="Received: embeddings.shape"):
        speaker_verification_eer(noise[:10], labels)
