"""Run the book's notebooks: the declared pipeline (``pipeline.yml``), parameter checking, papermill
execution with atomic outputs and a cache that skips up-to-date pages, the generated table of contents,
and the Jupyter Book build."""
from alignlib.runner.params import NotebookParameter, ParameterError, read_parameters, validate_parameters
from alignlib.runner.pipeline import Pipeline, PlannedRun, load_pipeline
from alignlib.runner.execute import NotebookFailed, PageStatus, default_executed_dir, execute_notebook, run_pipeline
from alignlib.runner.book import BookBuildFailed, build_book
from alignlib.runner.parallel import StepsFailed
from alignlib.runner.toc import render_toc, toc_differences, write_toc

__all__ = [
    "BookBuildFailed", "NotebookFailed", "NotebookParameter", "PageStatus", "ParameterError", "Pipeline",
    "PlannedRun", "StepsFailed", "build_book", "default_executed_dir", "execute_notebook", "load_pipeline", "read_parameters",
    "render_toc", "run_pipeline", "toc_differences", "validate_parameters", "write_toc",
]
