"""Report figures for likely copies, their withholding under --no-member-images, and the first screen."""
from __future__ import annotations

import base64
import io
from datetime import UTC, datetime

import numpy as np
import torch
from PIL import Image

from auditor.core.results import AttackResult, AuditReport, Figure, ModelInfo
from auditor.data.sets import AuditData, LabeledImages
from auditor.report.html import first_screen, render_html
from auditor.report.score_figures import score_figures
from auditor.scoring import ScoringConfig, score_reconstructions


def _data() -> AuditData:
    gen = torch.Generator().manual_seed(0)
    low = torch.rand(60 + 300, 1, 4, 4, generator=gen)
    images = torch.nn.functional.interpolate(low, size=(16, 16), mode="bicubic", align_corners=False).clamp(0, 1)
    labels = torch.arange(2).repeat_interleave(30)
    ref_labels = torch.arange(2).repeat_interleave(150)
    return AuditData(LabeledImages(images[:60], labels, "m"), LabeledImages(images[60:], ref_labels, "r"), 2, ("a", "b"))


def _scored(data: AuditData) -> tuple[torch.Tensor, AttackResult]:
    noise = torch.rand(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    recon = torch.cat([data.members.images[[5, 7, 35]], noise])
    labels = torch.tensor([0, 0, 1, 0, 0, 1, 1])
    scores = score_reconstructions(recon, labels, data, config=ScoringConfig(replicates=0, alpha=0.05))
    own = Figure(title="attack's own grid", png_base64="AAAA")
    return recon, AttackResult(attack="x", status="completed", scores=scores, figures=[own])


def _pixels(fig: Figure) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(fig.png_base64)))).astype(np.float64) / 255.0


def test_copies_are_paired_with_their_members_in_score_order() -> None:
    data = _data()
    recon, result = _scored(data)
    assert result.scores.likely_copies == 3 and result.scores.distinct_members_recovered == 3
    figs = score_figures("x", recon, data.members.images, result, member_images=True)
    copies = figs[0]
    assert copies.private and "3 distinct training images recovered" in copies.caption
    grid = _pixels(copies)
    scale = 64 // 16
    tile = 16 * scale
    first_top = grid[2:2 + tile:scale, 2:2 + tile:scale]
    first_bottom = grid[2 + tile + 2:2 + 2 * tile + 2:scale, 2:2 + tile:scale]
    member = data.members.images[result.scores.samples[0].nearest_member, 0].numpy()
    np.testing.assert_allclose(first_bottom, member, atol=1 / 255 + 1e-6)  # the member below its copy
    np.testing.assert_allclose(first_top, member, atol=1 / 255 + 1e-6)  # an exact copy looks the same


def test_no_member_images_withholds_copies_everywhere() -> None:
    data = _data()
    recon, result = _scored(data)
    figs = score_figures("x", recon, data.members.images, result, member_images=False)
    assert all(not f.private for f in figs) and "withheld" in figs[0].title
    for f in figs:
        grid = _pixels(f)
        for i in (5, 7, 35):  # no copied member appears in any shared picture
            member = np.kron(data.members.images[i, 0].numpy(), np.ones((4, 4)))
            windows = np.lib.stride_tricks.sliding_window_view(grid, member.shape)
            assert np.abs(windows - member).max(axis=(2, 3)).min() > 0.05
    assert "0.99" in figs[0].caption or "1.00" in figs[0].caption  # the scores stay
    assert result.figures[0].private and any("withheld" in n for n in result.notes)


def _report(result: AttackResult, member_images: bool) -> AuditReport:
    return AuditReport(tool_version="0", created=datetime.now(UTC), seed=0, model=ModelInfo(source="m", format="onnx"),
                       results=[result], member_images=member_images, verdict="fails the gate: highest finding is high")


def test_first_screen_sentences_and_withheld_banner() -> None:
    data = _data()
    _, result = _scored(data)
    lines = first_screen(_report(result, False))
    assert len(lines) == 4
    assert "preflight" in lines[0].lower()
    assert "recovered 3 distinct training image(s)" in lines[1]
    assert "non-members" in lines[2] and "expected by chance" in lines[2]
    assert lines[3].startswith("Verdict: fails the gate")
    html = render_html(_report(result, False))
    assert "3 likely copies withheld" in html and "recovered 3 distinct" in html
    assert "No attack produced reconstructions" in first_screen(_report(AttackResult(attack="y", status="completed"), True))[1]
