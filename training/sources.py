# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Named corpora and encoders, each with the places it can come from, tried in order.

`--dataset_name emodb` and `--encoder_name_or_path whisper-tiny.en` name the main job's real data and encoder
without saying where they live: the project's `../shared` folder when present (offline), otherwise the Hugging
Face Hub. A corpus source also says how its columns map onto the training script's (label, speaker), since the
same corpus is laid out differently in different places.
"""

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download

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


@dataclass(frozen=True)
class CorpusSource:
    """One place a corpus can be loaded from (`training.data.load_audio_dataset`) and its column names.

    `group_column_name` identifies the speaker; it may join several columns with "+" when a source has no speaker
    column but a combination of columns tells the speakers apart. `description` and `limitations` go into the model
    card of a model trained on it.
    """

    dataset_name: str
    label_column_name: str
    group_column_name: str
    description: str
    limitations: str


CORPORA = {
    "emodb": (
        CorpusSource(str(SHARED / "data" / "emodb"), "label", "speaker", EMODB_DESCRIPTION, EMODB_LIMITATIONS),
        # The Hub copy has no speaker column, but each of EmoDB's 10 speakers has a distinct (gender, age) pair.
        CorpusSource("renumics/emodb", "emotion", "gender+age", EMODB_DESCRIPTION, EMODB_LIMITATIONS),
    ),
}
# The last location of an encoder is its Hub id, which the model card names as base_model whichever copy was loaded.
ENCODERS = {
    "whisper-tiny.en": (str(SHARED / "models" / "whisper-tiny.en"), "openai/whisper-tiny.en"),
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


def resolve_encoder(name: str) -> str | None:
    """The first available location of the named encoder, or None when none is."""
    return next((location for location in ENCODERS[name] if is_available(location, "model")), None)


def describe_sources(candidates) -> str:
    return " nor ".join(getattr(candidate, "dataset_name", candidate) for candidate in candidates)
