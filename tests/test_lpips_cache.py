"""LPIPS through the real loading path, with a backbone checkpoint the test writes itself.

SqueezeNet 1.1 keeps the checkpoint small; nothing here downloads (the hub loaders are
patched to fail, and TORCH_HOME points at an empty folder).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision

from auditor.core.errors import ModelLoadError, UsageError
from auditor.data.sets import AuditData, LabeledImages
from auditor.scoring import ScoringConfig, score_reconstructions
from auditor.scoring.lpips_scorer import BACKBONE_FILES, LpipsScorer, install_backbone

SQUEEZE = BACKBONE_FILES["squeeze"]


def _no_download(*args: object, **kwargs: object) -> None:
    raise AssertionError("a test tried to download weights")


@pytest.fixture(scope="module", autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
        mp.setattr(torch.hub, "load_state_dict_from_url", _no_download)
        mp.setattr(torchvision.models._api, "load_state_dict_from_url", _no_download)
        yield


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "my-squeezenet.pth"
    torch.save(torchvision.models.squeezenet1_1(weights=None).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def scorer(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> LpipsScorer:
    cache = tmp_path_factory.mktemp("cache")
    install_backbone(checkpoint, net="squeeze", cache=cache)
    return LpipsScorer.from_cache("squeeze", cache=cache)


def smooth(n: int, c: int, size: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(n, c, size // 4, size // 4, generator=gen)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def test_install_copies_the_checkpoint_into_the_cache(checkpoint: Path, tmp_path: Path) -> None:
    dest = install_backbone(checkpoint, net="squeeze", cache=tmp_path)
    assert dest == tmp_path / "lpips" / SQUEEZE
    assert dest.read_bytes() == checkpoint.read_bytes()


def test_scorer_uses_the_cached_backbone(scorer: LpipsScorer, checkpoint: Path) -> None:
    assert scorer.available and scorer.reason == "" and scorer.net == "squeeze"
    state = torch.load(checkpoint, weights_only=True)
    loaded = scorer.model.net.state_dict()
    assert len(loaded) == 50  # conv1 and 8 Fire modules
    for key, value in loaded.items():
        _, index, name = key.split(".", 2)
        assert torch.equal(value, state[f"features.{index}.{name}"]), key


@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32), (1, 12)])
def test_lpips_is_zero_for_identical_and_positive_for_different(scorer: LpipsScorer, channels: int, size: int) -> None:
    x, y = smooth(3, channels, size, 1), smooth(3, channels, size, 2)
    same, different = scorer(x, x), scorer(x, y)
    assert same.shape == (3,) and float(same.abs().max()) < 1e-6
    assert float(different.min()) > 1e-3


def test_matrix_agrees_with_pairwise(scorer: LpipsScorer) -> None:
    x, y = smooth(3, 1, 28, 3), smooth(4, 1, 28, 4)
    matrix = scorer.matrix(x, y)
    assert matrix.shape == (3, 4)
    for i in range(3):
        torch.testing.assert_close(matrix[i], scorer(x[i].expand(4, -1, -1, -1), y), atol=1e-5, rtol=1e-4)
    assert float(scorer.matrix(x, x).diagonal().abs().max()) < 1e-5


def test_missing_cache_is_unavailable_with_instructions(tmp_path: Path) -> None:
    missing = LpipsScorer.from_cache("alex", cache=tmp_path)
    assert not missing.available
    assert BACKBONE_FILES["alex"] in missing.reason
    assert "audit lpips install FILE --net alex" in missing.reason
    assert str(tmp_path / "lpips") in missing.reason
    with pytest.raises(RuntimeError, match="LPIPS is not available"):
        missing(torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32))


def test_wrong_keys_are_listed(checkpoint: Path, tmp_path: Path) -> None:
    state = torch.load(checkpoint, weights_only=True)
    del state["features.0.bias"]
    state["features.99.weight"] = torch.zeros(1)
    state["features.3.squeeze.weight"] = torch.zeros(2, 2, 1, 1)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(ModelLoadError) as info:
        install_backbone(bad, net="squeeze", cache=tmp_path)
    message = str(info.value)
    assert "missing keys: features.0.bias" in message
    assert "unexpected keys: features.99.weight" in message
    assert "features.3.squeeze.weight: expected [16, 64, 1, 1], got [2, 2, 1, 1]" in message
    assert not (tmp_path / "lpips" / SQUEEZE).exists()


def test_a_bare_features_state_dict_is_rejected(tmp_path: Path) -> None:
    other = tmp_path / "features-only.pth"
    torch.save({"0.weight": torch.zeros(64, 3, 3, 3), "0.bias": torch.zeros(64)}, other)
    with pytest.raises(ModelLoadError, match="no 'features.\\*' keys"):
        install_backbone(other, net="squeeze", cache=tmp_path)


def test_corrupt_cached_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "lpips").mkdir()
    (tmp_path / "lpips" / SQUEEZE).write_bytes(b"not a checkpoint")
    scorer = LpipsScorer.from_cache("squeeze", cache=tmp_path)
    assert not scorer.available and "unusable" in scorer.reason and "audit lpips install" in scorer.reason


def test_unknown_net_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="expected one of"):
        LpipsScorer.from_cache("resnet", cache=tmp_path)


def test_score_reconstructions_reports_lpips(scorer: LpipsScorer, tmp_path: Path) -> None:
    members = LabeledImages(smooth(40, 1, 16, 5), torch.arange(2).repeat_interleave(20), "members")
    reference = LabeledImages(smooth(40, 1, 16, 6), torch.arange(2).repeat_interleave(20), "reference")
    data = AuditData(members, reference, 2, ("a", "b"))
    recon = torch.cat([members.images[[0, 25]], torch.rand(2, 1, 16, 16)])
    labels = torch.tensor([0, 1, 0, 1])
    scores = score_reconstructions(recon, labels, data, config=ScoringConfig(replicates=50, lpips_pool=8), lpips=scorer)
    assert scores.samples[0].nearest_member_lpips == pytest.approx(0.0, abs=1e-5)
    assert scores.samples[2].nearest_member_lpips > 1e-3
    assert scores.lpips_best_mean is not None
    assert "up to 8 members per class" in scores.lpips_note and "32 px" in scores.lpips_note
    unavailable = LpipsScorer.from_cache("squeeze", cache=tmp_path)
    plain = score_reconstructions(recon, labels, data, config=ScoringConfig(replicates=50), lpips=unavailable)
    assert plain.lpips_best_mean is None and plain.lpips_note.startswith("LPIPS not computed: ")
    assert SQUEEZE in plain.lpips_note
