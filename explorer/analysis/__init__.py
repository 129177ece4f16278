"""Dataset analysis on computed values: which labels are confused for which (from an evaluation's retrieval
results) and which items look mislabelled (from their nearest neighbours' labels).

Functions here take values (an `EvaluationResult`, arrays, frames), never the app's `Workspace`, so the app, the
CLI and scripts share them and they are tested on tiny hand-made inputs.
"""

from explorer.analysis.confusions import LabelConfusions, label_confusions
from explorer.analysis.label_errors import suspected_label_errors

__all__ = ["LabelConfusions", "label_confusions", "suspected_label_errors"]
