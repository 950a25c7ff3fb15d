"""What stays open under access control, the separate metrics address, and TLS terminated by the edge."""

from __future__ import annotations

import ssl

import bcrypt
import httpx

from tests.support.edge import EdgeMirror, filesystem_storage
from tests.support.ports import free_port
from tests.support.tokens import TestCA


def _htpasswd(path) -> str:
    path.write_text(f"ops:{bcrypt.hashpw(b'ops-pw', bcrypt.gensalt(rounds=4)).decode()}\n")
    return str(path)


def test_health_readiness_and_metrics_stay_open_under_htpasswd(tmp_path):
    (tmp_path / "data").mkdir()
    auth = {"auth": {"method": "htpasswd"}, "auth.htpasswd": {"realm": "edge", "path": _htpasswd(tmp_path / "users")}}
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data"), **auth) as edge:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert httpx.get(edge.url + path).status_code == 200, path
        refused = httpx.get(f"{edge.url}/v2/")
        assert (refused.status_code, refused.headers["www-authenticate"]) == (401, 'Basic realm="edge"')
        assert httpx.get(f"{edge.url}/v2/", auth=("ops", "ops-pw")).status_code == 200
        text = httpx.get(f"{edge.url}/metrics").text
        assert 'mirror_auth_requests_total{method="htpasswd",result="ok"} 1.0' in text
        assert 'mirror_auth_requests_total{method="htpasswd",result="denied"} 1.0' in text


def test_metrics_can_move_to_their_own_address(tmp_path):
    (tmp_path / "data").mkdir()
    metrics_port = free_port()
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data"), http={"metrics_addr": f"127.0.0.1:{metrics_port}"}) as edge:
        assert httpx.get(f"{edge.url}/metrics").status_code == 404
        separate = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert separate.status_code == 200
        assert "mirror_http_requests_total" in separate.text
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/v2/").status_code == 404


def test_edge_terminates_tls_with_certfile_and_keyfile(tmp_path):
    (tmp_path / "data").mkdir()
    ca = TestCA("edge-tls-ca")
    (tmp_path / "tls").mkdir()
    certfile, keyfile = ca.server_files(tmp_path / "tls")
    (tmp_path / "ca.pem").write_bytes(ca.pem())
    http = {"certfile": str(certfile), "keyfile": str(keyfile)}
    with EdgeMirror(tmp_path / "edge", filesystem_storage(tmp_path / "data"), http=http) as edge:
        assert edge.url.startswith("https://")
        response = httpx.get(f"{edge.url}/v2/", verify=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")))
        assert response.status_code == 200
        assert response.headers["docker-distribution-api-version"] == "registry/2.0"
