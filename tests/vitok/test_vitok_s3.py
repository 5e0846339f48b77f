"""from_pretrained and LPIPS.from_path on s3:// URIs, against a loopback moto server (boto3 only in the test)."""

import pytest
import torch

from vitok import ViTok
from vitok.checkpoint import fetch_s3
from vitok.lpips import LPIPS

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")


@pytest.fixture()
def s3_endpoint(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="models")
    yield endpoint, client
    server.stop()


def test_from_pretrained_and_lpips_from_s3(s3_endpoint, tmp_path, monkeypatch):
    endpoint, client = s3_endpoint
    monkeypatch.setattr("vitok.checkpoint.DEFAULT_CACHE", tmp_path / "cache")
    torch.manual_seed(0)
    model = ViTok.from_name("N-N/8", channels=4).eval()
    torch.nn.init.normal_(model.decoder.to_pixels.weight, std=0.02)
    local = model.save_pretrained(tmp_path / "ckpt")
    for file in local.iterdir():
        client.upload_file(str(file), "models", f"runs/a/final/{file.name}")
    lpips = LPIPS()
    torch.save(lpips.state_dict(), tmp_path / "vgg.pt")
    client.upload_file(str(tmp_path / "vgg.pt"), "models", "weights/vgg.pt")

    loaded = ViTok.from_pretrained("s3://models/runs/a/final", endpoint_url=endpoint)
    x = torch.rand(1, 1, 16, 16, 3) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x).recon, model(x).recon)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # the endpoint may also come from the environment
    a, b = torch.rand(1, 16, 16, 3), torch.zeros(1, 16, 16, 3)
    torch.testing.assert_close(LPIPS.from_path("s3://models/weights/vgg.pt")(a, b), lpips(a, b))
    assert (tmp_path / "cache" / "models" / "weights" / "vgg.pt").is_file()
    with pytest.raises(FileNotFoundError, match="nothing at"):
        fetch_s3("s3://models/missing", endpoint_url=endpoint)
