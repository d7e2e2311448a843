"""Scoring a segmentation method on a protocol's test sets and writing the reports."""
from nuclei_tf.evaluation.predictors import baseline_predictor, folder_predictor, model_predictor
from nuclei_tf.evaluation.report import TABLE2_COLUMNS, write_reports
from nuclei_tf.evaluation.runner import evaluate_splits

__all__ = ["TABLE2_COLUMNS", "baseline_predictor", "evaluate_splits", "folder_predictor", "model_predictor", "write_reports"]
