"""The library report: one self-contained HTML page of plots (matplotlib, PNGs inline)."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import numpy as np

from playlista.camelot import WHEEL

# The figures, in page order: (element id, heading).
FIGURES: tuple[tuple[str, str], ...] = (
    ("tempo", "Tempo"),
    ("keys", "Keys on the Camelot wheel"),
    ("loudness-energy", "Loudness against energy"),
    ("embedding-map", "The library's MusiCNN embeddings in two dimensions (PCA)"),
    ("failures", "Files that could not be analysed, by class"),
)
MAP_TAGS = 8  # colours in the embedding map; rarer top tags are "other"

# On load, each figure records whether its image decoded and how large it is drawn, so a
# headless browser's DOM dump (or a person's dev tools) shows that the page really rendered.
_CHECK = """
window.addEventListener('load', () => {
  const seen = [...document.querySelectorAll('figure img')].map(img => {
    const box = img.getBoundingClientRect();
    return {id: img.id, ok: img.complete && img.naturalWidth > 0,
            width: Math.round(box.width), height: Math.round(box.height)};
  });
  document.body.dataset.rendered = JSON.stringify(seen);
});
"""


def render_report(
    data: dict[str, Any],
    *,
    pngs: dict[str, str] | None = None,
    title: str = "playlista library report",
) -> str:
    """The page for :meth:`playlista.store.Reader.report_data`'s ``data`` (``pngs``: the
    figures, if :func:`figure_pngs` made them already)."""
    pngs = pngs or figure_pngs(data)
    parts = [
        f"<figure><figcaption>{html.escape(heading)}</figcaption>"
        f'<img id="{fig_id}" alt="{html.escape(heading)}" '
        f'src="data:image/png;base64,{pngs[fig_id]}"></figure>'
        for fig_id, heading in FIGURES
    ]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222 }}
main {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(30rem, 1fr)); gap: 1.5rem }}
figure {{ margin: 0 }} figcaption {{ font-weight: 600; margin-bottom: .4rem }}
img {{ width: 100%; height: auto }}
</style></head>
<body><h1>{html.escape(title)}</h1><p id="summary">{html.escape(summary_line(data))}</p>
<main>{"".join(parts)}</main>
<script>{_CHECK}</script></body></html>
"""


def render_markdown(data: dict[str, Any], *, pngs: dict[str, str] | None = None) -> str:
    """The same report as Markdown with the figures inline, for a Prefect artifact."""
    pngs = pngs or figure_pngs(data)
    figures = "\n\n".join(
        f"### {heading}\n\n![{heading}](data:image/png;base64,{pngs[fig_id]})"
        for fig_id, heading in FIGURES
    )
    return f"# Library report\n\n{summary_line(data)}\n\n{figures}\n"


def summary_line(data: dict[str, Any]) -> str:
    failed = sum(n for _, n in data["failures"])
    return (
        f"{data['tracks']} tracks, {data['hours']:.1f} hours of audio; {failed} files failed; "
        f"{data['playlists']} playlists. Made {datetime.now(UTC):%Y-%m-%d %H:%M} UTC."
    )


def figure_pngs(data: dict[str, Any]) -> dict[str, str]:
    """Each figure of :data:`FIGURES` as base64 PNG, by id."""
    import matplotlib

    matplotlib.use("Agg")
    figures = {
        "tempo": _tempo,
        "keys": _keys,
        "loudness-energy": _loudness_energy,
        "embedding-map": _embedding_map,
        "failures": _failures,
    }
    return {fig_id: _png(figures[fig_id](data)) for fig_id, _ in FIGURES}


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _tempo(data: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    bpm = data["bpm"]
    if len(bpm):
        ax.hist(bpm, bins=list(range(40, 225, 5)), color="#3b7dd8", edgecolor="white")
        ax.set_xlabel("BPM")
        ax.set_ylabel("tracks")
    else:
        _empty(ax, "no tempo yet")
    return fig


def _keys(data: dict[str, Any]) -> Any:
    """Two rings in Camelot order, 1 at the top going clockwise: minor (A) inside, major
    (B) outside; each key coloured by its track count, which is written in it."""
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(5.2, 5.2))
    ax: Any = fig.add_subplot(projection="polar")
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)
    counts = data["camelot"]
    top = max(counts.values(), default=1)
    width = 2 * np.pi / 12
    for code in WHEEL:
        number, ring = int(code[:-1]), code[-1]
        theta = (number - 1) * width
        inner = 1.0 if ring == "A" else 2.2
        share = counts.get(code, 0) / top
        ax.bar(
            theta,
            1.0,
            width=width * 0.95,
            bottom=inner,
            color=plt.cm.viridis(share) if code in counts else "#eeeeee",
            edgecolor="white",
        )
        label = f"{code}\n{counts.get(code, 0)}"
        dark = code in counts and share < 0.6  # viridis is dark at its low end
        ax.text(
            theta,
            inner + 0.5,
            label,
            ha="center",
            va="center",
            fontsize=7,
            color="white" if dark else "#222222",
        )
    ax.set_ylim(0, 3.3)
    ax.set_axis_off()
    return fig


def _loudness_energy(data: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    points = data["loudness_energy"]
    if len(points):
        ax.scatter(points[:, 0], points[:, 1], s=18, alpha=0.7, color="#d8643b")
        ax.set_xlabel("integrated loudness (LUFS)")
        ax.set_ylabel("energy (RMS)")
    else:
        _empty(ax, "no loudness yet")
    return fig


def _embedding_map(data: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.4))
    embedding, tags = data["embedding"], data["embedding_tags"]
    if len(embedding) < 3:
        _empty(ax, "fewer than 3 tracks with embeddings")
        return fig
    from sklearn.decomposition import PCA

    xy = PCA(n_components=2, random_state=0).fit_transform(embedding)
    common = [t for t, _ in Counter(tags).most_common(MAP_TAGS)]
    colours = [plt.get_cmap("tab10")(i) for i in range(10)]
    for i, tag in enumerate([*common, "other"]):
        rows = [j for j, t in enumerate(tags) if (t == tag if tag != "other" else t not in common)]
        if rows:
            colour = colours[i % len(colours)] if tag != "other" else "#bbbbbb"
            ax.scatter(xy[rows, 0], xy[rows, 1], s=20, color=colour, label=tag, alpha=0.8)
    ax.legend(fontsize=7, title="top tag", title_fontsize=8, loc="best")
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    return fig


def _failures(data: dict[str, Any]) -> Any:
    import matplotlib.pyplot as plt

    rows = data["failures"]
    fig, ax = plt.subplots(figsize=(6, max(2.0, 0.4 * len(rows) + 1)))
    if rows:
        names, counts = zip(*rows, strict=True)
        ax.barh(names[::-1], counts[::-1], color="#a04060")
        ax.set_xlabel("files")
    else:
        _empty(ax, "no failures")
    return fig
