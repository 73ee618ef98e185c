"""Zero-shot metrics: accuracy and mAR by hand, ROC-AUC / mAP equal to sklearn's, label masks, best prompt; every
prompt's figure beside the best, labelled as chosen on the test set, in results and in RESULTS.md's tables."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from espnet2_slap.evaluation.report import zero_shot_sections
from espnet2_slap.metrics.cosine import cosine_scores
from espnet2_slap.metrics.zeroshot import BEST_LABEL, mean_average_recall, per_class_auc_map, zeroshot_metrics
from espnet2_slap.prompts import PROMPTS

GENRES = ["blues", "classical", "country", "disco", "hiphop", "jazz", "metal", "pop", "reggae", "rock"]


def test_class_scores_are_cosines():
    scores = cosine_scores(np.array([[3.0, 0.0]]), np.array([[0.0, 5.0], [2.0, 2.0]]))
    np.testing.assert_allclose(scores, [[0.0, 2**-0.5]])


def test_accuracy_by_hand_and_best_prompt():
    audio = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    labels = np.array([0, 1, 1])
    good = np.array([[1.0, 0.0], [0.0, 1.0]])  # clips 0, 1 right, clip 2 (closer to class 0) wrong
    swapped = good[::-1]  # only clip 2 right
    result = zeroshot_metrics(audio, {PROMPTS[0]: swapped, PROMPTS[1]: good}, labels)
    assert result["per_prompt"][PROMPTS[0]]["accuracy"] == pytest.approx(100 / 3)
    assert result["per_prompt"][PROMPTS[1]]["accuracy"] == pytest.approx(200 / 3)
    assert result["best_prompt"] == "{} music" and result["best"]["accuracy"] == pytest.approx(200 / 3)


def test_mar_by_hand():
    scores = np.array([[0.9, 0.1, 0.5, 0.3]])  # tag order 0, 2, 3, 1
    targets = np.array([[0, 1, 1, 0]])  # recall@k = 0, 1/2, 1/2, 1 -> mean 1/2
    assert mean_average_recall(scores, targets) == {"mAR": pytest.approx(50.0), "skipped_clips": 0}
    # a second clip with its positive ranked first (recall 1 at every k) and one with no positive (skipped)
    scores = np.vstack([scores, [0.0, 0.0, 0.0, 1.0], [1, 2, 3, 4]])
    targets = np.vstack([targets, [0, 0, 0, 1], [0, 0, 0, 0]])
    assert mean_average_recall(scores, targets) == {"mAR": pytest.approx(75.0), "skipped_clips": 1}


def test_mar_with_mask_ranks_only_known_tags():
    scores = np.array([[0.9, 0.1, 0.5, 0.3]])
    targets = np.array([[0, 1, 1, 0]])
    mask = np.array([[False, True, True, True]])  # tag 0 unknown: order 2, 3, 1 -> recall 1/2, 1/2, 1 -> 2/3
    assert mean_average_recall(scores, targets, mask)["mAR"] == pytest.approx(200 / 3)


def random_multilabel(seed, n=60, c=6):
    rng = np.random.default_rng(seed)
    targets = (rng.random((n, c)) < 0.3).astype(int)
    scores = targets + rng.normal(size=(n, c))
    return scores, targets


def test_auc_map_equal_sklearn_and_skip_degenerate_classes():
    scores, targets = random_multilabel(0)
    targets[:, 4] = 0  # no positive
    targets[:, 5] = 1  # no negative
    result = per_class_auc_map(scores, targets)
    assert result["skipped_classes"] == 2
    assert result["ROC-AUC"] == pytest.approx(100 * roc_auc_score(targets[:, :4], scores[:, :4], average="macro"))
    assert result["mAP"] == pytest.approx(100 * average_precision_score(targets[:, :4], scores[:, :4], average="macro"))


def test_mask_leaves_unknown_labels_out():
    scores, targets = random_multilabel(1)
    mask = np.random.default_rng(2).random(targets.shape) < 0.7
    result = per_class_auc_map(scores, targets, mask)
    expected = np.mean([roc_auc_score(targets[mask[:, c], c], scores[mask[:, c], c]) for c in range(6)])
    assert result["ROC-AUC"] == pytest.approx(100 * expected)
    # flipping unknown labels changes nothing
    flipped = np.where(mask, targets, 1 - targets)
    assert per_class_auc_map(scores, flipped, mask) == result
    assert mean_average_recall(scores, flipped, mask) == mean_average_recall(scores, targets, mask)


def test_multilabel_zeroshot_selects_by_map():
    rng = np.random.default_rng(3)
    classes = rng.normal(size=(5, 8))
    targets = (rng.random((40, 5)) < 0.4).astype(int)
    audio = targets @ classes + 0.1 * rng.normal(size=(40, 8))
    result = zeroshot_metrics(audio, {"{}": classes, "A {} track": rng.normal(size=(5, 8))}, targets, multi_label=True)
    assert result["select"] == "mAP" and result["best_prompt"] == "{}"
    assert set(result["best"]) == {"ROC-AUC", "mAP", "skipped_classes", "mAR", "skipped_clips"}


def test_undefined_metrics_raise():
    with pytest.raises(ValueError, match="no class has both"):
        per_class_auc_map(np.zeros((3, 2)), np.zeros((3, 2), dtype=int))
    with pytest.raises(ValueError, match="only applies to multi-label"):
        zeroshot_metrics(np.ones((2, 2)), {"{}": np.ones((2, 2))}, np.array([0, 1]), mask=np.ones((2, 2)))


def gtzan_like(seed=4, clips=100, dim=32):
    """(N, D) audio of 10 genres, {prompt: (10, D)} for the paper's four prompts (each a copy of the genre
    directions with its own noise, least for the second, so their accuracies differ), (N,) genre indices."""
    rng = np.random.default_rng(seed)
    genres = rng.normal(size=(len(GENRES), dim))
    labels = rng.integers(0, len(GENRES), clips)
    audio = genres[labels] + 2.0 * rng.normal(size=(clips, dim))
    prompts = {p: genres + rng.normal(scale=s, size=genres.shape) for p, s in zip(PROMPTS, (1.5, 0.5, 1.0, 2.0))}
    return audio, prompts, labels


def test_every_prompts_accuracy_is_given_and_the_best_is_their_max_labelled_as_chosen_on_test():
    audio, prompts, labels = gtzan_like()
    result = zeroshot_metrics(audio, prompts, labels)
    assert list(result["per_prompt"]) == list(PROMPTS)  # each a fixed-prompt figure, in the paper's order
    accuracies = {p: m["accuracy"] for p, m in result["per_prompt"].items()}
    assert len(set(accuracies.values())) == 4 and result["best_prompt"] == "{} music"  # the choice matters
    for prompt in PROMPTS:
        expected = np.mean(np.argmax(cosine_scores(audio, prompts[prompt]), axis=1) == labels)
        assert accuracies[prompt] == pytest.approx(100 * expected)
    assert result["best"]["accuracy"] == max(accuracies.values())
    assert result["best"] == result["per_prompt"][result["best_prompt"]]
    assert result["best_label"] == BEST_LABEL == "best prompt, chosen on the test set (paper's protocol; optimistic)"


def test_multilabel_best_is_the_max_map_of_the_prompts():
    audio, prompts, labels = gtzan_like(seed=5)
    targets = np.eye(len(GENRES), dtype=int)[labels]
    targets[::7, 3] = 1  # some clips with a second tag
    result = zeroshot_metrics(audio, prompts, targets, multi_label=True)
    assert list(result["per_prompt"]) == list(PROMPTS)
    assert result["best"]["mAP"] == max(m["mAP"] for m in result["per_prompt"].values())
    assert result["best_label"] == BEST_LABEL


def test_results_md_has_a_row_a_prompt_and_the_best_labelled_as_chosen_on_test():
    audio, prompts, labels = gtzan_like()
    single = {**zeroshot_metrics(audio, prompts, labels), "classes": GENRES, "clips": 100, "unlabelled_clips": 0}
    targets = np.eye(len(GENRES), dtype=int)[labels]
    multi = {
        **zeroshot_metrics(audio, prompts, targets, multi_label=True),
        "classes": GENRES,
        "clips": 100,
        "unlabelled_clips": 0,
        "known": None,
    }
    lines = zero_shot_sections({"utt2genre": single, "utt2tags": multi})
    text = "\n".join(lines)
    label = "best prompt, chosen on the test set (paper's protocol; optimistic)"
    assert f"### Zero-shot classification (accuracy %, each of the paper's prompts and the {label})" in text
    for prompt, m in single["per_prompt"].items():
        assert f"| utt2genre | 10 | 10.0 | `{prompt}` | {m['accuracy']:.2f} |" in lines
    best = single["best"]["accuracy"]
    assert f"| utt2genre | 10 | 10.0 | {label}: `{single['best_prompt']}` | {best:.2f} |" in lines
    assert f"each of the paper's prompts and the {label}, by mAP)" in text
    for prompt, m in multi["per_prompt"].items():
        assert f"| utt2tags | 10 | 100 | none | `{prompt}` | {m['ROC-AUC']:.2f} | {m['mAP']:.2f} |" in text
    b = multi["best"]
    best_row = f"| utt2tags | 10 | 100 | none | {label}: `{multi['best_prompt']}` | "
    assert best_row + f"{b['ROC-AUC']:.2f} | {b['mAP']:.2f} | {b['mAR']:.2f} | 0 | 0 |" in lines
