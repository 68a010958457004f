"""`genser-annotate --adapt`: a first pass computes the input's statistics (per folder with --adapt_by folder), every
clip is classified with them, exactly as the pipeline does with `collection_statistics`; resumable like the rest."""

import json
import shutil

import pytest
import torch

from conftest import genser_classifier, run, save_domain_model, save_genser, table, tone
from pipelines.annotation_inputs import decode


@pytest.fixture(scope="module")
def adaptive_model_dir(tmp_path_factory):
    return save_domain_model(tmp_path_factory.mktemp("adaptive"))


def expected_scores(classifier, corpus, paths, statistics) -> dict:  # noqa: F811
    """Each file's scores from the pipeline itself, with `statistics` (2 s windows, as `run` annotates)."""
    rate = classifier.feature_extractor.sampling_rate
    scores = {}
    for path in paths:
        clip = {"array": decode(str(corpus / path), rate), "sampling_rate": rate}
        result = classifier(clip, top_k=3, segment_length_s=2.0, domain_statistics=statistics)
        scores[path] = {item["label"]: item["score"] for item in result}
    return scores


def readable(corpus):  # noqa: F811
    return sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.wav") if p.name != "broken.wav")


def clips_of(corpus, paths, rate):  # noqa: F811
    return [{"array": decode(str(corpus / path), rate), "sampling_rate": rate} for path in paths]


def test_adapt_classifies_every_file_with_the_inputs_own_statistics(adaptive_model_dir, corpus, tmp_path):  # noqa: F811
    summary = run(adaptive_model_dir, tmp_path / "adapted", folder=str(corpus), adapt=True)
    assert summary["files"] == 11 and summary["errors"] == 1  # the broken file is an error row, not a failure
    classifier = genser_classifier(str(adaptive_model_dir))
    rate = classifier.feature_extractor.sampling_rate
    paths = readable(corpus)
    statistics = classifier.collection_statistics(clips_of(corpus, paths, rate), segment_length_s=2.0)
    expected = expected_scores(classifier, corpus, paths, statistics)
    files = {row["source"]: row["scores"] for row in table(tmp_path / "adapted", "files")}
    assert set(files) == set(paths)
    for path in paths:
        assert files[path] == pytest.approx(expected[path], abs=1e-5)
    record = json.loads((tmp_path / "adapted" / "adaptation" / "statistics.json").read_text())
    prior_windows = classifier.model.config.statistics_prior_windows
    windows = 10 + 3  # 10 clips and a recording of 3 windows
    assert record == {
        "prior_windows": prior_windows,
        "whole_input": {"windows": windows, "prior": "training pool", "own_weight": round(windows / (windows + prior_windows), 4)},
    }
    # Without --adapt the same files get other scores (the training pool's statistics).
    run(adaptive_model_dir, tmp_path / "plain", folder=str(corpus))
    plain = {row["source"]: row["scores"] for row in table(tmp_path / "plain", "files")}
    assert any(plain[path] != pytest.approx(files[path], abs=1e-5) for path in paths)


def test_adapt_by_folder_uses_each_folders_statistics_shrunk_towards_the_whole_inputs(
    adaptive_model_dir, corpus, tmp_path  # noqa: F811
):
    run(adaptive_model_dir, tmp_path / "by-folder", folder=str(corpus), adapt=True, adapt_by="folder")
    classifier = genser_classifier(str(adaptive_model_dir))
    rate = classifier.feature_extractor.sampling_rate
    paths = readable(corpus)
    whole = classifier.collection_statistics(clips_of(corpus, paths, rate), segment_length_s=2.0)
    files = {row["source"]: row["scores"] for row in table(tmp_path / "by-folder", "files")}
    for folder in ("speaker0", "speaker1", "speaker2"):
        members = [path for path in paths if path.startswith(folder + "/")]
        moments = classifier.collection_moments(clips_of(corpus, members, rate), segment_length_s=2.0)
        statistics = classifier.model.collection_statistics_from_moments(*moments, prior=whole)
        # The pipeline's own way to a speaker's (a folder's) statistics leaning on the collection's.
        leaning = classifier.collection_statistics(clips_of(corpus, members, rate), segment_length_s=2.0, prior=whole)
        torch.testing.assert_close(leaning, statistics)
        for path, scores in expected_scores(classifier, corpus, members, statistics).items():
            assert files[path] == pytest.approx(scores, abs=1e-5)
    record = json.loads((tmp_path / "by-folder" / "adaptation" / "statistics.json").read_text())
    windows = {str(corpus / "speaker0"): 4, str(corpus / "speaker1"): 3, str(corpus / "speaker2"): 3, str(corpus / "long"): 3}
    assert {folder: entry["windows"] for folder, entry in record["domains"].items()} == windows
    assert all(entry["prior"] == "whole input" for entry in record["domains"].values())


def test_adapt_by_a_manifest_column_groups_clips_as_folders_do(adaptive_model_dir, corpus, tmp_path):  # noqa: F811
    """A manifest's speaker column naming each file's folder gives the per-folder run's statistics and scores; a row
    without a speaker becomes an error row, never a clip read with other statistics."""
    run(adaptive_model_dir, tmp_path / "by-folder", folder=str(corpus), adapt=True, adapt_by="folder")
    paths = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.wav"))
    rows = [f"{path},{path.split('/')[0]}\n" for path in paths] + ["speaker0/a.wav,\n"]
    manifest = corpus / "calls.csv"
    manifest.write_text("path,speaker\n" + "".join(rows))
    try:
        run(adaptive_model_dir, tmp_path / "by-column", manifest=str(manifest), adapt=True, adapt_by="speaker")
    finally:
        manifest.unlink()
    by_folder = {row["source"]: row["scores"] for row in table(tmp_path / "by-folder", "files")}
    by_column = {row["source"]: row["scores"] for row in table(tmp_path / "by-column", "files")}
    assert set(by_column) == set(by_folder) and len(by_column) == len(readable(corpus))
    for path, scores in by_folder.items():
        assert by_column[path] == pytest.approx(scores, abs=1e-5)
    (unnamed,) = [row for row in table(tmp_path / "by-column", "errors") if row["index"] == len(paths)]
    assert "no value in column 'speaker'" in unnamed["error"]
    record = json.loads((tmp_path / "by-column" / "adaptation" / "statistics.json").read_text())
    assert {domain: entry["windows"] for domain, entry in record["domains"].items()} == {
        "speaker0": 4, "speaker1": 3, "speaker2": 3, "long": 3,
    }  # fmt: skip


def test_adapt_by_a_column_needs_that_column_a_manifest_or_dataset_and_adapt(
    adaptive_model_dir, corpus, tmp_path  # noqa: F811
):
    manifest = tmp_path / "calls.csv"
    manifest.write_text(f"path\n{corpus / 'speaker0' / 'a.wav'}\n")
    with pytest.raises(ValueError, match="no column 'speaker'.*adapt_by"):
        run(adaptive_model_dir, tmp_path / "out", manifest=str(manifest), adapt=True, adapt_by="speaker")
    with pytest.raises(ValueError, match="only a --manifest or --dataset has columns"):
        run(adaptive_model_dir, tmp_path / "out", folder=str(corpus), adapt=True, adapt_by="speaker")
    with pytest.raises(ValueError, match="it needs --adapt"):
        run(adaptive_model_dir, tmp_path / "out", manifest=str(manifest), adapt_by="folder")
    assert not (tmp_path / "out").exists()


def test_an_adapted_run_stopped_in_either_pass_and_resumed_equals_an_uninterrupted_one(
    adaptive_model_dir, corpus, tmp_path  # noqa: F811
):
    reference = tmp_path / "reference"
    run(adaptive_model_dir, reference, folder=str(corpus), adapt=True)
    resumed = tmp_path / "resumed"
    stopped = run(adaptive_model_dir, resumed, folder=str(corpus), adapt=True, max_shards=2)  # half the first pass
    assert stopped["adaptation_shards"] == 2 and not (resumed / "files").exists()
    run(adaptive_model_dir, resumed, folder=str(corpus), adapt=True, max_shards=3)  # first pass done, one shard
    run(adaptive_model_dir, resumed, folder=str(corpus), adapt=True)
    for name in ("windows", "files", "errors"):
        assert table(resumed, name) == table(reference, name)
    # The first pass is part of the run: changing the adaptation is refused on resume.
    with pytest.raises(ValueError, match="adapt_by"):
        run(adaptive_model_dir, resumed, folder=str(corpus), adapt=True, adapt_by="folder")


def test_adapt_needs_a_model_trained_with_domain_normalisation(corpus, tmp_path):  # noqa: F811
    plain = save_genser(tmp_path / "plain-model")
    with pytest.raises(ValueError, match="--adapt needs a Gen-SER model trained with domain normalisation"):
        run(plain, tmp_path / "out", folder=str(corpus), adapt=True)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match="--adapt_by must be one of"):
        run(plain, tmp_path / "out", folder=str(corpus), adapt=True, adapt_by="speaker")


def hub_style_dataset(corpus, folder):  # noqa: F811
    """speaker0's clips and one corrupted file as a dataset laid out as on the Hub (Parquet under data/, audio bytes
    embedded), which the annotator streams."""
    from datasets import Audio, Dataset

    clips = sorted(corpus.glob("speaker0/*.wav"))
    rows = {
        "id": [f"utt{index}" for index in range(len(clips) + 1)],
        "audio": [{"bytes": path.read_bytes(), "path": path.name} for path in clips] + [{"bytes": b"junk", "path": "x.wav"}],
        "speaker": [("a", "b")[index % 2] for index in range(len(clips) + 1)],
    }
    (folder / "data").mkdir(parents=True)
    Dataset.from_dict(rows).cast_column("audio", Audio()).to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    return folder


@pytest.mark.parametrize("kind", ["manifest", "dataset", "audiofolder"])
def test_adapt_annotates_every_input_kind_and_resumes_in_either_pass(adaptive_model_dir, corpus, tmp_path, kind):  # noqa: F811
    """A stream is read once per pass (the first pass used to exhaust it, leaving the second nothing to annotate)."""
    clips = sorted(corpus.glob("speaker0/*.wav"))
    if kind == "manifest":
        manifest = tmp_path / "calls.csv"
        manifest.write_text("path,id\n" + "".join(f"{path},utt{index}\n" for index, path in enumerate(clips)))
        source = {"manifest": str(manifest), "id_column": "id"}
    elif kind == "dataset":
        source = {"dataset": str(hub_style_dataset(corpus, tmp_path / "org--calls")), "id_column": "id"}
    else:  # an audiofolder read by `load_dataset`, streamed like a Hub dataset
        folder = tmp_path / "audiofolder"
        shutil.copytree(corpus / "speaker0", folder)
        source = {"dataset": str(folder)}
    options = {**source, "shard_size": 2, "adapt": True}
    reference = tmp_path / "reference"
    summary = run(adaptive_model_dir, reference, **options)
    assert summary["files"] == len(clips) and summary["finished_shards"] == summary["num_shards"]
    classifier = genser_classifier(str(adaptive_model_dir))
    statistics = classifier.collection_statistics([str(path) for path in clips], segment_length_s=2.0)
    expected = expected_scores(classifier, corpus, [path.relative_to(corpus).as_posix() for path in clips], statistics)
    files = [row["scores"] for row in table(reference, "files")]
    assert files == [pytest.approx(scores, abs=1e-5) for scores in expected.values()]

    resumed, num_shards = tmp_path / "resumed", summary["num_shards"]
    assert run(adaptive_model_dir, resumed, **options, max_shards=1)["adaptation_shards"] == 1  # stopped in pass 1
    stopped = run(adaptive_model_dir, resumed, **options, max_shards=num_shards)  # pass 1 done, one shard of pass 2
    assert stopped["finished_shards"] == 1 and stopped["new_adaptation_shards"] == num_shards - 1
    run(adaptive_model_dir, resumed, **options)
    for name in ("windows", "files", "errors"):
        assert table(resumed, name) == table(reference, name)


def test_a_dataset_adapted_by_its_speaker_column_resumes_in_either_pass(adaptive_model_dir, corpus, tmp_path):  # noqa: F811
    options = {"dataset": str(hub_style_dataset(corpus, tmp_path / "calls")), "id_column": "id", "shard_size": 2}
    options.update(adapt=True, adapt_by="speaker")
    reference = tmp_path / "reference"
    summary = run(adaptive_model_dir, reference, **options)
    classifier = genser_classifier(str(adaptive_model_dir))
    clips = sorted(corpus.glob("speaker0/*.wav"))
    whole = classifier.collection_statistics([str(path) for path in clips], segment_length_s=2.0)
    files = {row["source"]: row["scores"] for row in table(reference, "files")}
    for speaker in ("a", "b"):
        members = [path.relative_to(corpus).as_posix() for path in clips[("a", "b").index(speaker) :: 2]]
        rate = classifier.feature_extractor.sampling_rate
        moments = classifier.collection_moments(clips_of(corpus, members, rate), segment_length_s=2.0)
        statistics = classifier.model.collection_statistics_from_moments(*moments, prior=whole)
        for index, scores in enumerate(expected_scores(classifier, corpus, members, statistics).values()):
            assert files[f"utt{2 * index + ('a', 'b').index(speaker)}"] == pytest.approx(scores, abs=1e-5)
    resumed = tmp_path / "resumed"
    run(adaptive_model_dir, resumed, **options, max_shards=1)  # stopped in the first pass
    run(adaptive_model_dir, resumed, **options, max_shards=summary["num_shards"])  # and in the second
    run(adaptive_model_dir, resumed, **options)
    for name in ("windows", "files", "errors"):
        assert table(resumed, name) == table(reference, name)


def test_moments_of_another_model_or_other_options_are_refused(adaptive_model_dir, corpus, tmp_path):  # noqa: F811
    import torch

    from modeling_genser import GenSERForAudioClassification
    output_dir = tmp_path / "labels"
    run(adaptive_model_dir, output_dir, folder=str(corpus), adapt=True, max_shards=1)  # shard 0's moments only
    other = save_domain_model(tmp_path / "other")
    model = GenSERForAudioClassification.from_pretrained(other)
    with torch.no_grad():
        model.conditioner.domain_statistics.mul_(2)
    model.save_pretrained(other)
    with pytest.raises(ValueError, match="another model or other options.*model_sha256"):
        run(other, output_dir, folder=str(corpus), adapt=True)
    with pytest.raises(ValueError, match="another model or other options.*adapt_by: 'collection' -> 'folder'"):
        run(adaptive_model_dir, output_dir, folder=str(corpus), adapt=True, adapt_by="folder")
    # The moments themselves say what shaped them, whatever `run.json` says.
    (output_dir / "run.json").unlink()
    with pytest.raises(ValueError, match="moments of shard 0 computed with another model or other options"):
        run(other, output_dir, folder=str(corpus), adapt=True)
    (output_dir / "run.json").unlink()
    with pytest.raises(ValueError, match="moments of shard 0 .*\\(adapt_by\\)"):
        run(adaptive_model_dir, output_dir, folder=str(corpus), adapt=True, adapt_by="folder")


def test_the_summary_counts_each_pass_and_an_older_runs_record_resumes(adaptive_model_dir, corpus, tmp_path, capsys):  # noqa: F811
    summary = run(adaptive_model_dir, tmp_path / "adapted", folder=str(corpus), adapt=True)
    assert summary["num_shards"] == 4 and summary["new_adaptation_shards"] == 4 and summary["new_shards"] == 4
    assert "adaptation pass 4 shards in " in capsys.readouterr().err
    assert summary["adaptation_seconds"] < summary["seconds"] and summary["audio_hours_per_hour"] > 0
    assert json.loads((tmp_path / "adapted" / "run.json").read_text())["format"] == 2

    # A run recorded before run.json had a format, or the --adapt options: they read as their defaults then.
    plain = tmp_path / "plain"
    run(adaptive_model_dir, plain, folder=str(corpus), max_shards=2)
    record = json.loads((plain / "run.json").read_text())
    (plain / "run.json").write_text(json.dumps({k: v for k, v in record.items() if k not in ("format", "adapt", "adapt_by")}))
    assert run(adaptive_model_dir, plain, folder=str(corpus))["finished_shards"] == 4
    (plain / "run.json").write_text(json.dumps({**record, "format": 99}))
    with pytest.raises(ValueError, match="newer genser-annotate \\(run.json format 99"):
        run(adaptive_model_dir, plain, folder=str(corpus))


def test_a_lone_long_file_is_shrunk_towards_the_whole_input_not_standardised_to_plus_minus_one(
    adaptive_model_dir, corpus, tmp_path  # noqa: F811
):
    """A folder of one 4 s file read as 2 windows: its own statistics alone would put each feature of both windows at
    exactly -1 or +1; shrunk towards the whole input's by its 2 windows, it stays a condition like the training ones,
    and statistics.json says what each folder got."""
    import torch

    from pipelines.annotation_inputs import decode as decode_file
    from training.synthetic_corpus import write_wav

    folder = tmp_path / "recordings"
    shutil.copytree(corpus / "speaker0", folder / "speaker0")
    (folder / "call").mkdir()
    write_wav(folder / "call" / "long.wav", tone(220.0, seconds=4.0, seed=7))
    output_dir = tmp_path / "labels"
    run(adaptive_model_dir, output_dir, folder=str(folder), adapt=True, adapt_by="folder")
    classifier = genser_classifier(str(adaptive_model_dir))
    model, prior_windows = classifier.model, classifier.model.config.statistics_prior_windows
    record = json.loads((output_dir / "adaptation" / "statistics.json").read_text())
    call = record["domains"][str(folder / "call")]
    assert call == {"windows": 2, "prior": "whole input", "own_weight": round(2 / (2 + prior_windows), 4)}
    assert record["whole_input"]["prior"] == "training pool" and record["whole_input"]["windows"] == 4 + 2

    clip = {"array": decode_file(str(folder / "call" / "long.wav"), 16000), "sampling_rate": 16000}
    with torch.no_grad():
        windows = [w for w in classifier.preprocess(clip, segment_length_s=2.0)]
        pooled = torch.cat([model.pooled_layer_features(w["input_values"], w["attention_mask"]) for w in windows])
    alone = (pooled - pooled.mean(0)) / pooled.std(0, unbiased=False).clamp_min(1e-6)
    assert alone.abs().sub(1).abs().max() < 1e-3  # the defect: its own statistics alone make every feature +-1
    whole = classifier.collection_statistics([str(path) for path in sorted(folder.rglob("*.wav"))], segment_length_s=2.0)
    shrunk = model.collection_statistics_from_moments(*model.domain_moments(pooled), prior=whole)
    standardised = (pooled - shrunk[0]) / shrunk[1]
    assert standardised.abs().sub(1).abs().median() > 0.05  # not a +-1 condition
    files = {row["source"]: row["scores"] for row in table(output_dir, "files")}
    expected = classifier(clip, top_k=3, segment_length_s=2.0, domain_statistics=shrunk)
    assert files["call/long.wav"] == pytest.approx({item["label"]: item["score"] for item in expected}, abs=1e-5)


def test_adapt_encodes_each_window_once_and_removes_the_features_unless_kept(
    adaptive_model_dir, corpus, tmp_path, monkeypatch  # noqa: F811
):
    from pipelines.audio_classification_genser import GenSERAudioClassificationPipeline

    encoded = []
    window_inputs = GenSERAudioClassificationPipeline._window_inputs
    monkeypatch.setattr(
        GenSERAudioClassificationPipeline, "_window_inputs", lambda self, arrays: encoded.extend(arrays) or window_inputs(self, arrays)
    )
    plain = run(adaptive_model_dir, tmp_path / "plain", folder=str(corpus))
    plain_windows, encoded[:] = len(encoded), []
    assert plain_windows == plain["windows"] == 13
    reference = tmp_path / "reference"
    run(adaptive_model_dir, reference, folder=str(corpus), adapt=True)
    assert len(encoded) == plain_windows  # the adaptation pass's features serve the classification pass
    assert not list((reference / "adaptation").glob("features-*"))  # removed once every shard is done

    kept = tmp_path / "kept"
    run(adaptive_model_dir, kept, folder=str(corpus), adapt=True, keep_features=True, max_shards=4)  # the first pass
    features = sorted(path.name for path in (kept / "adaptation").glob("features-*.safetensors"))
    assert features == [f"features-{shard:05d}.safetensors" for shard in range(4)]
    (kept / "adaptation" / features[1]).unlink()  # that shard is classified from its audio
    encoded[:] = []
    run(adaptive_model_dir, kept, folder=str(corpus), adapt=True, keep_features=True)
    assert 0 < len(encoded) < plain_windows
    assert len(list((kept / "adaptation").glob("features-*"))) == 3
    for name in ("windows", "files", "errors"):
        ours, theirs = table(kept, name), table(reference, name)
        assert [(row["source"], row.get("start")) for row in ours] == [(row["source"], row.get("start")) for row in theirs]
        for mine, other in zip(ours, theirs):
            assert mine.get("scores") == pytest.approx(other.get("scores"), abs=1e-5)
    with pytest.raises(ValueError, match="--keep_features .* needs --adapt"):
        run(adaptive_model_dir, tmp_path / "no-adapt", folder=str(corpus), keep_features=True)


def test_the_encoder_precision_shapes_the_rows_and_the_moments(adaptive_model_dir, corpus, tmp_path):  # noqa: F811
    output_dir = tmp_path / "bf16"
    run(adaptive_model_dir, output_dir, folder=str(corpus), adapt=True, encoder_precision="bfloat16", max_shards=1)
    assert json.loads((output_dir / "run.json").read_text())["encoder_precision"] == "bfloat16"
    with pytest.raises(ValueError, match="encoder_precision: 'bfloat16' -> 'float32'"):
        run(adaptive_model_dir, output_dir, folder=str(corpus), adapt=True)
    run(adaptive_model_dir, output_dir, folder=str(corpus), adapt=True, encoder_precision="bfloat16")
    reference = tmp_path / "float32"
    run(adaptive_model_dir, reference, folder=str(corpus), adapt=True)
    ours, theirs = table(output_dir, "files"), table(reference, "files")
    assert [row["source"] for row in ours] == [row["source"] for row in theirs]
    assert any(mine["scores"] != other["scores"] for mine, other in zip(ours, theirs))
    for mine, other in zip(ours, theirs):
        assert mine["scores"] == pytest.approx(other["scores"], abs=0.05)
