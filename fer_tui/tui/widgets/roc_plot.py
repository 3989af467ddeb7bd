"""Per-class one-vs-rest ROC curves of one model (plotext inside Textual)."""

from __future__ import annotations

from typing import Any

from textual_plotext import PlotextPlot


class RocPlot(PlotextPlot):
    """Seven ROC curves with their AUC in the legend, and the chance diagonal."""

    def show(self, report: dict[str, Any] | None, title: str = "") -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        if report is not None:
            for name, curve in report.get("roc", {}).items():
                auc = report["classes"][name]["auc"]
                plt.plot(curve["fpr"], curve["tpr"], label=f"{name} {auc:.3f}", marker="braille")
            plt.plot([0, 1], [0, 1], color="gray", marker="braille")
            plt.xlim(0, 1)
            plt.ylim(0, 1)
            plt.xlabel("false positive rate")
            plt.ylabel("true positive rate")
            plt.title(title or "ROC, one-vs-rest")
        self.refresh()
