"""Run the book's notebooks: the declared pipeline (``pipeline.yml``), parameter checking,
papermill execution with atomic outputs, and the Jupyter Book build."""
from alignlib.runner.params import NotebookParameter, ParameterError, read_parameters, validate_parameters
from alignlib.runner.pipeline import Pipeline, PlannedRun, load_pipeline
from alignlib.runner.execute import NotebookFailed, execute_notebook, run_pipeline
from alignlib.runner.book import BookBuildFailed, build_book

__all__ = [
    "BookBuildFailed", "NotebookFailed", "NotebookParameter", "ParameterError", "Pipeline", "PlannedRun",
    "build_book", "execute_notebook", "load_pipeline", "read_parameters", "run_pipeline",
    "validate_parameters",
]
