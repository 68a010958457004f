"""The Gradio Space: its prediction function, the app served on localhost (gradio_client), and a real browser."""

import os
import shutil
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
import numpy as np
import pytest
from gradio_client import Client, handle_file
from huggingface_hub import SpaceCard

from conftest import LABELS, save_genser, tone
from spaces_demo import app
from training.synthetic_corpus import write_wav

SPACE = Path(app.__file__).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return app.load_classifier(save_genser(tmp_path_factory.mktemp("genser")), device="cpu")


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A 1 s clip, a 5 s recording (three 2 s windows) and a file that is not audio."""
    directory = tmp_path_factory.mktemp("clips")
    write_wav(directory / "short.wav", tone(300.0))
    write_wav(directory / "long.wav", np.concatenate([tone(300.0, 2.0), tone(500.0, 2.0, seed=1), tone(700.0, 1.0)]))
    (directory / "notes.wav").write_text("not audio")
    return directory


@pytest.fixture(scope="module")
def served_app(classifier):
    demo = app.build_demo(classifier)
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)  # gradio picks a free port
    yield demo.local_url
    demo.close()


def test_prediction_scores_every_label_and_plots_the_trajectory(classifier, clips):
    scores, summary, trajectory, timeline = app.classify(classifier, str(clips / "short.wav"), 3, 4, 5.0)
    assert set(scores) == set(LABELS.values())
    assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
    top = max(scores, key=scores.get)
    assert summary.startswith(f"**{top}**") and "of 4 samples" in summary
    lines = trajectory.axes[0].get_lines()
    assert sorted(line.get_label() for line in lines) == sorted(LABELS.values())
    assert all(len(line.get_xdata()) == 3 + 1 for line in lines)  # x_0 and one point per step
    assert timeline is None  # one window: nothing to put on a timeline


def test_long_recording_gets_a_timeline_of_windows(classifier, clips):
    _, summary, _, timeline = app.classify(classifier, str(clips / "long.wav"), 1, 1, 2.0)
    assert "3 windows" in summary
    bars = timeline.axes[0].patches
    assert len(bars) == 3 * len(LABELS)
    assert sorted({bar.get_x() for bar in bars}) == pytest.approx([0.0, 2.0, 4.0])
    window_labels = [text.get_text() for text in timeline.axes[0].texts]
    assert len(window_labels) == 3 and set(window_labels) <= set(LABELS.values())


def test_bad_input_is_explained(classifier, clips):
    with pytest.raises(gr.Error, match="No audio yet"):
        app.classify(classifier, None, 1, 1, 5.0)
    with pytest.raises(gr.Error, match="Could not decode any audio"):
        app.classify(classifier, str(clips / "notes.wav"), 1, 1, 5.0)


def test_model_comes_from_the_environment_or_the_main_job(monkeypatch, tmp_path, classifier):
    monkeypatch.delenv(app.MODEL_ENV, raising=False)
    monkeypatch.setattr(app, "DEFAULT_MODEL", tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="Run `make main`.*or set GENSER_MODEL"):
        app.load_classifier()
    directory = save_genser(tmp_path / "from-env")
    monkeypatch.setenv(app.MODEL_ENV, str(directory))
    assert app.load_classifier(device="cpu").model.config.id2label == classifier.model.config.id2label


def test_space_card_declares_the_gradio_app():
    card = SpaceCard.load(SPACE / "README.md")
    assert card.data.sdk == "gradio" and (SPACE / card.data.app_file).is_file()
    requirements = (SPACE / "requirements.txt").read_text().split()
    assert {"gradio>=5", "matplotlib", "torch>=2.9", "transformers>=5.23,<6", "diffusers>=0.42,<0.43"} <= set(requirements)
    assert (SPACE / "packages.txt").read_text().split() == ["ffmpeg"]  # the pipeline decodes uploads with ffmpeg


def test_served_app_answers_gradio_client(served_app, clips):
    client = Client(served_app, verbose=False)
    scores, summary, trajectory, timeline = client.predict(
        handle_file(str(clips / "short.wav")), 2, 1, 5.0, api_name="/classify"
    )
    assert {item["label"] for item in scores["confidences"]} == set(LABELS.values())
    assert scores["label"] == scores["confidences"][0]["label"]
    assert summary.startswith(f"**{scores['label']}**")
    assert trajectory["type"] == "matplotlib" and trajectory["plot"]
    assert timeline is None
    with pytest.raises(Exception, match="Could not decode any audio"):
        client.predict(handle_file(str(clips / "notes.wav")), 2, 1, 5.0, api_name="/classify")


@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="Chromium and chromedriver are missing (Debian packages `chromium` and `chromium-driver`); `make test` "
    "installs them where it can",
)
def test_browser_uploads_a_clip_and_sees_labels_and_trajectory(served_app, clips, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1100"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.get(served_app)
        wait = WebDriverWait(driver, 60)
        upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "input[type=file]"))
        upload.send_keys(str(clips / "long.wav"))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "audio, .waveform-container, #waveform"))
        driver.find_element(By.ID, "classify").click()
        wait.until(lambda d: any(label in d.find_element(By.ID, "scores").text for label in LABELS.values()))
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#trajectory img"))
        shown = driver.find_element(By.ID, "scores").text
        assert sum(label in shown for label in LABELS.values()) == len(LABELS)
        assert driver.find_element(By.CSS_SELECTOR, "#trajectory img").size["width"] > 100
        screenshot = tmp_path / "space_demo.png"
        driver.save_screenshot(str(screenshot))
        assert screenshot.stat().st_size > 10_000
        print(f"screenshot: {screenshot}")
    finally:
        driver.quit()


def test_an_emotion_and_arousal_model_shows_its_emotions_and_names_its_arousal(clips, tmp_path):
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    from conftest import tiny_wav2vec2_config
    from modeling_genser import GenSERConfig, GenSERForAudioClassification

    emotions = list(LABELS.values())
    torch.manual_seed(0)
    config = GenSERConfig(
        encoder_config=tiny_wav2vec2_config(), label_sets={"label": emotions, "arousal": ["low", "medium", "high"]}
    )
    directory = save_genser(
        tmp_path / "joint", model=GenSERForAudioClassification(config),
        feature_extractor=Wav2Vec2FeatureExtractor(return_attention_mask=True),
    )  # fmt: skip
    classifier = app.load_classifier(directory, device="cpu")
    scores, summary, trajectory, timeline = app.classify(classifier, str(clips / "long.wav"), 2, 1, 2.0)
    both = classifier(str(clips / "long.wav"), top_k=None, num_inference_steps=2, segment_length_s=2.0, return_tasks=True)
    assert scores == pytest.approx({entry["label"]: entry["score"] for entry in both["label"]})
    assert f"; arousal: **{both['arousal'][0]['label']}** ({both['arousal'][0]['score']:.0%})" in summary
    assert sorted(line.get_label() for line in trajectory.axes[0].get_lines()) == sorted(emotions)
    assert len(timeline.axes[0].patches) == 3 * len(emotions)
