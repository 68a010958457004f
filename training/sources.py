# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Named corpora and encoders, each with the places it can come from, tried in order.

`--dataset_name emodb` and `--encoder_name_or_path whisper-tiny.en` name the main job's real data and encoder
without saying where they live: the project's `../shared` folder when present (offline), otherwise the Hugging
Face Hub. A corpus source also says how its columns map onto the training script's (label, speaker), since the
same corpus is laid out differently in different places, and how its label names map onto one emotion vocabulary
(`EMOTION_VOCABULARY`), so that corpora can be trained on together and scored on the labels they share.
"""

import logging
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.constants import HF_HOME

logger = logging.getLogger(__name__)

SHARED = Path(__file__).resolve().parents[2] / "shared"
HUB_TIMEOUT_SECONDS = 10

EMODB_DESCRIPTION = (
    "the Berlin Database of Emotional Speech (EmoDB; Burkhardt et al., Interspeech 2005): acted German speech, "
    "10 professional speakers (5 female, 5 male) reading 10 everyday sentences in 7 emotions (anger, boredom, "
    "disgust, fear, happiness, sadness, neutral), recorded in a studio at 16 kHz"
)
EMODB_LIMITATIONS = (
    "Trained on EmoDB alone: acted, read German speech of 10 adult speakers in a studio. It is not made for natural "
    "conversation (calls, meetings, media), for other languages, for children's voices or noisy recordings, nor for "
    "emotions outside its 7 labels: its cross-validated figures do not carry over to such speech"
)


# One vocabulary for the emotion corpora (`../shared/README.md`); a corpus's own names map onto it.
EMOTION_VOCABULARY = ("angry", "boredom", "calm", "disgust", "fearful", "happy", "neutral", "sad", "surprised")
# The labels most corpora share, on which cross-corpus figures are also reported.
CORE_EMOTIONS = ("angry", "happy", "neutral", "sad")
# The emotion task: the column of several corpora's emotion labels (`training.data.load_corpora`), so also the name of
# an emotion and arousal model's first task (`config.label_sets`, the pipeline's `return_tasks`).
EMOTION_COLUMN = "emotion"
# The arousal task of an emotion and arousal model (`--task_columns arousal` with named corpora): three levels of
# arousal (activation). An arousal corpus (BAVED) rates them; an emotion corpus's are derived from its categories.
AROUSAL_COLUMN = "arousal"
AROUSAL_LEVELS = ("low", "medium", "high")
# Derived arousal: each emotion's usual side of the arousal axis in Russell's circumplex (J. Pers. Soc. Psychol. 39,
# 1980) and in the dimensional SER corpora that rate both (anger, fear, joy and surprise high; sadness, boredom and
# calm low; neutral speech in between). Disgust is rated near the middle and varies most between studies. A clip's
# derived level says what its emotion usually carries, not how aroused that clip sounds: marked as derived wherever
# it is used (`training.data.with_arousal`).
EMOTION_AROUSAL = {
    "angry": "high", "fearful": "high", "happy": "high", "surprised": "high",
    "disgust": "medium", "neutral": "medium",
    "boredom": "low", "calm": "low", "sad": "low",
}  # fmt: skip
EMODB_VOCABULARY = {
    "anger": "angry", "boredom": "boredom", "disgust": "disgust", "fear": "fearful", "happiness": "happy",
    "neutral": "neutral", "sadness": "sad",
}  # fmt: skip


def map_labels(labels: list[str], mapping: dict[str, str] | None) -> list[str]:
    """Each label's name in the vocabulary (`mapping`: corpus name -> vocabulary name; None keeps the names). A label
    the mapping does not name is an error, never passed through unmapped."""
    if mapping is None:
        return list(labels)
    unknown = sorted(set(labels) - set(mapping))
    if unknown:
        raise ValueError(
            f"Labels {unknown} have no entry in the label mapping {mapping}; add them (e.g. with --label_mapping "
            "'name=vocabulary_name,...')."
        )
    return [mapping[label] for label in labels]


def parse_label_mapping(text: str | None) -> dict[str, str] | None:
    """`"anger=angry,fear=fearful"` as a dict (None for None or an empty string)."""
    if not text:
        return None
    pairs = [item.split("=") for item in text.split(",") if item.strip()]
    if any(len(pair) != 2 or not pair[0].strip() or not pair[1].strip() for pair in pairs):
        raise ValueError(f"--label_mapping takes 'name=vocabulary_name' pairs separated by commas, got {text!r}.")
    return {name.strip(): target.strip() for name, target in pairs}


@dataclass(frozen=True)
class CorpusSource:
    """One place a corpus can be loaded from (`training.data.load_audio_dataset`) and its column names.

    `group_column_name` identifies the speaker; it may join several columns with "+" when a source has no speaker
    column but a combination of columns tells the speakers apart. `description` and `limitations` go into the model
    card of a model trained on it. `language` and `licence` describe the corpus; `label_vocabulary` maps its label
    names onto `EMOTION_VOCABULARY` (as `(name, vocabulary name)` pairs; empty: its names already are). `target` is
    what its labels are: `"emotion"` categories, or `"arousal"` levels (their names mapped onto `AROUSAL_LEVELS`;
    never pooled with emotions, only trained beside them as the arousal task).
    """

    dataset_name: str
    label_column_name: str
    group_column_name: str
    description: str
    limitations: str
    language: str = ""
    licence: str = ""
    label_vocabulary: tuple[tuple[str, str], ...] = ()
    target: str = "emotion"

    @property
    def label_mapping(self) -> dict[str, str] | None:
        """Corpus label name -> vocabulary name, or None where the names are the vocabulary's already."""
        return dict(self.label_vocabulary) or None


ACTED = "acted speech in a quiet room; not made for natural conversation, noisy or far-field recordings"
RESEARCH_ONLY = "released by its authors for research; not redistributed by this project"
EMODB = {"language": "German", "licence": RESEARCH_ONLY, "label_vocabulary": tuple(EMODB_VOCABULARY.items())}


def shared_corpus(folder: str, description: str, limitations: str, **facts) -> CorpusSource:
    """A corpus in `../shared/data/<folder>`: every one there is an audiofolder with `label` and `speaker` columns."""
    return CorpusSource(str(SHARED / "data" / folder), "label", "speaker", description, limitations, **facts)


CORPORA = {
    "emodb": (
        shared_corpus("emodb", EMODB_DESCRIPTION, EMODB_LIMITATIONS, **EMODB),
        # The Hub copy has no speaker column, but each of EmoDB's 10 speakers has a distinct (gender, age) pair.
        CorpusSource("renumics/emodb", "emotion", "gender+age", EMODB_DESCRIPTION, EMODB_LIMITATIONS, **EMODB),
    ),
    # The corpora below are in ../shared only (no Hub copy of them is named here): their labels already use the
    # vocabulary.
    "cremad": (
        shared_corpus(
            "cremad",
            "CREMA-D (Cao et al., 2014): acted US English, 91 actors, 12 sentences, 7,435 clips in 6 emotions (angry, "
            "disgust, fearful, happy, neutral, sad)",
            f"CREMA-D is {ACTED}", language="English", licence="Open Database License (ODbL)",
        ),
    ),
    "ravdess": (
        shared_corpus(
            "ravdess",
            "RAVDESS speech (Livingstone & Russo, 2018): acted US English, 24 actors, 2 sentences, 1,440 clips in 8 "
            "emotions (angry, calm, disgust, fearful, happy, neutral, sad, surprised)",
            f"RAVDESS is {ACTED}", language="English", licence="CC BY-NC-SA 4.0",
        ),
    ),
    "casia": (
        shared_corpus(
            "casia",
            "CASIA (public 1,200-clip part): acted Mandarin, 4 speakers, 6 emotions (angry, fearful, happy, neutral, "
            "sad, surprised)",
            f"CASIA is {ACTED}, of 4 speakers only", language="Mandarin", licence=RESEARCH_ONLY,
        ),
    ),
    "nemo": (
        shared_corpus(
            "nemo",
            "nEMO (amu-cai/nEMO): acted Polish, 9 speakers reading sentences, 4,481 clips in 6 emotions "
            "(angry, fearful, happy, neutral, sad, surprised), coded as Opus at 16 kbit/s",
            f"nEMO is {ACTED}, of 9 speakers only", language="Polish", licence="CC BY-NC-SA 4.0",
        ),
    ),
    "ased": (
        shared_corpus(
            "ased",
            "ASED (Amharic Speech Emotion Dataset, Ethio2021/ASED_V1): acted Amharic, 65 speakers each recorded on "
            "their own device, 2,470 clips in 5 emotions (angry, fearful, happy, neutral, sad), coded as Opus at "
            "16 kbit/s",
            "ASED is acted speech recorded on the speakers' own devices; not made for natural conversation",
            language="Amharic", licence=RESEARCH_ONLY,
        ),
    ),
    "baved": (
        shared_corpus(
            "baved",
            "BAVED (Basic Arabic Vocal Emotions): Arabic, 59 speakers, 7 words, 1,908 clips at 3 arousal levels "
            "(low, neutral, high)",
            "BAVED's labels are arousal levels of single spoken words, not emotion categories",
            language="Arabic", licence=RESEARCH_ONLY, target="arousal",
            label_vocabulary=(("low", "low"), ("neutral", "medium"), ("high", "high")),
        ),
    ),
}  # fmt: skip
# The last location of an encoder is its Hub id, which the model card names as base_model whichever copy was loaded.
# Whisper base is not in ../shared itself but written on demand by its tool (from the package registry).
WHISPER_BASE_DIR = Path(HF_HOME) / "gen-ser" / "whisper-base"
ENCODER_TOOLS = {str(WHISPER_BASE_DIR): SHARED / "tools" / "get_whisper_base.py"}
ENCODERS = {
    "whisper-tiny.en": (str(SHARED / "models" / "whisper-tiny.en"), "openai/whisper-tiny.en"),
    "whisper-base": (str(WHISPER_BASE_DIR), "openai/whisper-base"),
}


def is_available(name: str, repo_type: str) -> bool:
    """Whether `name` can be loaded now: an existing local path, a Hub repository in the local Hub cache, or one the
    Hub answers for. Never downloads anything."""
    if os.path.exists(name):
        return True
    if name.startswith((".", "/")) or name.count("/") != 1:
        return False  # a local path that is missing, not a Hub id
    try:
        snapshot_download(name, repo_type=repo_type, local_files_only=True)
        return True
    except Exception:  # noqa: BLE001  (not in the local cache, for whatever reason)
        pass
    try:
        HfApi().repo_info(name, repo_type=repo_type, timeout=HUB_TIMEOUT_SECONDS)
        return True
    except Exception as error:  # noqa: BLE001  (offline, unreachable, private or missing: not available)
        logger.info("%s %s is not reachable: %s: %s", repo_type, name, type(error).__name__, error)
        return False


def resolve_corpus(name: str) -> CorpusSource | None:
    """The first available source of the named corpus, or None when none is."""
    return next((source for source in CORPORA[name] if is_available(source.dataset_name, "dataset")), None)


def resolve_corpora(names: list[str], arousal: bool = False) -> dict[str, CorpusSource]:
    """The first available source of each named emotion corpus, for training on several at once (`--dataset_name
    emodb,cremad`), and with `arousal` (an emotion and arousal model) of each arousal corpus too. A name outside
    `CORPORA`, a corpus that is nowhere to be found, or one whose labels are not emotions (without `arousal`) is an
    error: there is no fallback here."""
    sources = {}
    for name in dict.fromkeys(name.strip() for name in names if name.strip()):
        if name not in CORPORA:
            raise ValueError(f"{name!r} is not a named corpus ({', '.join(sorted(CORPORA))}); name each corpus.")
        source = resolve_corpus(name)
        if source is None:
            raise OSError(
                f"Corpus {name!r} is not available here: neither {describe_sources(CORPORA[name])} was found."
            )
        if source.target != "emotion" and not arousal:
            raise ValueError(
                f"Corpus {name!r} holds {source.target} levels, not emotions: train it on its own, or beside emotion "
                f"corpora as the arousal task (--task_columns {AROUSAL_COLUMN})."
            )
        sources[name] = source
    if len(sources) < 2:
        raise ValueError(f"Several corpora are at least two distinct names, got {names}.")
    if all(source.target != "emotion" for source in sources.values()):
        raise ValueError(f"None of the corpora {list(sources)} has emotion labels: name at least one emotion corpus.")
    return sources


def resolve_encoder(name: str) -> str | None:
    """The first available location of the named encoder, or None when none is; a location that a tool of
    `../shared` writes (`ENCODER_TOOLS`) is written first when it is missing and the tool is there."""
    for location in ENCODERS[name]:
        tool = ENCODER_TOOLS.get(location)
        if tool is not None and not os.path.exists(location) and tool.exists():
            logger.info("Writing %s with %s", location, tool)
            subprocess.run([sys.executable, str(tool), location], check=True)
        if is_available(location, "model"):
            return location
    return None


def describe_sources(candidates) -> str:
    return " nor ".join(getattr(candidate, "dataset_name", candidate) for candidate in candidates)
