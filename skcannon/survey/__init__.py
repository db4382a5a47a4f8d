"""A trained model applied to a whole survey on Dask: chunks, resumable Parquet parts, one
catalog (see :mod:`skcannon.survey.run`)."""

from skcannon.survey.chunk import label_chunk
from skcannon.survey.run import SurveyResult, label_survey

__all__ = ["SurveyResult", "label_chunk", "label_survey"]
