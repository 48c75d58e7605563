"""The output section of a profile's ``report.html``: what the deployed network computed and how faithfully.

The pictures (the masked input, the deployed network's output, the photo),
the output's hole PSNR, and the fidelity check of the run: spike precision,
recall and F1 of every chip layer together and of each, against the float
model (or graph) on the same input (:mod:`neurodeploy.spike_metrics`), the
output against the float model's, and whether the backend's spikes equal
the reference backend's bit for bit. :mod:`neurodeploy.cost.report` places
it under the report's first paragraph.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np

PICTURE_SIDE = 360  # the longest side of an image shown in the report: three side by side fit a laptop screen


PICTURE_MIN_SIDE = 256  # a smaller image is drawn at a whole multiple of its size


def _shown(rgb: np.ndarray, zoom: int) -> int:
    """The width an image is drawn at: its PNG's (:func:`picture_png`) times ``zoom``."""
    height, width = rgb.shape[:2]
    scale = min(1.0, PICTURE_SIDE / max(height, width))
    return max(1, round(width * scale)) * zoom


def picture_png(rgb: np.ndarray, max_side: int | None = PICTURE_SIDE) -> bytes:
    """A uint8 image as PNG bytes, shrunk (area average) to ``max_side`` pixels on its longest side."""
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(rgb))
    if max_side is not None and max(picture.size) > max_side:
        scale = max_side / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.Resampling.BOX)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def quality_section(summary: dict[str, Any], pictures: list[tuple[str, np.ndarray]]) -> str:
    """The output and its fidelity, as HTML: the pictures side by side, hole PSNR, and the fidelity check
    (spike precision, recall and F1 of every chip layer together and of each, the output against the float
    model, bit-exactness with the reference backend); a paragraph saying what was not measured."""
    parts = ["<h2>Output and fidelity</h2>"]
    if pictures:
        # a small image is drawn larger (pixels kept sharp), so that a hole of a few pixels can be seen
        zoom = max(1, PICTURE_MIN_SIDE // max(max(rgb.shape[:2]) for _, rgb in pictures))
        parts.append('<div class="pictures">' + "".join(
            f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,'
            f'{base64.b64encode(picture_png(rgb)).decode()}" width="{_shown(rgb, zoom)}" '
            f'style="image-rendering:pixelated"><figcaption>{html.escape(caption)}</figcaption></figure>'
            for caption, rgb in pictures) + "</div>")
    hole = summary.get("psnr_hole")
    if hole is not None:
        per_image = "".join(f"<li>{html.escape(name)}: {'no hole' if v is None else f'{v:.2f} dB'}</li>"
                            for name, v in hole["per_image"].items()) if len(hole["per_image"]) > 1 else ""
        mean = "n/a (no image has a hole)" if hole["mean"] is None else f"{hole['mean']:.2f} dB"
        parts.append(f'<p class="psnr-hole"><b>Hole PSNR</b> of the deployed output: {mean}'
                     f"{' (mean over the images)' if per_image else ''}, against the input image's own pixels "
                     f"under the hole: the truth when the hole was drawn on an intact photo.</p>"
                     + (f"<ul>{per_image}</ul>" if per_image else ""))
    fid = summary.get("fidelity")
    if fid is None:
        parts.append("<p>Fidelity not measured in this run (a run over <code>--cluster</code> or "
                     "<code>--results</code> counts its items apart): <code>neurodeploy simulate</code> "
                     "checks it.</p>")
        return "\n".join(parts)
    rows = [("all chip layers", fid), *[(layer["name"], layer) for layer in fid.get("layers", [])]]
    table = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{int(s['spikes_deployed']):,}</td><td>{int(s['spikes_reference']):,}</td>"
        f"<td>{_share(s['spike_precision'])}</td><td>{_share(s['spike_recall'])}</td><td>{_share(s['spike_f1'])}</td>"
        "</tr>" for name, s in rows)
    graph = summary.get("kind") == "graph"
    versus = "the float graph" if graph else "the float model"
    psnr = fid.get("psnr_vs_float")
    output = (f"output argmax agreement with the float graph: {_share(fid.get('output_agreement_vs_float'))}"
              if graph else "output image against the float model's: " + (
                  "n/a" if psnr is None else "identical (PSNR at its cap, 100 dB)" if psnr >= 100 else
                  f"{psnr:.2f} dB PSNR"))
    exact = "yes" if fid["exact_vs_reference"] else "NO"
    where = " (the tile at each image's centre, re-run on it)" if fid.get("exact_vs_reference_tiles") else ""
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in fid.get("warnings", []))
    parts.append(f"""<p><b>Fidelity</b>: the deployed spikes ({html.escape(str(summary.get("backend", "")))})
against {versus}'s on the same input, cell by cell (precision: of the deployed spikes, those the float side has;
recall: of the float side's, those deployed).</p>
<table class="fidelity"><tr><th>chip layer</th><th>spikes deployed</th><th>spikes float</th><th>precision</th>
<th>recall</th><th>F1</th></tr>{table}</table>
<p>{output}; spikes bit-exact with the reference backend: {exact}{where}.</p>""")
    if warnings:
        parts.append(f"<ul>{warnings}</ul>")
    return "\n".join(parts)
