"""LPIPS mechanics with random weights saved to a file (no pretrained VGG can be downloaded here)."""

import torch
from safetensors.torch import save_file

from vitok.lpips import LPIPS, TAPS, convert_state_dict, load_lpips


def _random_lpips_file(tmp_path):
    torch.manual_seed(0)
    model = LPIPS()
    for lin in model.lins:
        torch.nn.init.uniform_(lin.weight, 0.0, 1.0)  # LPIPS heads are non-negative
    path = tmp_path / "lpips_vgg.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model, path


def test_lpips_loads_and_behaves_like_a_distance(tmp_path):
    reference, path = _random_lpips_file(tmp_path)
    lpips = load_lpips(str(path))
    assert load_lpips(None) is None and load_lpips("") is None
    for key, value in reference.state_dict().items():
        assert torch.equal(lpips.state_dict()[key], value)
    assert not lpips.train().training and not any(p.requires_grad for p in lpips.parameters())
    a, b = torch.rand(2, 32, 32, 3) * 2 - 1, torch.rand(2, 32, 32, 3) * 2 - 1
    assert lpips(a, a).abs() < 1e-6
    d_ab = lpips(a, b)
    assert d_ab > 0
    torch.testing.assert_close(d_ab, lpips(b, a))
    # video: frames folded into the batch, so a clip scores as the mean over its frames
    clips_a, clips_b = a.view(1, 2, 32, 32, 3), b.view(1, 2, 32, 32, 3)
    torch.testing.assert_close(lpips(clips_a, clips_b), d_ab)
    assert lpips.per_image(clips_a, clips_b).shape == (2,)


def test_lpips_gradient_reaches_the_reconstruction(tmp_path):
    _, path = _random_lpips_file(tmp_path)
    lpips = load_lpips(str(path))
    recon = (torch.rand(1, 16, 16, 3) * 2 - 1).requires_grad_()
    lpips(recon, torch.zeros(1, 16, 16, 3)).backward()
    assert recon.grad is not None and recon.grad.abs().sum() > 0


def test_convert_from_torchvision_and_lpips_names(tmp_path):
    reference, _ = _random_lpips_file(tmp_path)
    ours = reference.state_dict()
    foreign = {}
    for key, value in ours.items():
        if key.startswith("features."):
            index = int(key.split(".")[1])
            slice_id = 1 + sum(index > t for t in TAPS)  # lpips.LPIPS splits the trunk after each tap
            foreign[f"net.slice{slice_id}.{key[len('features.'):]}"] = value
        else:
            foreign[f"lin{key.split('.')[1]}.model.1.weight"] = value
    foreign["classifier.0.weight"] = torch.zeros(1)  # torchvision's classifier is dropped
    assert convert_state_dict(foreign).keys() == ours.keys()
    path = tmp_path / "foreign.pt"
    torch.save(foreign, path)
    loaded = LPIPS.from_path(path)
    a, b = torch.rand(1, 16, 16, 3), -torch.rand(1, 16, 16, 3)
    torch.testing.assert_close(loaded(a, b), reference(a, b))
