"""A finished run told in one log line and in the Markdown of its Prefect artifact."""

from __future__ import annotations

from typing import Any


def summary_line(summary: dict[str, Any]) -> str:
    """The run's counts, audio hours, wall time and throughput, for the log."""
    return (
        "done: {files_seen} seen, {new} new, {changed} changed, {unchanged} unchanged, "
        "{moved} moved, {deleted} deleted; {analyzed} analysed, {failed} failed; "
        "{hours:.2f} h of audio in {wall:.1f} s ({rate:.2f} tracks/s)"
    ).format(**summary, **_rates(summary))


def summary_markdown(summary: dict[str, Any]) -> str:
    """The run's counts and its seconds by stage, as tables."""
    rows = "\n".join(
        f"| {k} | {v:.2f} |" if isinstance(v, float) else f"| {k} | {v} |"
        for k, v in summary.items()
        if k != "timings"
    )
    stages = "\n".join(f"| {k} | {v:.2f} |" for k, v in summary["timings"].items())
    rates = _rates(summary)
    return (
        f"# Library analysis\n\n| what | value |\n|---|---|\n{rows}\n\n"
        f"Audio analysed: {rates['hours']:.2f} h; throughput {rates['rate']:.2f} tracks/s.\n\n"
        f"## Seconds by stage\n\nWorker stages are summed over workers.\n\n"
        f"| stage | seconds |\n|---|---|\n{stages}\n"
    )


def _rates(summary: dict[str, Any]) -> dict[str, float]:
    wall = summary["wall_seconds"]
    return {
        "hours": summary["audio_seconds"] / 3600,
        "wall": wall,
        "rate": summary["analyzed"] / wall if wall else 0.0,
    }
