"""A trained model applied to a whole survey on Dask: inputs (files, directories, catalogs),
chunks, resumable Parquet parts, one catalog (see :mod:`skcannon.survey.run`)."""

from skcannon.survey.chunk import label_chunk, read_inputs
from skcannon.survey.inputs import SurveyInput, survey_inputs
from skcannon.survey.run import SurveyResult, label_survey
from skcannon.survey.spectra import read_model_spectra

__all__ = ["SurveyInput", "SurveyResult", "label_chunk", "label_survey", "read_inputs",
           "read_model_spectra", "survey_inputs"]
