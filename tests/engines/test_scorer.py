"""The engines' one scoring function: ``ml-api predict``'s rows, refusals set aside, the pin."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from ml_api.core.errors import InvalidInput, Problem
from ml_api.core.model.integrity import ArtifactError
from ml_api.core.model.ranges import OutOfRangeInput
from ml_api.engines.jobs import path_format
from ml_api.engines.refusals import PartitionRefused, offsets
from ml_api.engines.scorer import ModelPin, as_csv_text, score_batch
from ml_api.predict import score_arrow_chunk


def text_table(frame):
    """A frame as Arrow's CSV reader gives ``ml-api predict`` its cells: every column text."""
    return pacsv.read_csv(
        io.BytesIO(frame.to_csv(index=False).encode()),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(frame.columns, pa.string()), strings_can_be_null=False
        ),
    )


def test_a_clean_batch_is_what_ml_api_predict_writes(service, penguins_frame):
    table = text_table(penguins_frame.head(300))
    expected, _ = score_arrow_chunk(service, table, 1)
    got = score_batch(service, table, text=True)
    assert got.scored.equals(expected) and got.refused.num_rows == 0
    assert as_csv_text(got.scored).column("probability_Adelie").to_pylist() == [
        pa.array([v]).cast(pa.string())[0].as_py()
        for v in expected.column("probability_Adelie").to_pylist()
    ]


def test_refused_rows_are_set_aside_with_all_their_problems(service, penguins_frame):
    frame = penguins_frame.head(120).astype(object)
    frame.loc[4, "island"] = "Atlantis"
    frame.loc[70, ["bill_length_mm", "sex"]] = ["5O", "robot"]
    table = text_table(frame)
    with pytest.raises(InvalidInput) as refused:  # ml-api predict's policy: the batch fails
        score_batch(service, table, text=True, first_row=11)
    assert [(p.instance, p.field) for p in refused.value.details] == [
        (15, "island"), (81, "bill_length_mm"), (81, "sex")
    ]  # fmt: skip
    got = score_batch(service, table, text=True, first_row=11, keep_refused=True)
    assert got.scored.num_rows == 118 and got.refused.column("row").to_pylist() == [15, 81]
    problems = [json.loads(p) for p in got.refused.column("problems").to_pylist()]
    assert [[q["field"] for q in p] for p in problems] == [["island"], ["bill_length_mm", "sex"]]
    assert problems[1][1]["problem"] == "unknown category 'robot'; allowed: 'female', 'male'"
    clean = text_table(frame.drop(index=[4, 70]))
    assert got.scored.equals(score_arrow_chunk(service, clean, 1)[0])


def test_the_reject_policy_sets_out_of_range_rows_aside(settings, penguins_frame):
    pin, service = ModelPin.load(settings.model_copy(update={"out_of_range": "reject"}))
    frame = penguins_frame.head(30).copy()
    frame.loc[3, "flipper_length_mm"] = 400.0
    with pytest.raises(OutOfRangeInput):
        score_batch(service, text_table(frame), text=True)
    got = score_batch(service, text_table(frame), text=True, keep_refused=True)
    assert got.refused.column("row").to_pylist() == [4]
    assert "outside the training range" in got.refused.column("problems")[0].as_py()
    assert pin.service() is service  # loaded once per process


def test_a_worker_refuses_a_model_that_is_not_the_pinned_one(settings):
    pin, _ = ModelPin.load(settings)
    forged = ModelPin(pin.settings, "0" * 64)
    with pytest.raises(ArtifactError, match="not the version 1 with sha256 000000000000"):
        forged.service()


def test_a_refusal_survives_the_text_of_an_engine_error_and_is_renumbered():
    exc = InvalidInput("1 problem", [Problem("x", instance=3, field="sex")])
    text = "Traceback (most recent call last):\n  ...\n" + str(PartitionRefused.of(2, exc)) + "\n"
    found = PartitionRefused.find(f"py4j said: {text} SQLSTATE: 38000")
    assert found is not None and found.partition == 2
    again = found.as_input_error(offsets({0: 10, 1: 5, 2: 7})[2])
    assert [(p.instance, p.field, p.problem) for p in again.details] == [(18, "sex", "x")]
    assert PartitionRefused.find("some other failure") is None


@pytest.mark.parametrize(
    ("name", "kind"),
    [("in.parquet", "parquet"), ("s3a://b/x.pq/", "parquet"), ("out.csv", "csv"),
     ("out.csv.gz", "csv"), ("s3a://bucket/table", "parquet")],
)  # fmt: skip
def test_formats_follow_the_name(name, kind):
    assert path_format(name) == kind


def test_a_directory_is_what_its_files_are(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "part-0.csv").write_text("a\n1\n")
    assert path_format(str(tmp_path / "d")) == "csv"
    (tmp_path / "d" / "part-1.parquet").write_bytes(b"")
    with pytest.raises(InvalidInput, match="cannot tell whether"):
        path_format(str(tmp_path / "d"))
