"""Score a Spark DataFrame with a verified ml-api model: ``mapInArrow`` over the scoring function.

Every partition's Arrow batches go through :func:`ml_api.engines.scorer.score_batch` (the rules
of ``ml-api predict``) in the Python worker, where the model is loaded once per process and pinned
by sha256 (:class:`~ml_api.engines.scorer.ModelPin`). ``mapInArrow``, not ``mapInPandas`` or a
pandas UDF: the batches arrive as Arrow, the scorer's CSV path is Arrow end to end, and no pandas
conversion is paid each way (a design choice; the two were not timed against each other).

Needs ``pyspark`` (``pip install 'ml-api[spark]'``) and a Java runtime (17 or newer). On a
cluster every executor needs ml-api installed and the model root at the same path (a shared
volume, the image, or ``--archives``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from ml_api.core.errors import InvalidInput
from ml_api.engines.jobs import EngineRun, csv_codec, model_of, path_format, refusal_in_input
from ml_api.engines.refusals import PartitionRefused, offsets
from ml_api.engines.scorer import (
    PROBLEMS_COLUMN,
    ROW_COLUMN,
    ModelPin,
    score_batch,
    score_batch_example,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from ml_api.settings import Settings

PANDAS_WARNING = "PySpark does not yet fully support pandas"
"""PySpark 4's warning about pandas 3, which ``mapInArrow`` does not use (it is Arrow only)."""

PARTITION_COLUMN = "_ml_api_partition"
"""Side output helper column: the refused row's partition (dropped once rows are numbered)."""

OnRefused = Literal["fail", "keep"]


def score_dataframe(
    df: DataFrame,
    settings: Settings | None = None,
    *,
    text: bool = False,
    on_refused: OnRefused = "fail",
    text_output: bool = False,
    pin: ModelPin | None = None,
    out_of_range: Any = None,
    rows: Any = None,
) -> DataFrame:
    """Add ``ml-api predict``'s columns to a Spark DataFrame (lazily: nothing runs until written).

    Args:
        df: Shape ``(n_rows, >= n_features)``; every feature column present, any other columns
            (ids, dates) carried through.
        settings: The model to score with (``ML_API_*``; default: the environment's); loaded and
            pinned here, on the driver.
        text: The columns are a CSV's cells as text (``spark.read.csv`` without a schema), read
            by the model's schema as ``ml-api predict`` reads a CSV; else typed columns.
        on_refused: ``fail``: a row that breaks the schema fails the job, its error naming the
            partition's rows and columns (:class:`~ml_api.engines.refusals.PartitionRefused`);
            ``keep``: such rows stay in the output with null predictions and a
            :data:`~ml_api.engines.scorer.PROBLEMS_COLUMN` (JSON) saying why, null for the rows
            that scored, plus :data:`PARTITION_COLUMN` and
            :data:`~ml_api.engines.scorer.ROW_COLUMN` (1-based within the partition).
        text_output: Every column as the text ``ml-api predict`` writes into a CSV.
        pin: An already pinned model (else loaded from ``settings``).
        out_of_range: A Spark accumulator of :class:`CounterParam` that sums the values outside
            the training range per feature (the ``warn`` policy), or ``None``.
        rows: A Spark accumulator (int) that sums the rows scored, or ``None``.

    Returns:
        The input's columns, then ``prediction`` and one ``probability_<class>`` per class.

    Raises:
        ArtifactError: The model fails its gates (on the driver now, or on a worker later).
    """
    from ml_api.settings import Settings

    if pin is None:
        pin, service = ModelPin.load(settings or Settings())
    else:
        service = pin.service()
    struct = output_struct(df, score_batch_example(service), on_refused, text_output)
    mapper = _Mapper(pin, text, on_refused == "keep", text_output, _arrow_schema(struct))
    mapper.out_of_range, mapper.rows = out_of_range, rows
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", PANDAS_WARNING, FutureWarning)
        return df.mapInArrow(mapper, struct)


def output_struct(
    df: DataFrame, example: pa.Table, on_refused: OnRefused, text_output: bool
) -> Any:
    """The scored DataFrame's Spark schema: the input's columns, the added ones, the helpers."""
    from pyspark.sql.pandas.types import from_arrow_type
    from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

    added = [n for n in example.column_names if n not in df.columns]
    fields = []
    for f in df.schema.fields:
        if f.name in example.column_names:  # replaced by the model's output, as ml-api predict
            continue
        fields.append(StructField(f.name, StringType(), True) if text_output else f)
    for name in example.column_names:
        kind = StringType() if text_output else from_arrow_type(example.schema.field(name).type)
        fields.append(StructField(name, kind, True))
    del added
    if on_refused == "keep":
        fields += [
            StructField(PARTITION_COLUMN, IntegerType(), True),
            StructField(ROW_COLUMN, LongType(), True),
            StructField(PROBLEMS_COLUMN, StringType(), True),
        ]
    return StructType(fields)


def _arrow_schema(struct: Any) -> pa.Schema:
    from pyspark.sql.pandas.types import to_arrow_schema

    return to_arrow_schema(struct)


class CounterParam:
    """A Spark ``AccumulatorParam`` summing ``Counter`` s (values outside the training range)."""

    def zero(self, value: Counter[str]) -> Counter[str]:
        """An empty counter."""
        return Counter()

    def addInPlace(self, value1: Counter[str], value2: Counter[str]) -> Counter[str]:
        """``value1`` plus ``value2``."""
        value1.update(value2)
        return value1


class _Mapper:
    """The ``mapInArrow`` function: one partition's batches in, scored batches out (picklable)."""

    def __init__(
        self, pin: ModelPin, text: bool, keep: bool, text_output: bool, schema: pa.Schema
    ) -> None:
        self.pin = pin
        self.text = text
        self.keep = keep
        self.text_output = text_output
        self.schema = schema
        self.out_of_range: Any = None
        self.rows: Any = None

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        partition = context.partitionId() if context is not None else 0
        service = self.pin.service()
        position = scored_rows = 0
        found: Counter[str] = Counter()
        for batch in batches:
            table = pa.Table.from_batches([batch])
            try:
                out = score_batch(
                    service,
                    table,
                    text=self.text,
                    first_row=position + 1,
                    keep_refused=self.keep,
                    text_output=self.text_output,
                )
            except InvalidInput as exc:
                raise PartitionRefused.of(partition, exc) from None
            position += table.num_rows
            found.update(out.out_of_range)
            scored_rows += out.scored.num_rows
            yield from self._combined(out.scored, out.refused, partition).to_batches()
        if self.out_of_range is not None and found:
            self.out_of_range.add(found)
        if self.rows is not None:
            self.rows.add(scored_rows)

    def _combined(self, scored: pa.Table, refused: pa.Table, partition: int) -> pa.Table:
        """Scored and refused rows in the declared schema (missing columns null)."""
        parts = [scored]
        if self.keep and refused.num_rows:
            parts.append(
                refused.append_column(
                    PARTITION_COLUMN, pa.array([partition] * refused.num_rows, type=pa.int32())
                )
            )
        out = []
        for part in parts:
            columns = [
                part.column(f.name).cast(f.type)
                if f.name in part.column_names
                else pa.nulls(part.num_rows, type=f.type)
                for f in self.schema
            ]
            out.append(pa.Table.from_arrays(columns, schema=self.schema))
        return pa.concat_tables(out) if len(out) > 1 else out[0]


def session(app_name: str = "ml-api predict", chunk_rows: int = 5000) -> SparkSession:
    """The Spark session: the one ``spark-submit`` configured, else a local one on every core.

    Args:
        app_name: The application's name (Spark's UI and logs).
        chunk_rows: Rows per Arrow batch handed to the scorer (``ml-api predict --chunk-rows``).
    """
    import os
    import sys

    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", str(chunk_rows))
    if SparkSession.getActiveSession() is None and not SparkConf().contains("spark.master"):
        # No spark-submit, no cluster configured: local mode, workers on this interpreter.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = builder.master("local[*]").config("spark.ui.showConsoleProgress", "false")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", PANDAS_WARNING, FutureWarning)
            spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("OFF")  # ml-api reports what fails, in its own words
        return spark
    return builder.getOrCreate()


def run(
    settings: Settings,
    input_path: str,
    output_path: str,
    *,
    refused_path: str | None = None,
    chunk_rows: int = 5000,
    spark: SparkSession | None = None,
) -> EngineRun:
    """``ml-api predict --engine spark``: score a Parquet or CSV path into a directory of parts.

    Args:
        settings: The model and policies (``ML_API_*`` and the command's options).
        input_path: A file, a directory of part files or a URL Spark reads (``s3a://...``);
            its format by :func:`~ml_api.engines.jobs.path_format`. CSV is read as text cells
            (header row, RFC 4180 quotes), as ``ml-api predict`` reads it.
        output_path: The directory of part files written (replaced if it exists), Parquet or
            CSV by its name (``.csv.gz``: gzip part files).
        refused_path: Where refused rows go instead of failing the job (``--refused``): their
            input columns, ``row`` and ``problems``; ``None`` fails on the first refusal.
        chunk_rows: Rows per Arrow batch handed to the scorer.
        spark: The session (default: :func:`session`).

    Returns:
        Rows scored and refused, values outside the training range.

    Raises:
        InvalidInput: As ``ml-api predict`` (rows numbered in the input); nothing is left at
            ``output_path``.
    """
    spark = spark or session(chunk_rows=chunk_rows)
    pin, _ = ModelPin.load(settings)
    in_format, out_format = path_format(input_path), path_format(output_path)
    codec = csv_codec(output_path) if out_format == "csv" else None
    reader = spark.read
    df = (
        reader.parquet(input_path)
        if in_format == "parquet"
        else reader.options(**CSV_OPTIONS).csv(input_path)
    )
    keep = refused_path is not None
    found: Any = spark.sparkContext.accumulator(Counter(), CounterParam())  # type: ignore[arg-type]
    rows = spark.sparkContext.accumulator(0)
    scored = score_dataframe(
        df,
        pin=pin,
        text=in_format == "csv",
        on_refused="keep" if keep else "fail",
        text_output=out_format == "csv",
        out_of_range=found,
        rows=rows,
    )
    result = EngineRun(model_of(pin.settings))
    if not keep:
        try:
            _write(scored, output_path, out_format, codec)
        except Exception as exc:
            refusal = PartitionRefused.find(str(exc))
            _delete(spark, output_path)
            if refusal is None:
                raise
            raise refusal_in_input(refusal, _partition_rows(df)) from None
        result.rows = rows.value
    else:
        result = _run_keeping(spark, df, scored, output_path, refused_path or "", out_format, codec)
        result.model = model_of(pin.settings)
    result.out_of_range = Counter(found.value)
    return result


CSV_OPTIONS = {"header": "true", "escape": '"', "inferSchema": "false", "encoding": "UTF-8"}
"""How Spark reads a CSV as ``ml-api predict`` does: a header, RFC 4180 quoting, text cells."""

CSV_WRITE_OPTIONS = {
    "header": "true",
    "escape": '"',
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
    "nullValue": "",
    "emptyValue": "",
}
"""How Spark writes part files as ``ml-api predict`` writes a CSV: cells as they are, a null
as an empty cell, quotes only where a cell needs them."""


def _write(frame: DataFrame, path: str, out_format: str, codec: str | None) -> None:
    writer = frame.write.mode("overwrite")
    if out_format == "parquet":
        writer.parquet(path)
    else:
        options = dict(CSV_WRITE_OPTIONS, **({"compression": codec} if codec else {}))
        writer.options(**options).csv(path)


def _run_keeping(
    spark: SparkSession,
    df: DataFrame,
    scored: DataFrame,
    output_path: str,
    refused_path: str,
    out_format: str,
    codec: str | None,
) -> EngineRun:
    """Scored rows to the output, refused ones (numbered in the input) to the side output."""
    from pyspark.sql import functions as F
    from pyspark.storagelevel import StorageLevel

    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        ok = scored.filter(F.col(PROBLEMS_COLUMN).isNull()).drop(
            PARTITION_COLUMN, ROW_COLUMN, PROBLEMS_COLUMN
        )
        _write(ok, output_path, out_format, codec)
        bad = scored.filter(F.col(PROBLEMS_COLUMN).isNotNull())
        refused = bad.count()
        if refused:
            starts = offsets(_partition_rows(df))
            table = spark.createDataFrame(
                list(starts.items()), f"{PARTITION_COLUMN} int, _ml_api_offset long"
            )
            numbered = (
                bad.join(F.broadcast(table), PARTITION_COLUMN)
                .withColumn(ROW_COLUMN, F.col(ROW_COLUMN) + F.col("_ml_api_offset"))
                .select(*df.columns, ROW_COLUMN, PROBLEMS_COLUMN)
                .orderBy(ROW_COLUMN)
            )
            side = path_format(refused_path)
            if side == "csv":
                numbered = numbered.select(*(F.col(c).cast("string") for c in numbered.columns))
            _write(numbered, refused_path, side, csv_codec(refused_path) if side == "csv" else None)
        rows = scored.count() - refused
    finally:
        scored.unpersist()
    return EngineRun(rows=rows, refused=refused)


def _partition_rows(df: DataFrame) -> dict[int, int]:
    """Rows of each of ``df``'s partitions (a light pass: no column is read for Parquet)."""
    from pyspark.sql import functions as F

    counts = df.select(F.spark_partition_id().alias("p")).groupBy("p").count().collect()
    return {int(r["p"]): int(r["count"]) for r in counts}


def _delete(spark: SparkSession, path: str) -> None:
    """Delete ``path`` (what a failed job left) through Spark's Hadoop file system."""
    context: Any = spark.sparkContext
    hadoop_path = context._jvm.org.apache.hadoop.fs.Path(path)
    conf = context._jsc.hadoopConfiguration()
    hadoop_path.getFileSystem(conf).delete(hadoop_path, True)
