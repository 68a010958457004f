"""The bulk annotator: folder, manifest and streamed inputs, window rows, errors, resume, two processes."""

import csv
import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import datasets
import numpy as np
import pytest
import torch
from datasets import Audio, Dataset, load_dataset

from conftest import LABELS, genser_classifier, run, save_genser, table, tone
from modeling_genser import GenSERForAudioClassification
from pipelines.audio_input import load_audio
from pipelines.bulk_annotator import AnnotationArguments, ShardAnnotator
from training.data import cast_audio, decode_audio
from training.synthetic_corpus import write_wav

REPO = Path(__file__).resolve().parents[1]
NUM_READABLE = 11  # the corpus below: 10 clips and one long recording, plus one corrupted file


@pytest.fixture(scope="module")
def uninterrupted(model_dir, corpus, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("uninterrupted")
    return output_dir, run(model_dir, output_dir, folder=str(corpus))


def test_folder_gives_window_and_file_rows_and_an_errors_file(uninterrupted, corpus):
    output_dir, summary = uninterrupted
    assert summary["files"] == NUM_READABLE and summary["errors"] == 1
    assert summary["finished_shards"] == summary["num_shards"] == 4  # 12 files, 3 per shard

    with open(output_dir / "errors.csv", newline="") as handle:
        (error,) = list(csv.DictReader(handle))
    assert error["source"] == "speaker1/broken.wav" and "could not decode audio" in error["error"]

    windows, files = table(output_dir, "windows"), table(output_dir, "files")
    call = [row for row in windows if row["source"] == "long/call.wav"]
    assert [(row["start"], row["end"]) for row in call] == [(0.0, 2.0), (2.0, 4.0), (4.0, 5.0)]
    readable = sorted(
        path.relative_to(corpus).as_posix() for path in corpus.rglob("*.wav") if path.name != "broken.wav"
    )
    assert [row["source"] for row in files] == readable  # input order is sorted path order, each file once
    by_source = {row["source"]: row for row in files}
    assert by_source["long/call.wav"]["num_windows"] == 3 and by_source["long/call.wav"]["duration"] == 5.0
    for row in windows + files:
        assert set(row["scores"]) == set(LABELS.values())
        assert abs(sum(row["scores"].values()) - 1) < 1e-4
        assert row["label"] == max(row["scores"], key=row["scores"].get) and row["score"] == row["scores"][row["label"]]
    # A file's scores are its windows' scores averaged by duration, as the pipeline gives them.
    weights = np.array([2.0, 2.0, 1.0]) / 5.0
    expected = {label: float(np.dot(weights, [row["scores"][label] for row in call])) for label in LABELS.values()}
    np.testing.assert_allclose(list(by_source["long/call.wav"]["scores"].values()), list(expected.values()), atol=1e-5)

    # The output is a dataset: load_dataset reads each table by name.
    assert load_dataset(str(output_dir), "windows", split="train").num_rows == len(windows)
    assert load_dataset(str(output_dir), "errors", split="train")["source"] == ["speaker1/broken.wav"]


def test_a_run_without_unreadable_inputs_lists_no_errors_table(model_dir, corpus, tmp_path):
    readable = tmp_path / "readable"
    shutil.copytree(corpus / "speaker0", readable)
    output_dir = tmp_path / "labels"
    assert run(model_dir, output_dir, folder=str(readable))["errors"] == 0
    # datasets cannot load a table without rows: the finished run's card leaves that config out.
    assert load_dataset(str(output_dir), "files", split="train").num_rows == 4
    with pytest.raises(ValueError, match="'errors' not found"):
        load_dataset(str(output_dir), "errors", split="train")
    assert (output_dir / "errors.csv").read_text().splitlines() == ["source,index,error"]


def test_a_stopped_run_resumed_equals_an_uninterrupted_run_row_for_row(model_dir, corpus, uninterrupted, tmp_path):
    reference, _ = uninterrupted
    output_dir = tmp_path / "resumed"
    first = run(model_dir, output_dir, folder=str(corpus), max_shards=2)
    assert first["finished_shards"] == 2 and not (output_dir / "errors.csv").exists()
    # A kill while shard 2 was being written: its files table renamed into place, its windows table not yet, and a
    # temporary file left behind. The shard does not count as finished and is written again.
    shutil.copy(reference / "files" / "shard-00002.parquet", output_dir / "files" / "shard-00002.parquet")
    (output_dir / "windows" / ".shard-00002.parquet.999.tmp").write_bytes(b"partial")

    with pytest.raises(ValueError, match="other options.*segment_length_s"):
        run(model_dir, output_dir, folder=str(corpus), segment_length_s=1.0)
    resumed = run(model_dir, output_dir, folder=str(corpus))
    assert resumed["new_shards"] == 2 and resumed["finished_shards"] == 4
    for name in ("windows", "files", "errors"):
        assert table(output_dir, name) == table(reference, name)
    assert (output_dir / "errors.csv").read_text() == (reference / "errors.csv").read_text()


@pytest.fixture(scope="module")
def half_done(model_dir, corpus, tmp_path_factory):
    """A run of the corpus stopped after 2 of its 4 shards."""
    output_dir = tmp_path_factory.mktemp("half-done") / "labels"
    assert run(model_dir, output_dir, folder=str(corpus), max_shards=2)["finished_shards"] == 2
    return output_dir


def assert_same_tables(output_dir: Path, reference: Path) -> None:
    for name in ("windows", "files", "errors"):
        assert table(output_dir, name) == table(reference, name), name
    assert (output_dir / "errors.csv").read_text() == (reference / "errors.csv").read_text()


@pytest.mark.parametrize("renames_done", [0, 1, 2, 3])
def test_a_kill_between_any_two_renames_of_a_shard_then_resume_equals_an_uninterrupted_run(
    model_dir, corpus, uninterrupted, half_done, tmp_path, monkeypatch, renames_done
):
    """Shard 2's three tables and its marker are four renames; the run is killed after `renames_done` of them."""
    reference, _ = uninterrupted
    output_dir = tmp_path / "labels"
    shutil.copytree(half_done, output_dir)
    real_replace, done = os.replace, []

    def replace_then_die(source, destination):
        if "shard-00002" in str(destination):
            if len(done) == renames_done:
                raise KeyboardInterrupt("killed")
            done.append(destination)
        real_replace(source, destination)

    monkeypatch.setattr("pipelines.bulk_annotator.os.replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(model_dir, output_dir, folder=str(corpus))
    monkeypatch.setattr("pipelines.bulk_annotator.os.replace", real_replace)
    resumed = run(model_dir, output_dir, folder=str(corpus))
    assert resumed["finished_shards"] == 4 and resumed["new_shards"] == 2
    assert_same_tables(output_dir, reference)


def half_done_copy(model_dir, corpus, tmp_path) -> tuple[Path, Path]:
    """A copy of the corpus that can gain files, and a run of it stopped after 2 of its 4 shards."""
    folder, output_dir = tmp_path / "recordings", tmp_path / "labels"
    shutil.copytree(corpus, folder)
    run(model_dir, output_dir, folder=f"{tmp_path}/./recordings", max_shards=2)  # resumed below as .../recordings
    return folder, output_dir


def test_a_folder_that_gains_a_file_before_the_finished_shards_is_refused(model_dir, corpus, tmp_path):
    folder, output_dir = half_done_copy(model_dir, corpus, tmp_path)
    write_wav(folder / "aaa-new.wav", tone(200.0))  # sorts first: every index after it moves
    shards_before = sorted((output_dir / "progress").iterdir())
    with pytest.raises(ValueError, match="other inputs.*new --output_dir"):
        run(model_dir, output_dir, folder=str(folder))
    assert sorted((output_dir / "progress").iterdir()) == shards_before  # nothing written


def test_a_folder_that_gains_a_file_after_the_finished_shards_annotates_every_file_once(model_dir, corpus, tmp_path):
    folder, output_dir = half_done_copy(model_dir, corpus, tmp_path)
    (folder / "zzz").mkdir()
    write_wav(folder / "zzz" / "new.wav", tone(200.0))  # sorts last: the finished shards keep their items
    summary = run(model_dir, output_dir, folder=str(folder))
    assert summary["finished_shards"] == summary["num_shards"] == 5  # 13 inputs, 3 a shard
    readable = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.wav") if p.name != "broken.wav")
    assert [row["source"] for row in table(output_dir, "files")] == readable


def test_a_model_replaced_at_the_same_path_is_refused_and_another_path_to_it_is_not(corpus, tmp_path):
    model = save_genser(tmp_path / "model")
    output_dir = tmp_path / "labels"
    run(model, output_dir, folder=str(corpus), max_shards=1)
    # The same model by another spelling of its path resumes.
    assert run(f"{tmp_path}/./model", output_dir, folder=str(corpus), max_shards=1)["finished_shards"] == 2
    torch.manual_seed(1)
    other = GenSERForAudioClassification(GenSERForAudioClassification.from_pretrained(model).config)
    save_genser(model, model=other)
    with pytest.raises(ValueError, match="another model.*config or weights"):
        run(model, output_dir, folder=str(corpus))


def test_a_failed_start_then_the_corrected_command_runs(model_dir, corpus, uninterrupted, tmp_path, monkeypatch):
    reference, _ = uninterrupted
    output_dir = tmp_path / "labels"
    for bad in ({"segment_length_s": -1.0}, {"segment_length_s": 1e-5}, {"num_inference_steps": 0}):
        with pytest.raises(ValueError, match="segment_length_s|num_inference_steps"):
            run(model_dir, output_dir, folder=str(corpus), **bad)
        assert not output_dir.exists()  # checked before anything is written
    with pytest.raises(ValueError, match="no files"):
        run(model_dir, output_dir, folder=str(corpus), extensions="flac")
    assert not output_dir.exists()

    # A start that died in its first shard, with other options: no shard is finished, so nothing is refused.
    def die(self, items, statistics=None, encoded=None):
        raise RuntimeError("out of memory")

    with monkeypatch.context() as patch:
        patch.setattr(ShardAnnotator, "annotate", die)
        with pytest.raises(RuntimeError):
            run(model_dir, output_dir, folder=str(corpus), segment_length_s=3.0)
    run(model_dir, output_dir, folder=str(corpus))
    assert_same_tables(output_dir, reference)


def test_bad_manifest_rows_are_error_rows(model_dir, corpus, tmp_path):
    clips = sorted(corpus.glob("speaker0/*.wav"))
    manifest = tmp_path / "calls.jsonl"
    rows = [{"path": str(clips[0]), "id": "a"}, {"path": None, "id": "b"}, {"id": "c"}, {"path": str(clips[1])}]
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    output_dir = tmp_path / "labels"
    summary = run(model_dir, output_dir, manifest=str(manifest), id_column="id")
    assert summary["files"] == 2 and summary["errors"] == 2
    assert [row["source"] for row in table(output_dir, "files")] == ["a", str(clips[1])]
    errors = table(output_dir, "errors")
    assert [row["source"] for row in errors] == ["b", "c"]
    assert all("has no path in column 'path'" in row["error"] for row in errors)
    csv_manifest = tmp_path / "calls.csv"
    csv_manifest.write_text(f"path,id\n{clips[0]},a\n,b\n")
    assert run(model_dir, tmp_path / "csv", manifest=str(csv_manifest), id_column="id")["errors"] == 1
    with pytest.raises(ValueError, match="no column 'file'"):
        run(model_dir, tmp_path / "none", manifest=str(manifest), path_column="file")


def test_two_processes_under_torchrun_annotate_every_file_exactly_once(model_dir, corpus, uninterrupted, tmp_path):
    reference, _ = uninterrupted
    output_dir = tmp_path / "two-processes"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531",
        "-m", "pipelines.bulk_annotator", "--model", str(model_dir), "--folder", str(corpus),
        "--output_dir", str(output_dir), "--segment_length_s", "2", "--shard_size", "3", "--batch_size", "4",
    ]  # fmt: skip
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    assert "4 shards by 2 process(es)" in completed.stderr
    files = table(output_dir, "files")
    assert [row["index"] for row in files] == [row["index"] for row in table(reference, "files")]
    expected = table(reference, "windows")
    windows = table(output_dir, "windows")
    assert [(row["source"], row["start"], row["label"]) for row in windows] == [
        (row["source"], row["start"], row["label"]) for row in expected
    ]
    np.testing.assert_allclose([row["score"] for row in windows], [row["score"] for row in expected], atol=1e-5)
    assert table(output_dir, "errors") == table(reference, "errors")


def test_a_hub_style_dataset_is_read_streaming_with_a_manifest_alike(model_dir, corpus, tmp_path):
    """A dataset laid out as on the Hub (Parquet shards under data/, audio bytes embedded), streamed from disk."""
    clips = sorted(corpus.glob("speaker0/*.wav"))
    rows = {
        "id": [f"utt{index}" for index in range(len(clips) + 1)],
        "audio": [{"bytes": path.read_bytes(), "path": path.name} for path in clips]
        + [{"bytes": b"junk", "path": "x.wav"}],
    }
    repo = tmp_path / "org--calls"
    (repo / "data").mkdir(parents=True)
    Dataset.from_dict(rows).cast_column("audio", Audio()).to_parquet(
        str(repo / "data" / "train-00000-of-00001.parquet")
    )
    cache = Path(datasets.config.HF_DATASETS_CACHE)
    cache_before = sorted(cache.rglob("*.arrow"))

    output_dir = tmp_path / "streamed"
    summary = run(model_dir, output_dir, dataset=str(repo), id_column="id", shard_size=2)
    assert summary["files"] == len(clips) and summary["errors"] == 1
    assert [row["source"] for row in table(output_dir, "files")] == rows["id"][:-1]
    assert table(output_dir, "errors")[0]["source"] == rows["id"][-1]
    assert sorted(cache.rglob("*.arrow")) == cache_before  # streamed: nothing prepared into the cache

    # A manifest naming the same files gives the same scores.
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,id\n" + "".join(f"{path},utt{index}\n" for index, path in enumerate(clips)))
    listed = run(model_dir, tmp_path / "listed", manifest=str(manifest), id_column="id", shard_size=2)
    assert listed["files"] == len(clips)
    assert [row["scores"] for row in table(tmp_path / "listed", "files")] == [
        row["scores"] for row in table(output_dir, "files")
    ]


def test_a_44_1_khz_stereo_file_gets_the_same_scores_from_the_pipeline_and_the_annotator(model_dir, tmp_path):
    """One decode-and-resample path: the file classified by path, annotated, and read as training data gives one
    waveform at the model's rate."""
    rate = 44100
    time = np.arange(int(1.5 * rate)) / rate
    stereo = np.stack([0.3 * np.sin(2 * np.pi * 220.0 * time), 0.2 * np.sin(2 * np.pi * 347.0 * time)], axis=1)
    folder = tmp_path / "recordings"
    folder.mkdir()
    path = folder / "stereo.wav"
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(2)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes((stereo * 32767).astype("<i2").tobytes())

    by_path = genser_classifier(str(model_dir))(str(path), top_k=None)
    run(model_dir, tmp_path / "annotated", folder=str(folder))
    (annotated,) = table(tmp_path / "annotated", "files")
    assert annotated["scores"] == pytest.approx({row["label"]: row["score"] for row in by_path}, abs=1e-6)

    training = cast_audio(Dataset.from_dict({"audio": [str(path)]}).cast_column("audio", Audio()), "audio", 16000)
    np.testing.assert_array_equal(decode_audio(training[0]["audio"], 16000), load_audio(str(path), 16000))


def test_bad_arguments_are_explained(model_dir, corpus, tmp_path):
    with pytest.raises(ValueError, match="exactly one input"):
        AnnotationArguments(model=str(model_dir), output_dir=str(tmp_path), folder=str(corpus), manifest="x.csv")
    with pytest.raises(ValueError, match="no files"):
        run(model_dir, tmp_path / "out", folder=str(corpus), extensions="flac")
    with pytest.raises(FileNotFoundError, match="not a directory"):
        run(model_dir, tmp_path / "out2", folder=str(tmp_path / "missing"))


def test_the_console_script_is_installed():
    script = shutil.which("genser-annotate")
    if script is None:
        pytest.skip("gen-ser is not pip-installed here, so its console script is not on PATH (make install does it)")
    completed = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "--folder" in completed.stdout
