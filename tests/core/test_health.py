import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_and_channel_layer(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is True
    assert report["database"]["ok"] is True
    assert report["channel_layer"] == {
        "ok": True,
        "backend": "EmbeddedChannelLayer",
        "ms": report["channel_layer"]["ms"],
    }


def test_healthz_says_503_when_the_channel_layer_fails(client, monkeypatch):
    from apps.core import health

    async def broken():
        raise ConnectionError("layer down")

    monkeypatch.setattr(health, "_channel_layer", broken)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["channel_layer"]["error"] == "ConnectionError: layer down"
