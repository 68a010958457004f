"""One loaded pipeline called from several threads at once gives the results of sequential calls (a web server, a
Gradio Space with concurrency, a thread pool)."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from conftest import genser_classifier, save_genser, tone

# Clips of different lengths, so that Whisper runs at a different number of frames in every thread.
CLIPS = [tone(150.0 * (1 + index % 4), seconds=0.4 + 0.23 * index, seed=index) for index in range(12)]
# Calls differ in their sampling options too: the schedule's grid and coefficients must stay each call's own.
OPTIONS = [{}, {"num_inference_steps": 2}, {"num_inference_steps": 6, "num_samples": 3, "seed": 5}]


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_threads_share_one_pipeline_and_get_the_sequential_results(encoder_family, device, tmp_path):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device here: the GPU run of this test needs one")
    _, encoder_config, feature_extractor = encoder_family
    classifier = genser_classifier(str(save_genser(tmp_path, encoder_config, feature_extractor)), device=device)
    calls = [(clip, options) for clip in CLIPS for options in OPTIONS]
    expected = [classifier(clip, top_k=None, **options) for clip, options in calls]

    def classify(call):
        clip, options = call
        return classifier(clip, top_k=None, **options)

    for _ in range(3):
        with ThreadPoolExecutor(max_workers=4) as pool:
            assert list(pool.map(classify, calls)) == expected
