"""Shared fixtures and helpers: tiny randomly initialised encoders of two families, generated audio, the ../shared
folder, saved Gen-SER models and their pipeline, the annotator's corpus and tables, the synthetic corpus's labels."""

import json
import os
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as parquet
import pytest
import torch
from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, WhisperConfig, WhisperFeatureExtractor, pipeline

from modeling_genser import GenSERConfig, GenSERForAudioClassification
from modeling_genser.domain_normalization import domain_statistics
from pipelines import GenSERAudioClassificationPipeline
from pipelines.bulk_annotator import AnnotationArguments, annotate
from training.sources import EMODB_VOCABULARY
from training.synthetic_corpus import write_wav

SHARED = Path(__file__).resolve().parents[2] / "shared"
WHISPER_TINY_EN = SHARED / "models" / "whisper-tiny.en"
SAMPLING_RATE = 16000


def tiny_wav2vec2_config() -> Wav2Vec2Config:
    return Wav2Vec2Config(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32, 32, 32),
        conv_stride=(5, 4, 4),
        conv_kernel=(10, 8, 4),
        num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=2,
        apply_spec_augment=False,
        # Layer-norm front end (as in wav2vec2-large-lv60): padding cannot leak into real frames through it.
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        vocab_size=None,
    )


def tiny_whisper_config() -> WhisperConfig:
    return WhisperConfig(
        d_model=32,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        max_source_positions=1500,
        max_target_positions=8,
        vocab_size=64,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
        begin_suppress_tokens=None,
        suppress_tokens=None,
    )


ENCODER_FAMILIES = {
    "wav2vec2": (tiny_wav2vec2_config, lambda: Wav2Vec2FeatureExtractor(return_attention_mask=True)),
    "whisper": (tiny_whisper_config, lambda: WhisperFeatureExtractor(feature_size=80, return_attention_mask=True)),
}


@pytest.fixture(params=sorted(ENCODER_FAMILIES))
def encoder_family(request):
    """(name, encoder config, feature extractor) for each encoder family under test."""
    config_factory, extractor_factory = ENCODER_FAMILIES[request.param]
    return request.param, config_factory(), extractor_factory()


def domain_model(**overrides):
    """A small Gen-SER model with domain normalisation over the tiny wav2vec2 encoder, labels angry / happy / sad,
    in eval mode; `overrides` are `GenSERConfig` fields."""
    import torch

    from modeling_genser import GenSERConfig, GenSERForAudioClassification

    torch.manual_seed(0)
    labels = {0: "angry", 1: "happy", 2: "sad"}
    config = GenSERConfig(
        encoder_config=tiny_wav2vec2_config(),
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
        **{"domain_normalization": True, "encoding_dim": 32, "head_hidden_size": 32, **overrides},
    )
    return GenSERForAudioClassification(config).eval()


def genser_classifier(model, device: str = "cpu", **kwargs):
    """Gen-SER's audio-classification pipeline from this package (no remote code), on the CPU by default."""
    return pipeline(
        "audio-classification", model=model, device=device, pipeline_class=GenSERAudioClassificationPipeline, **kwargs
    )


def tone(frequency: float, seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """A noisy harmonic tone: distinct frequencies make an easy, deterministic toy classification task."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    phase = rng.uniform(0, 2 * np.pi)
    signal = sum(np.sin(2 * np.pi * k * frequency * time + phase) / k for k in (1, 2, 3))
    return (0.3 * signal + 0.02 * rng.standard_normal(len(time))).astype(np.float32)


@pytest.fixture
def requires_shared():
    if not WHISPER_TINY_EN.is_dir():
        pytest.skip(f"../shared is absent ({WHISPER_TINY_EN} not found): the real-backbone test needs it")
    return SHARED


@pytest.fixture(autouse=True, scope="session")
def isolated_datasets_cache(tmp_path_factory):
    """Tests never read or fill the user's `datasets` cache (where the feature cache lives by default)."""
    original = datasets.config.HF_DATASETS_CACHE
    datasets.config.HF_DATASETS_CACHE = tmp_path_factory.mktemp("datasets_cache")
    yield
    datasets.config.HF_DATASETS_CACHE = original


def classify_from_offline_hub_cache(model_dir: Path, tmp_path: Path) -> dict:
    """Puts `model_dir` into a fresh Hub-style cache as `org/gen-ser` and, in a new Python process outside the
    repository with HF_HUB_OFFLINE=1 and this project's packages made unimportable, runs
    `pipeline("audio-classification", model="org/gen-ser", trust_remote_code=True)` on one second of a tone (as
    float32 and as int16 samples) and on 40 s of it in windows. Returns `{"model_module", "pipeline_module",
    "pipeline_class", "scores", "int16_scores", "windows"}`."""
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--gen-ser"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    for file in model_dir.iterdir():
        if file.is_file():
            (snapshot / file.name).write_bytes(file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    script = (
        "import json, sys, numpy as np\n"
        # An installed (editable) copy of this project would otherwise be importable from anywhere.
        "sys.modules.update(modeling_genser=None, pipelines=None, training=None)\n"
        "from transformers import pipeline\n"
        "clf = pipeline('audio-classification', model='org/gen-ser', trust_remote_code=True, device='cpu')\n"
        "clip = np.sin(np.arange(16000) / 5).astype('float32')\n"
        "long = np.sin(np.arange(40 * 16000) / 5).astype('float32')\n"
        "windows = clf(long, top_k=None, return_segments=True, num_inference_steps=2)['segments']\n"
        "print(json.dumps({'model_module': type(clf.model).__module__, 'pipeline_module': type(clf).__module__,\n"
        "  'pipeline_class': type(clf).__name__, 'scores': clf(clip, top_k=None),\n"
        "  'int16_scores': clf((clip * 32767).astype('int16'), top_k=None),\n"
        "  'windows': [(w['start'], w['end']) for w in windows]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_") and k != "PYTHONPATH"}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HUB_CACHE=str(tmp_path / "hub"),
        HF_HOME=str(tmp_path / "home"),
        HF_MODULES_CACHE=str(tmp_path / "modules"),
    )
    # Run outside the repository so that the local package cannot be imported by accident.
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


# A saved Gen-SER model and its pipeline (test_pipeline.py and the modules that classify with one).
LABELS = {0: "anger", 1: "happiness", 2: "neutral", 3: "sadness"}


def save_genser(directory, encoder_config=None, feature_extractor=None, model=None):
    if model is None:
        torch.manual_seed(0)
        config = GenSERConfig(
            encoder_config=encoder_config or tiny_wav2vec2_config(),
            id2label=LABELS,
            label2id={v: k for k, v in LABELS.items()},
        )
        model = GenSERForAudioClassification(config)
    extractor = feature_extractor or Wav2Vec2FeatureExtractor(return_attention_mask=True)
    GenSERAudioClassificationPipeline(model=model, feature_extractor=extractor).save_pretrained(directory)
    return directory


def assert_valid_scores(result, top_k):
    assert len(result) == top_k
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True)
    assert {item["label"] for item in result} <= set(LABELS.values())


def save_domain_model(directory):
    """A saved model with domain normalisation, whose training pool's statistics are those of random features."""
    model = domain_model()
    model.conditioner.set_domain_statistics(domain_statistics(torch.randn(20, 3, 32) * 0.1))
    extractor = Wav2Vec2FeatureExtractor(return_attention_mask=True)
    GenSERAudioClassificationPipeline(model=model, feature_extractor=extractor).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Clips of 0.3 to 1.2 s in nested folders, a 5 s recording (3 windows of 2 s), and a corrupted file."""
    folder = tmp_path_factory.mktemp("recordings")
    for index in range(10):
        path = folder / f"speaker{index % 3}" / f"clip{index:02d}.wav"
        path.parent.mkdir(exist_ok=True)
        write_wav(path, tone(150.0 * (1 + index % 4), seconds=0.3 + 0.1 * index, seed=index))
    (folder / "long").mkdir()
    write_wav(folder / "long" / "call.wav", tone(300.0, seconds=5.0))
    (folder / "speaker1" / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    return folder


def run(model_dir, output_dir, **options) -> dict:
    options = {"segment_length_s": 2.0, "shard_size": 3, "batch_size": 4, **options}
    return annotate(AnnotationArguments(model=str(model_dir), output_dir=str(output_dir), **options))


def table(output_dir: Path, name: str) -> list[dict]:
    """Every row of one table, in input order (and window order)."""
    rows = [
        row for path in sorted((output_dir / name).glob("*.parquet")) for row in parquet.read_table(path).to_pylist()
    ]
    return sorted(rows, key=lambda row: (row["index"], row.get("start", 0.0)))


# The synthetic corpus names its emotions as EmoDB does (anger, fear, happiness, neutral, sadness).
SYNTHETIC_VOCABULARY = tuple(
    (name, EMODB_VOCABULARY[name]) for name in ("anger", "fear", "happiness", "neutral", "sadness")
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small saved Gen-SER model (`save_genser`), one per test module."""
    return save_genser(tmp_path_factory.mktemp("genser"))


@pytest.fixture(scope="module")
def classifier(model_dir):
    """The Gen-SER pipeline of `model_dir`."""
    return genser_classifier(str(model_dir))
