"""Adapting a saved model to a user's labelled clips (`genser-adapt`): what it keeps, what it adds, new labels."""

import math
import re

import pytest
import torch
from huggingface_hub import ModelCard

import training.sources as sources
from conftest import SYNTHETIC_VOCABULARY, classify_from_offline_hub_cache, tiny_wav2vec2_config
from modeling_genser import GenSERConfig, GenSERForAudioClassification
from training.folds import chosen_budget
from training.run_genser import adapt
from training.run_genser import main as run_genser
from training.synthetic_corpus import generate_corpus

QUICK = [
    "--num_folds", "2", "--max_steps", "6", "--max_steps_candidates", "2,6", "--per_device_train_batch_size", "8",
    "--num_example_predictions", "0",
]  # fmt: skip
# The synthetic corpus's labels onto the release's, but for fear, which becomes the user's own "contempt".
MAPPING = ",".join(f"{name}={'contempt' if name == 'fear' else target}" for name, target in SYNTHETIC_VOCABULARY)


def two_task_model(multi_task_prior: str, multi_task_codes: str) -> GenSERForAudioClassification:
    config = GenSERConfig(
        encoder_config=tiny_wav2vec2_config(), label_sets={"emotion": ["angry", "happy", "sad"], "arousal": ["low", "high"]},
        encoding_dim=32, head_hidden_size=32, domain_normalization=True, domain_names=["a", "b"],
        multi_task_prior=multi_task_prior, multi_task_codes=multi_task_codes,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GenSERForAudioClassification(config).eval()
    torch.nn.init.normal_(model.prior.domain_weight)  # trained residuals, so that their rows are checked too
    return model


@pytest.mark.parametrize("prior, codes", [("per_task", "concat"), ("joint", "concat"), ("joint", "tuple")])
def test_a_new_label_gets_the_next_code_and_leaves_every_old_code_and_logit_unchanged(prior, codes):
    model = two_task_model(prior, codes)
    condition = torch.randn(5, model.conditioner.condition_dim)
    domains = torch.tensor([0, 1, -1, 0, 1])
    old_codes, old_logits = model.class_codes.clone(), model.prior(condition, domains)
    model.add_labels(["contempt"])
    assert model.config.id2label == {0: "angry", 1: "happy", 2: "sad", 3: "contempt"}
    assert model.config.label2id["contempt"] == 3 and list(model.config.label_sets) == ["emotion", "arousal"]
    assert model.config.label_sets["emotion"] == ["angry", "happy", "sad", "contempt"]
    # Label tuples are numbered with the emotion varying slowest: the new emotion's tuples come last.
    assert model.class_codes.shape == (8, 32) and torch.equal(model.class_codes[:6], old_codes)
    assert not any(torch.allclose(model.class_codes[6], code) for code in old_codes)
    logits = model.prior(condition, domains)
    if prior == "per_task":  # [emotions (the new one last), arousal levels]
        kept, new = torch.cat([logits[:, :3], logits[:, 4:]], 1), logits[:, 3:4]
    else:
        kept, new = logits[:, :6], logits[:, 6:]
    torch.testing.assert_close(kept, old_logits)
    assert torch.equal(new, torch.zeros_like(new))
    output = model(pooled_layer_features=torch.randn(5, 3, 32))
    assert output.task_logits["emotion"].shape == (5, 4) and output.task_logits["arousal"].shape == (5, 2)


def test_adding_labels_refuses_known_repeated_and_dimensional_ones():
    model = two_task_model("per_task", "concat")
    with pytest.raises(ValueError, match=r"\['sad'\] are labels of this model already"):
        model.add_labels(["sad", "contempt"])
    with pytest.raises(ValueError, match="must be distinct"):
        model.add_labels(["contempt", "contempt"])
    dimensional = GenSERForAudioClassification(
        GenSERConfig(encoder_config=tiny_wav2vec2_config(), id2label={0: "arousal"}, problem_type="regression",
                     encoding_dim=32, head_hidden_size=32, similarity_loss_weight=0)
    )  # fmt: skip
    with pytest.raises(ValueError, match="no labels to add"):
        dimensional.add_labels(["contempt"])
    assert math.prod(model.label_counts) == 6  # nothing was added by the refused calls


@pytest.fixture(scope="module")
def general_model(tmp_path_factory):
    """A small general model as `make main` trains the release: two corpora, emotions and arousal, domain
    normalisation and residual weights per corpus."""
    root = tmp_path_factory.mktemp("general")
    corpora = {
        name: sources.CorpusSource(
            str(generate_corpus(root / name, num_speakers=2, num_sentences=2, seed=seed)), "label", "speaker", name, "",
            "English", "test", SYNTHETIC_VOCABULARY,
        )
        for seed, name in enumerate(("big", "small"))
    }  # fmt: skip
    patch = pytest.MonkeyPatch()
    patch.setattr(sources, "CORPORA", {name: (source,) for name, source in corpora.items()})
    run_genser(
        ["--dataset_name", "big,small", "--task_columns", "arousal", "--domain_normalization", "true",
         "--domain_residuals", "true", "--evaluation_protocol", "leave_one_speaker_out", "--output_dir",
         str(root / "model"), "--feature_cache_dir", str(root / "cache"), "--eval_strategy", "no", "--report_to", "none",
         "--save_strategy", "no", "--learning_rate", "1e-2", "--config_overrides", "encoding_dim=32,head_hidden_size=32",
         *QUICK]
    )  # fmt: skip
    patch.undo()
    return root / "model"


@pytest.fixture(scope="module")
def user_clips(tmp_path_factory):
    """The user's own labelled clips: three speakers, in a folder named as their domain will be."""
    return generate_corpus(tmp_path_factory.mktemp("user") / "my_clips", num_speakers=3, num_sentences=1, seed=7)


def test_genser_adapt_keeps_what_the_model_carries_and_learns_a_new_domain_and_a_new_label(
    general_model, user_clips, tmp_path
):
    output_dir = tmp_path / "adapted"
    metrics = adapt(
        ["--model_name_or_path", str(general_model), "--dataset_name", str(user_clips), "--output_dir", str(output_dir),
         "--label_mapping", MAPPING, "--new_labels", "true", "--feature_cache_dir", str(tmp_path / "cache"), *QUICK]
    )  # fmt: skip
    assert "loso_unweighted_accuracy" in metrics  # validated on held-out speakers of the user's data
    # Against where it started: the saved model zero-shot on the same clips of the labels it had.
    assert 0 <= metrics["loso_before_adaptation_unweighted_accuracy"] <= 1
    assert 0 <= metrics["loso_after_adaptation_unweighted_accuracy"] <= 1
    general = GenSERForAudioClassification.from_pretrained(general_model)
    adapted = GenSERForAudioClassification.from_pretrained(output_dir)
    # Settings and tasks kept; the arousal task too, though the user's clips have no arousal label.
    for field in ("domain_normalization", "freeze_encoder", "layer_aggregation", "encoding_dim", "multi_task_codes"):
        assert getattr(adapted.config, field) == getattr(general.config, field), field
    assert list(adapted.config.label_sets) == ["emotion", "arousal"]
    assert adapted.config.label_sets["arousal"] == general.config.label_sets["arousal"]
    # The new label after the old ones, with a new code; the old codes unchanged.
    old_labels = general.config.label_sets["emotion"]
    assert adapted.config.label_sets["emotion"] == [*old_labels, "contempt"]
    assert torch.equal(adapted.class_codes[: len(general.class_codes)], general.class_codes)
    # The user's data is a domain of its own; the saved domains' residuals are exactly as saved (no clip of theirs,
    # no weight decay), the new one's trained.
    assert adapted.config.domain_names == ["big", "small", "my_clips"]
    old_rows = [*range(len(old_labels)), *range(len(old_labels) + 1, adapted.prior.out_features)]  # all but contempt's
    assert torch.equal(adapted.prior.domain_weight[:2, old_rows], general.prior.domain_weight)
    assert adapted.prior.domain_weight[2].abs().sum() > 0
    card = ModelCard.load(output_dir / "README.md")
    assert f"Adapted from `{general_model}`" in card.text and "new label(s) contempt" in card.text
    assert "new domain `my_clips`, with residual weights of its own" in card.text and card.data.datasets == ["my_clips"]
    assert re.search(r"Its step budget, [26], was chosen among --max_steps_candidates by these folds \(2 steps UA", card.text)
    before = metrics["loso_before_adaptation_unweighted_accuracy"]
    assert f"it scored UA {before:.4f} before this training" in card.text

    loaded = classify_from_offline_hub_cache(output_dir, tmp_path)
    assert loaded["pipeline_class"] == "GenSERAudioClassificationPipeline"
    assert {entry["label"] for entry in loaded["scores"]} == {*old_labels, "contempt"}


def test_adaptation_errors_say_what_to_do(general_model, user_clips, tmp_path):
    common = ["--dataset_name", str(user_clips), "--output_dir", str(tmp_path / "x"), *QUICK]
    going_on = ["--model_name_or_path", str(general_model), *common]
    with pytest.raises(ValueError, match=r"\['contempt'\] are not among the labels of .*--label_mapping.*--new_labels"):
        adapt([*going_on, "--label_mapping", MAPPING])
    with pytest.raises(ValueError, match=r"--label_mapping names \['fright'\], which no clip is labelled with"):
        adapt([*going_on, "--label_mapping", MAPPING.replace("fear=", "fright=")])
    with pytest.raises(ValueError, match=r"\['fear'\] have no entry in the label mapping"):
        adapt([*going_on, "--label_mapping", MAPPING.replace("fear=contempt,", "")])
    mapped = ",".join(f"{name}={target}" for name, target in SYNTHETIC_VOCABULARY)
    with pytest.raises(ValueError, match="--new_labels has nothing to add"):
        adapt([*going_on, "--label_mapping", mapped, "--new_labels", "true"])
    with pytest.raises(ValueError, match="genser-adapt goes on training a saved Gen-SER model"):
        adapt(common)
    with pytest.raises(ValueError, match="--new_labels adds labels to a saved model's"):
        run_genser([*common, "--new_labels", "true"])


def test_clips_without_speakers_are_validated_on_folds_of_clips_when_asked(general_model, user_clips, tmp_path):
    """A manifest that names no speaker: the speaker column's absence is an error naming the option, and
    `--group_column_name ""` validates on folds of clips, which the card says are not speaker-independent."""
    rows = (user_clips / "metadata.csv").read_text().splitlines()
    header = rows[0].split(",")
    keep = [header.index("file_name"), header.index("label")]
    manifest = user_clips / "no_speakers.csv"
    manifest.write_text("\n".join(",".join(row.split(",")[i] for i in keep) for row in rows).replace("file_name", "audio", 1))
    going_on = ["--model_name_or_path", str(general_model), "--dataset_name", str(manifest), "--label_mapping", MAPPING,
                "--new_labels", "true", "--feature_cache_dir", str(tmp_path / "cache"), *QUICK]  # fmt: skip
    with pytest.raises(ValueError, match="Column 'speaker' not found.*--group_column_name"):
        adapt([*going_on, "--output_dir", str(tmp_path / "x")])
    metrics = adapt([*going_on, "--output_dir", str(tmp_path / "clips"), "--group_column_name", ""])
    assert "loso_unweighted_accuracy" in metrics
    card = ModelCard.load(tmp_path / "clips" / "README.md")
    assert "cross-validation over clips, 2 folds" in {result.dataset_split for result in card.data.eval_results}
    assert "a speaker's clips may be on both sides of a fold" in card.text
    with pytest.raises(ValueError, match="without a speaker column .* give --num_folds"):
        adapt([*going_on, "--output_dir", str(tmp_path / "x"), "--group_column_name", "", "--num_folds", "0"])


def test_the_step_budget_is_the_best_by_its_folds_and_the_fewest_steps_on_a_tie():
    def scores(ua):
        return {"emotion": {"unweighted_accuracy": ua}, "arousal": {"unweighted_accuracy": 0.9}}

    assert chosen_budget({30: scores(0.6), 100: scores(0.7), 300: scores(0.65)}) == 100
    assert chosen_budget({30: scores(0.7), 100: scores(0.7), 300: scores(0.65)}) == 30
    assert chosen_budget({300: {"arousal": {"ccc": 0.5}}}) == 300  # a lone budget, a dimensional model's too


def test_step_budget_candidates_are_checked(tmp_path):
    common = ["--output_dir", str(tmp_path / "x"), "--report_to", "none"]
    with pytest.raises(ValueError, match="--max_steps_candidates takes positive step counts"):
        run_genser([*common, "--evaluation_protocol", "leave_one_speaker_out", "--max_steps_candidates", "0,30"])
    with pytest.raises(ValueError, match="--max_steps_candidates chooses .* leave_one_speaker_out folds"):
        run_genser([*common, "--max_steps_candidates", "30,100"])
