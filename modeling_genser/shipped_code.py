# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""The code a saved model's config names beside the model's own: the pipeline module of `custom_pipelines`.

`save_pretrained` copies the model's code (its module and that module's relative imports) for `trust_remote_code`,
but not a pipeline's: a model loaded and saved again would name a pipeline file it does not carry, and
`pipeline(..., trust_remote_code=True)` on the copy would fail. These functions let every save of a Gen-SER model ship
what its config names, fetched from where the model was loaded, or else name it no more.
"""

import logging
import shutil
from pathlib import Path

from transformers.dynamic_module_utils import get_cached_module_file, get_relative_import_files
from transformers.utils import HF_MODULES_CACHE

logger = logging.getLogger(__name__)


def pipeline_module_files(config) -> dict[str, str]:
    """`{task: module file}` of every pipeline `config.custom_pipelines` names (`"impl": "module.Class"`)."""
    pipelines = getattr(config, "custom_pipelines", None) or {}
    return {task: spec["impl"].split(".")[0] + ".py" for task, spec in pipelines.items()}


def ship_named_pipelines(config, source: str, save_directory: str | Path) -> None:
    """Makes the model saved in `save_directory` carry every pipeline module its `config` names: a module that is
    not there yet is copied, with its relative imports, from `source` (where the model was loaded from: a directory or
    a Hub id). A module found nowhere is dropped from the saved config, with a warning, so the copy still loads (with
    the stock pipeline) instead of naming a file it does not have."""
    save_directory = Path(save_directory)
    unshipped = []
    for task, module_file in pipeline_module_files(config).items():
        if (save_directory / module_file).is_file():
            continue
        try:
            cached = Path(HF_MODULES_CACHE) / get_cached_module_file(source, module_file)
        except (OSError, ValueError) as error:
            logger.warning(
                "The config names the %s pipeline %s, which was not found where the model was loaded from (%r: %s); "
                "the saved copy names no pipeline for that task. Save through the pipeline "
                "(`GenSERAudioClassificationPipeline.save_pretrained`) to ship it.",
                task, module_file, source, error,
            )  # fmt: skip
            unshipped.append(task)
            continue
        for file in [cached, *map(Path, get_relative_import_files(cached))]:
            shutil.copy(file, save_directory / file.name)
    if unshipped:
        saved = config.__class__.from_pretrained(save_directory)
        shipped = {task: spec for task, spec in saved.custom_pipelines.items() if task not in unshipped}
        if shipped:
            saved.custom_pipelines = shipped
        else:  # transformers reads a null `custom_pipelines` as a mapping
            del saved.custom_pipelines
        saved.save_pretrained(save_directory)
