"""The chunking options under transformers' ASR pipeline's names (`chunk_length_s`, `stride_length_s`) and their
former names (`segment_length_s`, `segment_hop_s`), in the pipeline, `encode_windows` and `genser-annotate`."""

import json
import warnings

import pytest
import torch

from conftest import genser_classifier, run, table, tone
from pipelines.bulk_annotator import main


def spans(result) -> list[tuple[float, float]]:
    return [(segment["start"], segment["end"]) for segment in result["segments"]]


def test_strides_cut_the_chunks_the_former_hop_cut(classifier):
    audio = tone(300.0, seconds=3.0)
    options = {"top_k": None, "return_segments": True}
    with pytest.warns(FutureWarning, match=r"use `stride_length_s`.*segment_hop_s=0.5 is stride_length_s=0.75"):
        former = classifier(audio, segment_length_s=2.0, segment_hop_s=0.5, **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        current = classifier(audio, chunk_length_s=2.0, stride_length_s=0.75, **options)
        asymmetric = classifier(audio, chunk_length_s=2.0, stride_length_s=(0.5, 1.0), **options)
    assert not [warning for warning in caught if "deprecated" in str(warning.message)]  # the current names
    assert spans(current) == spans(asymmetric) == [(0.0, 2.0), (0.5, 2.5), (1.0, 3.0)]
    assert current == asymmetric == former


def test_chunk_length_is_the_former_segment_length_and_the_default_is_unchanged(classifier):
    audio = tone(300.0, seconds=5.0)
    with pytest.warns(FutureWarning, match=r"`segment_length_s` is deprecated.*chunk_length_s=2"):
        former = classifier(audio, top_k=None, segment_length_s=2.0, return_segments=True)
    assert spans(former) == [(0.0, 2.0), (2.0, 4.0), (4.0, 5.0)]
    assert classifier(audio, top_k=None, chunk_length_s=2.0, return_segments=True) == former
    assert classifier(audio, top_k=None, chunk_length_s=2.0, stride_length_s=0, return_segments=True) == former
    assert spans(classifier(audio, return_segments=True)) == [(0.0, 5.0)]  # 30 s chunks, no overlap


@pytest.mark.parametrize(
    "options, message",
    [
        ({"segment_length_s": 2.0, "chunk_length_s": 2.0}, "segment_length_s is the former name of chunk_length_s"),
        ({"segment_hop_s": 1.0, "stride_length_s": 0.5}, "segment_hop_s is the former name of stride_length_s"),
        ({"chunk_length_s": 2.0, "stride_length_s": 1.0}, "starting 0 s apart.*Pass smaller strides"),
        ({"chunk_length_s": 2.0, "stride_length_s": (0.5, 1.5)}, "together they must be at most chunk_length_s - 0.1"),
        ({"stride_length_s": -0.5}, "stride_length_s must be a number of seconds >= 0"),
        ({"stride_length_s": (0.1, 0.2, 0.3)}, r"or a \(left, right\) pair of them"),
        ({"stride_length_s": "0.5"}, "stride_length_s must be a number of seconds"),
        ({"chunk_length_s": 0.0}, "chunk_length_s must be a number of seconds >= 0.1"),
    ],
)
def test_impossible_chunking_is_refused_saying_what_to_do(classifier, options, message):
    with pytest.raises(ValueError, match=message):
        classifier(tone(300.0, seconds=3.0), **options)


def test_options_of_the_construction_and_of_the_call_are_checked_together(model_dir):
    audio = tone(300.0, seconds=3.0)
    short_chunks = genser_classifier(str(model_dir), chunk_length_s=1.0)
    with pytest.raises(ValueError, match="together they must be at most"):
        short_chunks(audio, stride_length_s=0.5)
    strided = short_chunks(audio, stride_length_s=0.25, return_segments=True)
    assert spans(strided) == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (1.5, 2.5), (2.0, 3.0)]
    with pytest.raises(ValueError, match="former name of stride_length_s"):
        genser_classifier(str(model_dir), stride_length_s=0.25)(audio, segment_hop_s=0.5)


def test_encode_windows_takes_the_current_names(classifier):
    clips = [tone(300.0, seconds=2.5)]
    with pytest.warns(FutureWarning):
        former = classifier.encode_windows(clips, 1.0, 0.75)
    current = classifier.encode_windows(clips, chunk_length_s=1.0, stride_length_s=0.125)
    assert current[0]["starts"] == former[0]["starts"] == [0.0, 0.75, 1.5]
    assert torch.equal(current[0]["pooled_layer_features"], former[0]["pooled_layer_features"])


def annotate_command(model_dir, corpus, output_dir, *flags) -> list[str]:
    common = ["--model", str(model_dir), "--folder", str(corpus), "--output_dir", str(output_dir)]
    return [*common, "--shard_size", "3", "--batch_size", "4", *flags]


def test_the_annotator_takes_the_current_flags_and_resumes_a_run_made_with_the_former(model_dir, corpus, tmp_path):
    current = tmp_path / "current"
    main(annotate_command(model_dir, corpus, current, "--chunk_length_s", "2", "--stride_length_s", "0.5"))
    assert {(row["start"], row["end"]) for row in table(current, "windows")} >= {(0.0, 2.0), (1.0, 3.0), (3.0, 5.0)}
    former = tmp_path / "former"
    with pytest.warns(FutureWarning, match="segment_hop_s=1 is stride_length_s=0.5"):
        assert run(model_dir, former, folder=str(corpus), segment_hop_s=1.0, max_shards=2)["finished_shards"] == 2
    assert json.loads((former / "run.json").read_text())["segment_hop_s"] == 1.0
    main(annotate_command(model_dir, corpus, former, "--chunk_length_s", "2", "--stride_length_s", "0.25", "0.75"))
    for name in ("windows", "files", "errors"):
        assert table(former, name) == table(current, name)


def test_the_annotator_refuses_a_flag_twice_named_or_misspelt_before_writing(model_dir, corpus, tmp_path):
    output_dir = tmp_path / "labels"
    both = annotate_command(model_dir, corpus, output_dir, "--chunk_length_s", "2", "--segment_length_s", "2")
    with pytest.raises(ValueError, match="segment_length_s is the former name of chunk_length_s"):
        main(both)
    with pytest.raises(ValueError, match="leaves chunks of chunk_length_s=2"):
        main(annotate_command(model_dir, corpus, output_dir, "--chunk_length_s", "2", "--stride_length_s", "1"))
    with pytest.raises(ValueError, match="not used by the HfArgumentParser.*--stride_lenght_s"):
        main(annotate_command(model_dir, corpus, output_dir, "--stride_lenght_s", "1"))
    assert not output_dir.exists()
