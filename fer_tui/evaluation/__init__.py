"""Evaluation: checkpoints -> the paper's Table 1 and Table 2, as plain dicts, text and files.

Definitions (Sheng & Lau, section 4.2, Tables 1 and 2; `fer_tui/reference/paper.json`):
- Table 1, one row per model: precision, recall and F1 are the "weighted avg" row of
  `sklearn.metrics.classification_report`; support is the number of test images (7,178);
  accuracy; AUC is the arithmetic mean of the seven one-vs-rest AUCs, i.e. the macro average.
  Both the macro and the support-weighted average are computed; the table compares the macro
  one with the paper's (`AUC_IN_TABLE`).
- Table 2, one row per class: precision, recall, F1, support and one-vs-rest AUC for one model,
  or the mean over several. The paper's Table 2 is the mean over its three models, so its
  columns sit beside every Table 2 (one model's, the mean's or the ensemble's) as that mean.
- The ensemble of several models averages their softmax probabilities over the same images
  (each model preprocesses for itself) and is reported like one more model.

A report (one model, one split, one TTA) is a plain JSON-able dict:

    {"model": {arch, checkpoint, sha256, ...}, "data": {source, fingerprint, split, n},
     "tta": "none", "accuracy": .., "weighted_avg": {precision, recall, f1-score, support},
     "macro_avg": {...}, "auc_macro_ovr": .., "auc_weighted_ovr": .., "auc_undefined": [..],
     "classes": {"angry": {precision, recall, f1-score, support, auc}, ...},
     "confusion_matrix": [[counts]], "confusion_matrix_normalized": [[row fractions]],
     "roc": {"angry": {"fpr": [..], "tpr": [..]}, ...}}

An ensemble's report has the same keys; its "model" is {"arch": "ensemble", "checkpoint":
None, "members": [the members' "model" dicts]}.

A class absent from the labels has no AUC (null): the AUC averages then run over the classes
that have one, and `auc_undefined` names the others.

Reports and probabilities are cached in `<cache_dir>/eval/` per (checkpoint sha256, data
fingerprint, split, TTA), so a second evaluation of the same files is instant. Torch and sklearn
are imported inside the functions that need them; nothing here imports textual.

Modules:

    runner.py      checkpoints + data -> Evaluation (report and probabilities), with the checks
    metrics.py     probabilities -> every number of Tables 1 and 2 (sklearn); the mean of several
    ensemble.py    the mean of several models' probabilities, reported like one more model
    cache.py       reports and probabilities cached per (checkpoint, data, split, TTA, backend)
    paper.py       the paper's figures (`fer_tui/reference/paper.json`)
    tables.py      Table 1 and Table 2 as rows, beside the paper's, and the comparison as JSON
    formatting.py  the tables as text, Markdown and CSV
    outputs.py     the files `fer-tui evaluate` writes (JSON, predictions CSV)

The package's __init__ imports nothing; none of its modules imports torch at the top.
"""
