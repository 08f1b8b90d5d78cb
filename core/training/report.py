"""What the App shows after fine-tuning and evaluating: the stored evaluation table and each run's training curves.

Both come from the runs the operators store on the dataset
(:func:`core.training.evaluation.evaluate_matchers` under ``matcher_eval``,
:func:`core.training.finetune.finetune` under ``matcher_finetune``,
``matcher_finetune_2`` ...), so a delegated job's results show in the App as
an immediate one's do, and a run still training shows the epochs it finished.

Example::

    from person_finder.core.training.report import training_report
    report = training_report(dataset)
    report["evaluation"][0]["rank1"], report["runs"][0]["history"][-1]["loss"]
"""

from __future__ import annotations

from .. import contract, defaults

#: The evaluation table's columns: (row key, heading).
EVALUATION_COLUMNS = (*((f"rank{k}", f"Rank-{k}") for k in defaults.EVAL_RANKS), ("mAP", "mAP"), ("mINP", "mINP"),
                      ("threshold", "threshold"), ("precision", "precision"), ("recall", "recall"),
                      ("attribute_reliability", "zero-shot attributes it sees"))
#: How many of a matcher's most reliable zero-shot attributes the table names.
RELIABLE_ATTRIBUTES_SHOWN = 3


def reliability_summary(name_or_path, shown=RELIABLE_ATTRIBUTES_SHOWN):
    """The matcher's most reliable zero-shot attributes as one line ("upper_colors 0.72, hat 0.10 (+7 at 0)"),
    or None when never measured (see :func:`core.attributes.zero_shot.stored_reliability`).

    Example::

        reliability_summary("runs/people")   # 'upper_colors 0.72, hat 0.10, lower_colors 0.09 (+6 at 0)'
    """
    from ..attributes.zero_shot import stored_reliability

    measured = sorted(stored_reliability(name_or_path).items(), key=lambda kv: -kv[1])
    if not measured:
        return None
    seen = [(name, value) for name, value in measured if value > 0]
    line = ", ".join(f"{name} {value:.2f}" for name, value in seen[:shown]) or "none"
    blind = len(measured) - len(seen)
    return line + (f" (+{len(seen) - shown} more)" if len(seen) > shown else "") + (f" (+{blind} at 0)" if blind else "")


def training_report(samples, eval_run_key=contract.EVAL_RUN_KEY, train_run_key=contract.TRAIN_RUN_KEY):
    """The dataset's evaluation rows and fine-tuning runs, JSON-able.

    Returns ``{"evaluation": [row], "evaluated": str | None, "runs": [run]}``:
    a row per matcher (``model``, ``path``, Rank-k, mAP, mINP, calibrated
    ``threshold``, ``precision``, ``recall``, ``attribute_reliability``: its
    :func:`reliability_summary` ...), ``evaluated`` says on what
    (queries and gallery sizes, tags); a run per fine-tuning record (key
    ``train_run_key`` or ``train_run_key_N``): ``key``, ``model_dir`` (None
    while it trains), ``best_epoch`` and ``history`` (one dict per finished
    epoch: ``epoch``, ``loss``, ``val_mAP``, ``val_rank1`` ...). Empty lists
    when nothing was run.

    Example::

        training_report(dataset)["runs"][0]["best_epoch"]      # 12
    """
    dataset = samples._root_dataset
    dataset.reload()  # a delegated job wrote its runs in another process
    report = {"evaluation": [], "evaluated": None, "runs": []}
    if dataset.has_run(eval_run_key):
        config = dataset.get_run_info(eval_run_key).config
        report["evaluation"] = [dict(row, attribute_reliability=reliability_summary(row["path"]))
                                for row in dataset.load_run_results(eval_run_key, cache=False).rows]
        report["evaluated"] = (f"{config.num_queries} `{config.query_tag}` texts against {config.num_gallery} "
                               f"`{config.gallery_tag}` images")
    keys = [k for k in dataset.list_runs() if k == train_run_key or k.startswith(train_run_key + "_")]
    for key in sorted(keys, key=lambda k: (len(k), k)):
        results = dataset.load_run_results(key, cache=False)  # None before the first epoch is recorded
        report["runs"].append({"key": key, "model_dir": getattr(results, "model_dir", None),
                               "best_epoch": getattr(results, "best_epoch", None),
                               "history": [dict(r) for r in getattr(results, "history", None) or []]})
    return report
