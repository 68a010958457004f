"""The three data sources (audiofolder, manifest, a Hub-style dataset repository) and unreadable audio."""

import csv
import json

import pytest
from datasets import Audio, Dataset

from training.data import cast_audio, decode_audio, drop_unreadable_audio, load_audio_dataset
from training.synthetic_corpus import generate_corpus, write_wav
from conftest import tone


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), num_speakers=2, num_sentences=1, seed=0)


def test_audiofolder_with_metadata(corpus):
    dataset = load_audio_dataset(str(corpus))["train"]
    assert len(dataset) == 10
    assert {"audio", "label", "speaker"} <= set(dataset.column_names)
    assert decode_audio(dataset[0]["audio"], 16000).ndim == 1


def test_audiofolder_with_class_subfolders(tmp_path):
    for label in ("calm", "loud"):
        (tmp_path / label).mkdir()
        for i in range(2):
            write_wav(tmp_path / label / f"{i}.wav", tone(200.0 + 100 * i))
    dataset = load_audio_dataset(str(tmp_path))["train"]
    assert sorted(dataset.features["label"].names) == ["calm", "loud"]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_manifest_with_relative_paths_and_custom_columns(corpus, tmp_path, suffix):
    rows = list(csv.DictReader(open(corpus / "metadata.csv")))
    manifest = tmp_path / f"manifest{suffix}"
    records = [{"path": str(corpus / row["file_name"]), "emotion": row["label"], "who": row["speaker"]} for row in rows]
    records[0]["path"] = "clip.wav"  # relative to the manifest's folder
    write_wav(tmp_path / "clip.wav", tone(300.0))
    if suffix == ".csv":
        with open(manifest, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=["path", "emotion", "who"])
            writer.writeheader()
            writer.writerows(records)
    else:
        manifest.write_text("\n".join(json.dumps(record) for record in records))
    dataset = load_audio_dataset(str(manifest), audio_column_name="path")["train"]
    assert len(dataset) == 10 and set(dataset.column_names) == {"path", "emotion", "who"}
    assert len(decode_audio(dataset[0]["path"], 16000)) == 16000
    with pytest.raises(ValueError, match="Column 'audio' not found.*--audio_column_name"):
        load_audio_dataset(str(manifest))


def test_hub_style_dataset_repository(corpus, tmp_path):
    """A dataset repository as the Hub stores it (Parquet shards under data/), loaded from a local path."""
    source = load_audio_dataset(str(corpus))["train"].cast_column("audio", Audio(decode=False))
    (tmp_path / "data").mkdir()
    source.to_parquet(str(tmp_path / "data" / "train-00000-of-00001.parquet"))
    dataset = cast_audio(load_audio_dataset(str(tmp_path))["train"], "audio", 16000)
    assert len(dataset) == 10 and dataset[3]["label"] == source[3]["label"]
    assert decode_audio(dataset[3]["audio"], 16000).ndim == 1


def test_unreadable_audio_is_reported_by_file_then_raised_or_skipped(corpus, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"this is not audio")
    good = [str(p) for p in sorted(corpus.glob("*.wav"))[:3]]
    dataset = Dataset.from_dict({"audio": good + [str(broken)], "label": ["a", "b", "a", "b"]})
    dataset = dataset.cast_column("audio", Audio())
    with pytest.raises(ValueError, match=r"1 unreadable audio file\(s\):\n.*broken\.wav"):
        drop_unreadable_audio(dataset, "audio")
    kept = drop_unreadable_audio(dataset, "audio", on_error="skip")
    assert len(kept) == 3 and kept["label"] == ["a", "b", "a"]
