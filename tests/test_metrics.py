import evaluate
import pytest

from training.reports import METRICS_PATH


@pytest.fixture(scope="module")
def metric():
    return evaluate.load(METRICS_PATH)


def test_figures_match_a_hand_computed_example(metric):
    # true:  0 0 1 2 2 2     predicted: 0 2 1 2 2 1
    scores = metric.compute(predictions=[0, 2, 1, 2, 2, 1], references=[0, 0, 1, 2, 2, 2], num_labels=3)
    assert scores["confusion_matrix"] == [[1, 0, 1], [0, 1, 0], [0, 1, 2]]
    assert scores["accuracy"] == pytest.approx(4 / 6)
    # recalls 1/2, 1/1, 2/3
    assert scores["unweighted_accuracy"] == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    # precisions 1/1, 1/2, 2/3 -> F1 2/3, 2/3, 2/3
    assert scores["macro_f1"] == pytest.approx(2 / 3)
    assert scores["weighted_f1"] == pytest.approx(2 / 3)


def test_classes_absent_from_the_references_do_not_count_in_ua(metric):
    scores = metric.compute(predictions=[0, 1, 2, 0], references=[0, 1, 1, 0], num_labels=4)
    assert scores["unweighted_accuracy"] == pytest.approx((1 + 1 / 2) / 2)
    assert len(scores["confusion_matrix"]) == 4
    # class 2 was predicted but never true: its F1 of 0 weighs nothing in weighted F1 and is left out of macro F1
    assert scores["macro_f1"] == pytest.approx((1 + 2 / 3) / 2)
