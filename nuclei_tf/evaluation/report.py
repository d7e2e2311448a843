"""Reports of an evaluation: per-image CSV, Lagree et al. 2021 Table 2 in Markdown and JSON
(plus Long 2020 Tables 1-2's average IOU m +- s and precision when the rows carry them),
and the AP-versus-IoU-threshold plot of their Fig. 2."""
import csv
import json
from pathlib import Path

from nuclei_tf.metrics import AP_THRESHOLDS, long2020_summary

#: (result key, column title): Lagree et al. 2021 Table 2, then AJI+, PQ and Dice.
TABLE2_COLUMNS = (
    ("aji", "AJI"),
    ("map", "mAP"),
    ("f1@0.7", "F1(0.7)"),
    ("recall@0.7", "Recall(0.7)"),
    ("precision@0.7", "Precision(0.7)"),
    ("f1@0.5", "F1(0.5)"),
    ("recall@0.5", "Recall(0.5)"),
    ("precision@0.5", "Precision(0.5)"),
    ("aji_plus", "AJI+"),
    ("pq", "PQ"),
    ("dice", "Dice"),
)


def public(result):
    """The scores and object counts of a result, without the raw ``_`` counts."""
    return {k: v for k, v in result.items() if not k.startswith("_")}


def write_csv(rows, path):
    rows = [public(row) for row in rows]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})


def markdown_table(summaries, title):
    """One row per test set (per-image mean, as the papers report) and one pooled row."""
    header = "| test set | images | " + " | ".join(name for _, name in TABLE2_COLUMNS) + " |"
    lines = [f"### {title}", "", header, "|" + "---|" * (len(TABLE2_COLUMNS) + 2)]
    for split, summary in summaries.items():
        for how in ("mean", "pooled"):
            row = summary[how]
            label = split if how == "mean" else f"{split} (pooled)"
            cells = " | ".join(f"{row[key]:.4f}" for key, _ in TABLE2_COLUMNS)
            lines.append(f"| {label} | {row['n_images']} | {cells} |")
    lines += ["", "Rows are per-image means; (pooled) rows sum the counts over the images first."]
    return "\n".join(lines) + "\n"


#: (result key, column title) of Long 2020 Tables 1-2, the paper's reading first.
LONG2020_COLUMNS = (
    ("long_avg_iou", "Ave. IOU (m +- s)"),
    ("long_precision", "precision"),
    ("long_avg_iou_gt_only", "Ave. IOU, GT cells only"),
    ("long_avg_iou_all_t", "Ave. IOU, mean over T_k"),
    ("long_avg_iou_instances", "Ave. IOU, official nuclei"),
    ("long_precision_instances", "precision, official nuclei (= mAP)"),
)


def long2020_summaries(rows):
    """{split: mean +- std over images of LONG2020_COLUMNS} for the rows that carry them."""
    by_split = {}
    for row in rows:
        if "long_avg_iou" in row:
            by_split.setdefault(row["split"], []).append({key: row[key] for key, _ in LONG2020_COLUMNS})
    return {split: long2020_summary(split_rows) for split, split_rows in by_split.items()}


def long2020_table(summaries):
    """Long 2020's columns per test set from :func:`long2020_summaries`."""
    header = "| test set | images | " + " | ".join(name for _, name in LONG2020_COLUMNS) + " |"
    lines = ["### Long 2020 metrics", "", header, "|" + "---|" * (len(LONG2020_COLUMNS) + 2)]
    for split, summary in summaries.items():
        cells = " | ".join(f"{summary[f'{key}_mean']:.4f} +- {summary[f'{key}_std']:.4f}" for key, _ in LONG2020_COLUMNS)
        lines.append(f"| {split} | {summary['n_images']} | {cells} |")
    lines += ["", "Cells are connected regions of each map unless the column says official nuclei (nuclei_tf.metrics.long2020)."]
    return "\n".join(lines) + "\n"


def plot_ap_curves(summaries, path, title):
    """AP (per-image mean) against the IoU threshold, one line per test set (Lagree Fig. 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 3.5), dpi=120)
    for split, summary in summaries.items():
        axis.plot(AP_THRESHOLDS, [summary["mean"][f"ap@{t:.2f}"] for t in AP_THRESHOLDS], marker="o", label=split)
    axis.set(xlabel="IoU threshold", ylabel="average precision", title=title, ylim=(0, 1))
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def write_reports(rows, summaries, out_dir, title, meta):
    """Write per_image.csv, summary.md, summary.json and ap_vs_iou.png into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out_dir / "per_image.csv")
    long_summaries = long2020_summaries(rows)
    long_table = f"\n{long2020_table(long_summaries)}" if long_summaries else ""
    (out_dir / "summary.md").write_text(markdown_table(summaries, title) + long_table)
    report = {**meta, "splits": {s: {how: public(v) for how, v in d.items()} for s, d in summaries.items()}}
    if long_summaries:
        report["long2020"] = long_summaries
    (out_dir / "summary.json").write_text(json.dumps(report, indent=2))
    plot_ap_curves(summaries, out_dir / "ap_vs_iou.png", title)
    return out_dir
