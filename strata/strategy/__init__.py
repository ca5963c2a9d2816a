"""ML strategy (course 3, "Structuring Machine Learning Projects"): diagnosing bias, variance,
data mismatch and overfitting to the dev set; building train/train-dev/dev/test sets across
distributions; single-number, weighted and satisficing metrics; error analysis; multi-task
learning."""

from strata.strategy.diagnosis import (
    ACTIONS,
    Diagnosis,
    classification_error,
    diagnose,
    diagnose_model,
)
from strata.strategy.error_analysis import (
    ErrorAnalysis,
    error_analysis,
    misclassified,
    plot_errors,
    read_tags,
    sample_errors,
    tag_with,
    write_tag_template,
)
from strata.strategy.evaluation import (
    Choice,
    choose,
    choose_model,
    f1_from,
    time_per_example,
    weighted_error,
)
from strata.strategy.multitask import (
    evaluate_per_task,
    make_multitask_data,
    multitask_model,
    train_multitask,
)
from strata.strategy.sets import Sets, build_sets

__all__ = [
    "Diagnosis", "diagnose", "diagnose_model", "classification_error", "ACTIONS",
    "Sets", "build_sets",
    "f1_from", "weighted_error", "time_per_example", "choose", "choose_model", "Choice",
    "ErrorAnalysis", "error_analysis", "misclassified", "sample_errors", "write_tag_template",
    "read_tags", "tag_with", "plot_errors",
    "make_multitask_data", "multitask_model", "evaluate_per_task", "train_multitask",
]
