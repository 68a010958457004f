# Copyright 2026 The Gen-SER authors. Licensed under the Apache License, Version 2.0.
"""Gradio Space for Gen-SER: classify a recording and watch the generative trajectory reach an emotion's code.

    python spaces_demo/app.py                                   # the model `make main` trains (offline)
    GENSER_MODEL=org/gen-ser python spaces_demo/app.py          # any Gen-SER model: Hub id or local directory

The model comes from the `GENSER_MODEL` environment variable; without it, from `outputs/gen-ser`, the general model
that `make main` trains on six emotion corpora and an arousal corpus with Whisper base (offline, from `../shared`):
its emotions are shown, its arousal level named.
"""

import os
from pathlib import Path

import gradio as gr
import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from transformers import pipeline

from pipelines import GenSERAudioClassificationPipeline

MODEL_ENV = "GENSER_MODEL"
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "outputs" / "gen-ser"
MAX_CHUNK_LENGTH_S = 30.0  # Whisper encoders accept at most 30 s per chunk
# One step draws a trajectory of two points (start, generated code); a few steps show the sample find its class.
MIN_DEFAULT_STEPS = 4


def load_classifier(model: str | os.PathLike | None = None, device: str | None = None):
    """The audio-classification pipeline for `model` (Hub id or directory; default: `$GENSER_MODEL`, else the
    `make main` model)."""
    model = model or os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    if Path(model) == DEFAULT_MODEL and not DEFAULT_MODEL.is_dir():
        raise FileNotFoundError(
            f"No model at {DEFAULT_MODEL}. Run `make main` to train the release model, or set {MODEL_ENV} "
            "to a Gen-SER model (Hub id or local directory)."
        )
    # Gen-SER's pipeline from this package, so the Space runs no remote code (windows, sampling options, trajectory).
    return pipeline(
        "audio-classification", model=str(model), device=device, pipeline_class=GenSERAudioClassificationPipeline
    )


def label_colours(labels: list[str]) -> dict[str, tuple]:
    """One colour per label, the same in every plot."""
    palette = matplotlib.colormaps["tab10"]
    return {label: palette(index % 10) for index, label in enumerate(labels)}


def trajectory_figure(trajectory: dict, predicted: str, colours: dict[str, tuple]):
    """Cosine similarity of the bridge sample x_t to every class code, from the initial sample (t = 0) to the
    generated code (t = 1): the class whose code the sample reaches is the prediction."""
    # Figures made without pyplot are freed with their last reference: a long-running Space does not pile them up.
    figure = Figure(figsize=(7, 4), layout="tight")
    axes = figure.subplots()
    for label, similarities in trajectory["similarities"].items():
        axes.plot(
            trajectory["times"],
            similarities,
            marker="o",
            color=colours[label],
            linewidth=3 if label == predicted else 1.2,
            label=label,
        )
    axes.set_xlabel("bridge time t (0: initial sample, 1: generated code)")
    axes.set_ylabel("cosine similarity of x_t to class code")
    axes.set_title("Generative trajectory")
    axes.grid(alpha=0.3)
    axes.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return figure


def timeline_figure(segments: list[dict], colours: dict[str, tuple]):
    """Per-window emotion scores along the recording, as stacked bars with each window's top emotion on top."""
    figure = Figure(figsize=(7, 3), layout="tight")
    axes = figure.subplots()
    for segment in segments:
        start, width, bottom = segment["start"], segment["end"] - segment["start"], 0.0
        for item in segment["scores"]:
            colour = colours[item["label"]]
            axes.bar(start, item["score"], width, bottom, align="edge", color=colour, edgecolor="white")
            bottom += item["score"]
        axes.text((segment["start"] + segment["end"]) / 2, 1.02, segment["scores"][0]["label"], ha="center", fontsize=8)
    handles = [Rectangle((0, 0), 1, 1, color=colour) for colour in colours.values()]
    axes.legend(handles, list(colours), loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("score")
    axes.set_ylim(0, 1.12)
    axes.set_title("Emotions along the recording")
    return figure


def classify(classifier, audio: str | None, num_inference_steps: int, num_samples: int, chunk_length_s: float):
    """The app's prediction: `(scores by label, summary markdown, trajectory figure, timeline figure or None)`.

    The scores, trajectory and timeline are the emotions' (a multi-task model's first task); the summary also names
    each further task's top label (e.g. the arousal level). A recording longer than `chunk_length_s` (the pipeline's
    option) is classified in consecutive windows of that length; the timeline is `None` when it fits in one. Bad
    input raises `gr.Error` with the reason.
    """
    if audio is None:
        raise gr.Error("No audio yet: upload a recording or record one with the microphone, then press Classify.")
    further_tasks = list(classifier.model.config.label_sets or {})[1:]
    try:
        result = classifier(
            audio,
            top_k=None,
            num_inference_steps=int(num_inference_steps),
            num_samples=int(num_samples),
            chunk_length_s=float(chunk_length_s),
            return_segments=True,
            return_trajectory=True,
            **({"return_tasks": True} if further_tasks else {}),
        )
    except (ValueError, FileNotFoundError) as error:
        raise gr.Error(str(error)) from error
    if further_tasks:  # every task's scores: the plots show the first task's
        tasks = result["scores"]
        result["scores"] = next(iter(tasks.values()))
        for segment in result["segments"]:
            segment["scores"] = next(iter(segment["scores"].values()))

    top = result["scores"][0]
    summary = f"**{top['label']}** ({top['score']:.0%})"
    for task in further_tasks:
        summary += f"; {task}: **{tasks[task][0]['label']}** ({tasks[task][0]['score']:.0%})"
    if num_samples > 1:
        summary += f"; {top['agreement']:.0%} of {int(num_samples)} samples generated its code"
    if len(result["segments"]) > 1:
        summary += f"; {len(result['segments'])} windows of up to {chunk_length_s:g} s"
    colours = label_colours(list(classifier.model.config.id2label.values()))
    scores = {item["label"]: item["score"] for item in result["scores"]}
    trajectory = trajectory_figure(result["trajectory"], top["label"], colours)
    timeline = timeline_figure(result["segments"], colours) if len(result["segments"]) > 1 else None
    return scores, summary, trajectory, timeline


def build_demo(classifier) -> gr.Blocks:
    config = classifier.model.config
    with gr.Blocks(title="Gen-SER: speech emotion recognition") as demo:
        gr.Markdown(
            "# Gen-SER: speech emotion recognition as distribution transport\n"
            "Each emotion has a sinusoidal *taxonomy code*. Conditioned on the speech encoder's features, a "
            "target-matching bridge carries a random initial sample to a code; the emotion is the code it reaches. "
            f"Labels: {', '.join(config.id2label.values())}."
            + "".join(f" Also {task}: {', '.join(labels)}." for task, labels in list(config.tasks.items())[1:])
        )
        with gr.Row():
            with gr.Column():
                audio = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Speech")
                default_steps = max(config.num_inference_steps, MIN_DEFAULT_STEPS)
                steps = gr.Slider(1, 32, value=default_steps, step=1, label="Sampling steps")
                samples = gr.Slider(1, 32, value=1, step=1, label="Samples (more: see how far they agree)")
                window = gr.Slider(
                    1, MAX_CHUNK_LENGTH_S, value=5, step=0.5, label="Chunk length for long recordings (s)"
                )
                button = gr.Button("Classify", variant="primary", elem_id="classify")
            with gr.Column():
                scores = gr.Label(num_top_classes=config.num_labels, label="Emotions", elem_id="scores")
                summary = gr.Markdown(elem_id="summary")
                trajectory = gr.Plot(label="Generative trajectory", elem_id="trajectory")
                timeline = gr.Plot(label="Timeline (recordings longer than one window)", elem_id="timeline")
        button.click(
            lambda *inputs: classify(classifier, *inputs),
            inputs=[audio, steps, samples, window],
            outputs=[scores, summary, trajectory, timeline],
            api_name="classify",
        )
    return demo


if __name__ == "__main__":
    build_demo(load_classifier()).launch()
