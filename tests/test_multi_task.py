"""Several tasks through one generative head: joint codes, per-task decisions, training, save and load."""

import pytest
import torch
from transformers import AutoModelForAudioClassification

from conftest import genser_classifier, save_genser, tiny_wav2vec2_config, tone
from modeling_genser import GenSERConfig, GenSERForAudioClassification, sinusoidal_taxonomy_encoding
from modeling_genser.target_matching import observed_label_nll, target_matching_error
from modeling_genser.taxonomy_encoding import MISSING_LABEL
from modeling_genser.taxonomy_encoding import joint_taxonomy_codes

LABEL_SETS = {"emotion": ["anger", "neutral", "sadness"], "gender": ["female", "male"]}


def make_model(scheme: str, **kwargs) -> GenSERForAudioClassification:
    torch.manual_seed(0)
    config = GenSERConfig(
        encoder_config=tiny_wav2vec2_config(), label_sets=LABEL_SETS, multi_task_codes=scheme, **kwargs
    )
    return GenSERForAudioClassification(config).eval()


def test_joint_codes_concatenate_each_tasks_codes_or_number_the_tuples():
    concat = joint_taxonomy_codes([3, 2], 8, "concat")
    emotion, gender = sinusoidal_taxonomy_encoding(3, 4), sinusoidal_taxonomy_encoding(2, 4)
    # Row-major tuples: (0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1).
    for row, (e, g) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]):
        assert torch.equal(concat[row], torch.cat([emotion[e], gender[g]]))
    assert torch.equal(joint_taxonomy_codes([3, 2], 8, "tuple"), sinusoidal_taxonomy_encoding(6, 8))
    with pytest.raises(ValueError, match="divisible by 4"):
        joint_taxonomy_codes([3, 2], 6, "concat")


def test_label_tuples_are_numbered_row_major():
    model = make_model("concat")
    labels = torch.tensor([[0, 0], [0, 1], [2, 0], [2, 1], [1, 1]])
    assert model.class_indices(labels).tolist() == [0, 1, 4, 5, 3]
    assert torch.equal(model.class_indices(torch.tensor([2, 0])), torch.tensor([2, 0]))  # one task: as given
    with pytest.raises(ValueError, match="one label index per task"):
        model.class_indices(torch.tensor([[0, 1, 1]]))


@pytest.mark.parametrize("scheme", ["concat", "tuple"])
def test_each_task_is_decided_on_its_own_codes(scheme):
    model = make_model(scheme)
    # A generated vector equal to a tuple's code decides every task for that tuple's labels.
    labels = torch.tensor([[0, 1], [2, 0], [1, 1]])
    logits = model.task_logits(model.class_codes[model.class_indices(labels)])
    assert list(logits) == ["emotion", "gender"]
    assert logits["emotion"].shape == (3, 3) and logits["gender"].shape == (3, 2)
    assert logits["emotion"].argmax(-1).tolist() == [0, 2, 1]
    assert logits["gender"].argmax(-1).tolist() == [1, 0, 1]
    if scheme == "tuple":  # marginal log-probabilities
        torch.testing.assert_close(logits["gender"].exp().sum(-1), torch.ones(3))
    else:  # similarities on the task's own slice: the other task's half of the vector does not matter
        vector = model.class_codes[model.class_indices(labels)].clone()
        vector[:, 128:] = torch.randn(3, 128)
        torch.testing.assert_close(model.task_logits(vector)["emotion"], logits["emotion"])


@pytest.mark.parametrize("scheme", ["concat", "tuple"])
def test_multi_task_save_and_load_gives_identical_outputs(scheme, tmp_path):
    model = make_model(scheme)
    inputs = torch.tensor(tone(300.0))[None]
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForAudioClassification.from_pretrained(tmp_path).eval()
    assert reloaded.config.label_sets == LABEL_SETS and reloaded.config.multi_task_codes == scheme
    with torch.no_grad():
        expected, actual = model(input_values=inputs), reloaded(input_values=inputs)
    assert torch.equal(expected.logits, expected.task_logits["emotion"])
    for task in LABEL_SETS:
        # Equal up to float rounding: the loaded weights sit at other memory alignments, so the BLAS kernels round
        # the small matmuls differently (about 1e-7).
        torch.testing.assert_close(expected.task_logits[task], actual.task_logits[task], atol=1e-6, rtol=0)
        assert torch.equal(expected.task_logits[task].argmax(-1), actual.task_logits[task].argmax(-1))


@pytest.mark.parametrize(
    "scheme, start, missing",
    [("concat", "gaussian", False), ("tuple", "gaussian", False), ("concat", "joint", False), ("concat", "per_task", True)],
)
def test_one_head_learns_two_tasks(scheme, start, missing):
    """Pooled features whose first half says the emotion and second half the gender: both tasks are learnt, also
    when a third of the training clips have no emotion label (as arousal-only corpora have none)."""
    if start == "gaussian":
        model = make_model(scheme, initial_distribution="gaussian", initial_noise_scale=1.0)
    else:
        model = make_model(scheme, multi_task_prior=start)
    generator = torch.Generator().manual_seed(0)
    num_layers, hidden = 3, model.config.encoder_config.hidden_size
    labels = torch.stack(
        [torch.randint(0, 3, (240,), generator=generator), torch.randint(0, 2, (240,), generator=generator)], -1
    )
    directions = torch.randn(5, num_layers, hidden, generator=generator)
    features = (
        directions[labels[:, 0]]
        + directions[3 + labels[:, 1]]
        + 0.3 * torch.randn(240, num_layers, hidden, generator=generator)
    )
    training_labels = labels.clone()
    if missing:
        training_labels[:200:3, 0] = MISSING_LABEL
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for step in range(300):
        rows = torch.randint(0, 200, (32,), generator=generator)
        loss = model(pooled_layer_features=features[rows], labels=training_labels[rows]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(pooled_layer_features=features[200:]).task_logits
    for t, task in enumerate(LABEL_SETS):
        accuracy = (logits[task].argmax(-1) == labels[200:, t]).float().mean().item()
        assert accuracy > 0.9, (task, accuracy)


def test_saving_keeps_the_tasks_in_their_order(tmp_path):
    """JSON configs are written with sorted keys: the tasks, whose order numbers the codes and the prior's outputs,
    must come back in the order they were given, not sorted by name."""
    label_sets = {"sentence": ["s0", "s1"], "arousal": ["low", "high"], "gender": ["female", "male"]}
    GenSERConfig(encoder_config=tiny_wav2vec2_config(), label_sets=label_sets).save_pretrained(tmp_path)
    reloaded = GenSERConfig.from_pretrained(tmp_path)
    assert list(reloaded.label_sets) == ["sentence", "arousal", "gender"] and reloaded.label_sets == label_sets
    assert reloaded.id2label == {0: "s0", 1: "s1"}


def test_label_sets_are_checked():
    with pytest.raises(ValueError, match="at least 2 labels"):
        GenSERConfig(label_sets={"emotion": ["a", "b"], "gender": ["f"]})
    with pytest.raises(ValueError, match="must have the labels of id2label"):
        GenSERConfig(label_sets=LABEL_SETS, id2label={0: "x", 1: "y", 2: "z"})
    with pytest.raises(ValueError, match='"concat" or "tuple"'):
        GenSERConfig(label_sets=LABEL_SETS, multi_task_codes="sum")
    config = GenSERConfig(label_sets=LABEL_SETS)  # id2label follows the first task
    assert config.id2label == {0: "anger", 1: "neutral", 2: "sadness"}
    assert config.tasks == LABEL_SETS
    assert GenSERConfig(id2label={0: "a", 1: "b"}).tasks == {"label": ["a", "b"]}


def test_pipeline_returns_every_task_behind_an_option_and_the_first_task_otherwise(tmp_path):
    from transformers import Wav2Vec2FeatureExtractor

    save_genser(
        tmp_path, model=make_model("concat"), feature_extractor=Wav2Vec2FeatureExtractor(return_attention_mask=True)
    )
    classifier = genser_classifier(str(tmp_path))
    clip = tone(300.0, seconds=2.5)
    with torch.no_grad():
        inputs = classifier.feature_extractor(clip, sampling_rate=16000, return_tensors="pt")
        expected = classifier.model(**inputs).task_logits

    default = classifier(clip, top_k=None)
    assert [entry["label"] for entry in default] == sorted(
        LABEL_SETS["emotion"], key=lambda label: -expected["emotion"][0, LABEL_SETS["emotion"].index(label)]
    )
    both = classifier(clip, top_k=None, return_tasks=True)
    assert list(both) == ["emotion", "gender"] and both["emotion"] == default
    probabilities = expected["gender"][0].softmax(-1)
    for entry in both["gender"]:
        assert entry["score"] == pytest.approx(
            probabilities[LABEL_SETS["gender"].index(entry["label"])].item(), abs=1e-6
        )

    windows = classifier(clip, top_k=None, return_tasks=True, segment_length_s=1.0, return_segments=True)
    assert list(windows["scores"]) == ["emotion", "gender"] and len(windows["segments"]) == 3
    assert all(list(segment["scores"]) == ["emotion", "gender"] for segment in windows["segments"])
    # The trajectory is the first task's: its similarities on its own slice of the concatenated codes.
    traced = classifier(clip, top_k=None, return_trajectory=True)
    with torch.no_grad():
        trajectory = classifier.model(**inputs, output_trajectory=True).trajectory
    columns, codes = classifier.model.task_code_slice(0)
    normalize = torch.nn.functional.normalize
    similarities = normalize(trajectory[0, :, columns], dim=-1) @ normalize(codes, dim=-1).T
    for index, label in enumerate(LABEL_SETS["emotion"]):
        assert traced["trajectory"]["similarities"][label] == pytest.approx(similarities[:, index].tolist(), abs=1e-5)
    assert traced["scores"] == default

    tuple_dir = tmp_path / "tuple"
    save_genser(tuple_dir, model=make_model("tuple"), feature_extractor=Wav2Vec2FeatureExtractor(return_attention_mask=True))
    with pytest.raises(ValueError, match="return_trajectory is available for classification models with one code per"):
        genser_classifier(str(tuple_dir))(clip, return_trajectory=True)


def test_return_tasks_is_refused_for_a_single_task_model(tmp_path):
    classifier = genser_classifier(str(save_genser(tmp_path)))
    with pytest.raises(ValueError, match="needs a multi-task Gen-SER model"):
        classifier(tone(300.0), return_tasks=True)


@pytest.mark.parametrize("protocol", ["leave_one_speaker_out", "held_out_speakers"])
def test_training_reads_several_label_columns_and_the_card_lists_every_task(protocol, tmp_path):
    from huggingface_hub import ModelCard

    from training import run_genser
    from training.synthetic_corpus import generate_corpus

    corpus = generate_corpus(tmp_path / "corpus", num_speakers=3, num_sentences=2, seed=0)
    metrics = run_genser.main(
        [
            "--dataset_name", str(corpus),
            "--task_columns", "sentence",
            "--evaluation_protocol", protocol,
            "--eval_fraction", "0.34",
            "--feature_cache_dir", str(tmp_path / "cache"),
            "--num_example_predictions", "1",
            "--output_dir", str(tmp_path / "model"),
            "--num_train_epochs", "2",
            "--per_device_train_batch_size", "8",
            "--learning_rate", "1e-3",
            "--eval_strategy", "no",
            "--save_strategy", "no",
            "--report_to", "none",
            "--config_overrides", "encoding_dim=32,head_hidden_size=32,multi_task_codes=concat",
        ]
    )  # fmt: skip
    if protocol == "leave_one_speaker_out":
        assert 0 <= metrics["loso_unweighted_accuracy"] <= 1 and 0 <= metrics["loso_sentence_unweighted_accuracy"] <= 1
    card = ModelCard.load(tmp_path / "model" / "README.md")
    results = card.data.eval_results
    ua = [result for result in results if result.metric_type == "unweighted_accuracy"]
    assert [result.task_name for result in ua] == ["Speech emotion recognition", "sentence classification"]
    assert ua[0].metric_name.endswith(", label") and ua[1].metric_name.endswith(", sentence")
    assert ua[0].dataset_split != ua[1].dataset_split  # so the Hub's model-index keeps them apart
    assert "label: anger" in card.text and "sentence: sent00, sent01" in card.text
    classifier = genser_classifier(str(tmp_path / "model"))
    assert classifier.model.config.label_sets["sentence"] == ["sent00", "sent01"]
    scores = classifier(tone(200.0), top_k=None, return_tasks=True)
    assert [len(scores[task]) for task in ("label", "sentence")] == [5, 2]


def test_task_columns_need_the_feature_cache(tmp_path):
    from training import run_genser

    with pytest.raises(ValueError, match="--task_columns .* cached features"):
        run_genser.main(["--output_dir", str(tmp_path), "--task_columns", "sentence", "--use_feature_cache", "false"])


def test_a_per_task_prior_multiplies_each_tasks_softmax():
    model = make_model("concat")  # the default prior
    assert model.prior.out_features == 3 + 2
    logits = torch.tensor([[1.0, 0.0, -1.0, 0.5, -0.5]])
    emotion, gender = logits[:, :3].softmax(-1), logits[:, 3:].softmax(-1)
    joint = model.prior_log_probabilities(logits).exp().reshape(1, 3, 2)
    torch.testing.assert_close(joint, emotion[:, :, None] * gender[:, None, :])
    # Its expected code is, on each task's slice, that task's expected code.
    expected = model.prior_mean(logits)
    codes = model.class_codes.reshape(3, 2, -1)
    torch.testing.assert_close(expected[:, :128], emotion @ codes[:, 0, :128])
    torch.testing.assert_close(expected[:, 128:], gender @ codes[0, :, 128:])
    assert make_model("concat", multi_task_prior="joint").prior.out_features == 3 * 2  # one logit per label tuple


def test_a_missing_label_is_marginalised_and_every_label_gives_the_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(4, 6)
    labels = torch.tensor([[0, 1], [2, 0], [1, 1], [2, 1]])
    model = make_model("concat")
    expected = torch.nn.functional.cross_entropy(logits, model.class_indices(labels))
    torch.testing.assert_close(observed_label_nll(logits.log_softmax(-1), labels, [3, 2]), expected)
    # Without the emotion label, the gender's probability: the tuples' summed over the emotions.
    gender = logits.log_softmax(-1).reshape(4, 3, 2).logsumexp(1)
    torch.testing.assert_close(
        observed_label_nll(logits.log_softmax(-1), torch.tensor([[MISSING_LABEL, 1]] * 4), [3, 2]), -gender[:, 1].mean()
    )
    # A per-task prior: the sum of each task's cross-entropy, and a missing task drops out.
    prior = torch.randn(4, 5)
    per_task = model.prior_log_probabilities(prior)
    emotion_ce = torch.nn.functional.cross_entropy(prior[:, :3], labels[:, 0])
    gender_ce = torch.nn.functional.cross_entropy(prior[:, 3:], labels[:, 1])
    torch.testing.assert_close(observed_label_nll(per_task, labels, [3, 2]), emotion_ce + gender_ce)
    only_gender = labels.clone()
    only_gender[:, 0] = MISSING_LABEL
    torch.testing.assert_close(observed_label_nll(per_task, only_gender, [3, 2]), gender_ce)


def test_a_missing_tasks_slice_is_left_out_of_the_target_matching():
    model = make_model("concat")
    labels = torch.tensor([[MISSING_LABEL, 1], [2, 0]])
    observed = model.observed_columns(labels)
    assert observed[0].tolist() == [False] * 128 + [True] * 128 and observed[1].all()
    assert model.observed_columns(torch.tensor([[0, 1]])) is None
    torch.manual_seed(0)
    prediction, terminal = torch.randn(2, 256), torch.randn(2, 256)
    changed = prediction.clone()
    changed[0, :128] = 5.0  # only where the first clip has no label
    for loss in ("mse", "cosine"):
        error = target_matching_error(prediction, terminal, loss, observed)
        assert error == target_matching_error(changed, terminal, loss, observed)
        assert error != target_matching_error(changed, terminal, loss)
    every = torch.ones(2, 256, dtype=torch.bool)
    torch.testing.assert_close(
        target_matching_error(prediction, terminal, "mse", every), torch.nn.functional.mse_loss(prediction, terminal)
    )


def test_labels_missing_where_they_cannot_be_are_refused():
    features = torch.randn(2, 3, tiny_wav2vec2_config().hidden_size)
    with pytest.raises(ValueError, match="need multi_task_codes='concat'"):
        make_model("tuple").train()(pooled_layer_features=features, labels=torch.tensor([[MISSING_LABEL, 1], [0, 0]]))
    with pytest.raises(ValueError, match="1 clip\\(s\\) have no label for any task"):
        make_model("concat").train()(
            pooled_layer_features=features, labels=torch.tensor([[MISSING_LABEL, MISSING_LABEL], [0, 0]])
        )
    single = GenSERForAudioClassification(
        GenSERConfig(encoder_config=tiny_wav2vec2_config(), id2label={0: "a", 1: "b"})
    ).train()
    with pytest.raises(ValueError, match="no label for any task"):
        single(pooled_layer_features=features, labels=torch.tensor([MISSING_LABEL, 1]))


def test_top_k_is_clamped_per_task_not_to_the_first_tasks_label_count(tmp_path):
    from transformers import Wav2Vec2FeatureExtractor

    # The first task has 2 labels, the second 3: top_k=3 gives every label of each task.
    label_sets = {"gender": ["female", "male"], "emotion": ["anger", "neutral", "sadness"]}
    torch.manual_seed(0)
    model = GenSERForAudioClassification(GenSERConfig(encoder_config=tiny_wav2vec2_config(), label_sets=label_sets))
    save_genser(tmp_path, model=model.eval(), feature_extractor=Wav2Vec2FeatureExtractor(return_attention_mask=True))
    classifier = genser_classifier(str(tmp_path))
    for top_k in (3, None):
        scores = classifier(tone(300.0), top_k=top_k, return_tasks=True)
        assert [len(scores[task]) for task in label_sets] == [2, 3]
    assert [len(task) for task in classifier(tone(300.0), top_k=1, return_tasks=True).values()] == [1, 1]
