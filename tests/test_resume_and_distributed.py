"""Training resumes from a checkpoint, and runs under torchrun with two CPU processes."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from training.run_genser import main
from training.synthetic_corpus import generate_corpus

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_corpus(tmp_path_factory.mktemp("corpus"), num_speakers=3, num_sentences=2, seed=0)


def arguments(corpus, output, epochs):
    return [
        "--dataset_name", str(corpus),
        "--output_dir", str(output),
        "--num_train_epochs", str(epochs),
        "--learning_rate", "1e-3",
        "--per_device_train_batch_size", "4",
        "--eval_fraction", "0.34",
        "--save_strategy", "epoch",
        "--report_to", "none",
        "--config_overrides", "encoding_dim=32,head_hidden_size=32",
    ]


def test_resume_from_a_checkpoint_continues_rather_than_restarts(corpus, tmp_path):
    output = tmp_path / "run"
    main(arguments(corpus, output, epochs=2))
    checkpoints = sorted(output.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert len(checkpoints) == 2
    first_epoch, last_epoch = checkpoints
    # Resuming from epoch 1 of 2 trains exactly one more epoch: the step count matches the uninterrupted run.
    resumed = tmp_path / "resumed"
    main(arguments(corpus, resumed, epochs=2) + ["--resume_from_checkpoint", str(first_epoch)])
    resumed_checkpoints = sorted(p.name for p in resumed.glob("checkpoint-*"))
    assert resumed_checkpoints == [last_epoch.name]
    # Resuming from the final checkpoint has nothing left to do: the saved model is that checkpoint's weights.
    finished = tmp_path / "finished"
    main(arguments(corpus, finished, epochs=2) + ["--resume_from_checkpoint", str(last_epoch)])
    assert (finished / "model.safetensors").read_bytes() == (last_epoch / "model.safetensors").read_bytes()


def test_two_cpu_processes_under_torchrun(corpus, tmp_path):
    output = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
        "-m", "training.run_genser", *arguments(corpus, output, epochs=1), "--use_cpu", "true", "--ddp_backend", "gloo",
    ]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert completed.returncode == 0, completed.stderr[-4000:]
    checkpoint = next(output.glob("checkpoint-*"))
    # One RNG state per process: the Trainer really ran with a world size of two.
    assert sorted(p.name for p in checkpoint.glob("rng_state_*.pth")) == ["rng_state_0.pth", "rng_state_1.pth"]
    assert (output / "model.safetensors").exists() and (output / "README.md").exists()
